// Package discovery defines what reqplane stores in etcd to make a worker's endpoints findable,
// and what consumers receive when they watch them (spec §4).
//
// An endpoint is named namespace/component/endpoint (EndpointID). Each worker process holds one
// etcd lease; its id is the worker's instance id, and every endpoint it serves is a key
// v1/instances/{ns}/{comp}/{ep}/{id:x} bound to that lease whose value is a Record: the
// endpoint's names, the instance id and the request-plane addresses (Transport) to reach it.
// Records are encoded byte for byte as Dynamo's serde_json writes them, so a one-plane record
// written by reqplane equals Dynamo's, and both record forms Dynamo has used are read.
//
// Consumers see an endpoint as a Snapshot: the complete instance set at one etcd revision,
// never a delta, in the style of a gRPC resolver. The etcd-backed registration and watching
// live in package discovery/etcd; this package has no dependency beyond the standard library.
package discovery
