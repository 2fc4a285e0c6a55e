// Package router picks the instance that serves a request, gRPC-balancer style: every discovery
// snapshot builds a new immutable picker that is swapped in atomically, and Pick never blocks and
// never does I/O. Per-instance state that must outlive a snapshot (in-flight count for the
// load-aware modes, the "marked down" deadline after a pre-ack failure) lives in one small
// record per instance id that successive pickers share.
//
// The router chooses the plane too: among the transports an instance advertises it takes the
// first plane of the requester's preference list (DYN_REQUEST_PLANE), else the instance's
// primary transport, so one client can route across a fleet that mixes planes.
package router
