// Package etcd registers worker endpoints in etcd and watches them, with the etcd client only
// (it never imports the etcd server; see deps_test.go).
//
// A worker uses a Registrar: one lease (Session) per process whose id is the instance id,
// kept alive by the client, and one key per served endpoint bound to it. Losing the lease is
// never silent: the Registrar reports it (State, Changes), asks the worker to re-bind its
// request planes to a fresh lease id (the id appears inside NATS subjects and TCP paths) and
// registers again with jittered exponential backoff. Close revokes the lease first, so the
// instance disappears from every watcher at once.
//
// A consumer uses a Watcher: it lists an endpoint's prefix, then watches from the next
// revision, and re-lists on any watch error, cancellation or compaction, so it never goes
// silently stale. It delivers complete Snapshots through a one-slot channel where the latest
// value wins; a slow consumer never blocks it. List is the one-shot read behind "reqplane ls".
package etcd
