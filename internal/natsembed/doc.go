// Package natsembed runs a nats-server in-process: `reqplane nats` serves one to a
// one-machine fleet, and tests start their own on a random loopback port.
//
// It is the only package besides the command and test harnesses that imports
// github.com/nats-io/nats-server; the NATS request plane (internal/plane/nats) speaks to any
// NATS server through nats.go alone.
package natsembed
