// Package reqplane is the request plane of a distributed LLM-inference runtime, wire-compatible
// with NVIDIA Dynamo's: workers serve endpoints ("namespace/component/endpoint") and register them
// in etcd under a lease; clients discover them, route each request to an instance and stream the
// response back.
//
// The life of a request:
//
//	client code ── Client (router: picks an instance from the latest discovery snapshot)
//	            ── plane client (HTTP/2 | TCP | NATS) ── TwoPart frame ──► plane server (worker)
//	            ◄─ ack (202 / u32 0 / empty reply) ───────────────────────┘        │
//	call-home listener (client process) ◄── TCP: handshake, prologue, items, end ── Handler
//	            ── stop / kill ──►
//	discovery: worker ── lease + key ──► etcd ◄── list + watch ── client
//
// A worker:
//
//	cfg, err := reqplane.LoadConfig() // DYN_REQUEST_PLANE, ETCD_ENDPOINTS, … (docs/configuration.md)
//	rt := reqplane.New(cfg)
//	defer rt.Close()
//	ep := rt.Namespace("dynamo").Component("backend").Endpoint("generate")
//	err = ep.Serve(ctx, handler, 30*time.Second) // until ctx ends, then drain
//
// A client:
//
//	client, err := rt.Namespace("dynamo").Component("backend").Endpoint("generate").Client(ctx)
//	s, err := client.Generate(ctx, []byte(`{"text":"hello world"}`))
//	for item, err := range s.All() { … }
//
// The same code runs on every request plane: DYN_REQUEST_PLANE chooses (a comma list makes a
// worker serve several planes at once and gives a client its order of preference), so a fleet can
// mix planes and move from one to another without downtime. Errors are *Error values with a Code;
// use errors.Is with the sentinels (ErrNoInstances, ErrGenerate, …) or CodeOf.
package reqplane
