// Package status is a process's status server (spec §9): health and liveness as Dynamo's
// system status server answers them, and the Prometheus /metrics of the process's registry.
//
// The server knows nothing of workers: it asks a Health function at every request, so the
// answer is never stale, and serves whatever prometheus.Gatherer it is given.
package status
