// Package telemetry holds reqplane's Prometheus metrics and OpenTelemetry tracing: the metric
// families of a Runtime (worker, request-plane ingress, client and router), registered on an
// injected registry, and the spans of a request on both sides with W3C trace context carried in
// plane.Meta.
//
// Nothing here is global: a Runtime builds one Metrics for its registry and one Tracer for its
// TracerProvider. Label children are resolved once per endpoint, client and plane and cached, so
// the request path does no label lookups and no map allocations.
package telemetry
