// Package etcdembed runs a single-member etcd server in the process, for "reqplane etcd", the
// demo and tests. It is the only package that imports the etcd server; libraries and workers
// use package discovery/etcd, which needs only the client.
//
// Port 0 in a listen URL picks a free loopback port, so tests run side by side; the chosen
// ports are kept in Server.Config so a test can stop the server and start it again on the
// same data directory and ports.
package etcdembed
