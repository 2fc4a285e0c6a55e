package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reqplane/reqplane/internal/discovery"
)

var (
	errWatchClosed   = errors.New("watch channel closed")
	errWatchCanceled = errors.New("watch canceled by the server")
)

// WatcherOptions tune a Watcher. The zero value is usable.
type WatcherOptions struct {
	Logger  *slog.Logger // nil: discard
	Backoff Backoff      // between re-lists after a failure; zero: DefaultBackoff
}

// Watcher follows one endpoint's instances and delivers complete snapshots.
//
// It lists the endpoint's prefix, publishes the set, then watches from the next revision
// (requiring a leader, so a partitioned member is noticed). On any watch error, a
// cancellation, a closed channel or a compaction it lists again, with backoff, so it never
// goes silently stale; while etcd is unreachable the last snapshot stands. A value that is
// not a valid record is logged once per key and revision and left out of the set; values of
// other record types are left out silently.
type Watcher struct {
	client  *clientv3.Client
	ep      discovery.EndpointID
	prefix  string
	backoff Backoff
	log     *slog.Logger
	updates chan discovery.Snapshot // one slot, latest wins

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}

	// Owned by the run goroutine.
	instances map[uint64]discovery.Record
	logged    map[string]int64 // key -> mod revision whose bad value was logged
	last      discovery.Snapshot
	published bool
}

// NewWatcher returns a watcher of ep's instances. It does no I/O.
func NewWatcher(client *clientv3.Client, ep discovery.EndpointID, opts WatcherOptions) *Watcher {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{
		client:  client,
		ep:      ep,
		prefix:  ep.Prefix(),
		backoff: opts.Backoff.withDefaults(),
		log:     log.With("endpoint", ep.String()),
		updates: make(chan discovery.Snapshot, 1),
		logged:  make(map[string]int64),
	}
}

// Start starts following the endpoint in a goroutine that runs until Close or until ctx ends.
// The first snapshot (possibly empty) arrives on Updates once the first list succeeded.
func (w *Watcher) Start(ctx context.Context) error {
	if err := w.ep.ValidateKey(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return ErrClosed
	case w.started:
		return ErrStarted
	}
	w.started = true
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go w.run(ctx)
	return nil
}

// Updates delivers complete snapshots, newest only: an unread snapshot is replaced by a newer
// one. It is closed after the watcher stops. Snapshots are shared: treat them as read-only.
func (w *Watcher) Updates() <-chan discovery.Snapshot { return w.updates }

// Close stops the watcher and waits for its goroutine. It is idempotent.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		done := w.done
		w.mu.Unlock()
		if done != nil {
			<-done
		}
		return nil
	}
	w.closed = true
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	if cancel == nil { // never started: nobody else sends on updates
		close(w.updates)
		return nil
	}
	cancel()
	<-done
	return nil
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	defer close(w.updates)
	attempt := 0
	failing := false
	for {
		rev, err := w.list(ctx)
		if err == nil {
			if failing {
				w.log.Info("discovery: watch recovered", "revision", rev)
				failing = false
			}
			var healthy bool
			healthy, err = w.watch(ctx, rev+1)
			if healthy {
				attempt = 0
			}
		}
		if ctx.Err() != nil {
			return
		}
		d := w.backoff.Delay(attempt)
		attempt++
		// Warn once per outage; repeats during the same outage are debug noise.
		level := slog.LevelWarn
		if failing {
			level = slog.LevelDebug
		}
		w.log.Log(ctx, level, "discovery: watch interrupted; re-listing", "err", err, "retry_in", d)
		failing = true
		if sleep(ctx, d) != nil {
			return
		}
	}
}

// list reads the whole prefix, replaces the instance set and publishes it.
func (w *Watcher) list(ctx context.Context) (int64, error) {
	resp, err := w.client.Get(ctx, w.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", w.prefix, err)
	}
	w.instances = make(map[uint64]discovery.Record, len(resp.Kvs))
	present := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		present[string(kv.Key)] = true
		w.put(string(kv.Key), kv.Value, kv.ModRevision)
	}
	maps.DeleteFunc(w.logged, func(key string, _ int64) bool { return !present[key] })
	w.publish(resp.Header.Revision)
	return resp.Header.Revision, nil
}

// watch applies events from rev on until the watch fails. healthy reports whether the watch
// was established (the server confirmed it), which resets the backoff.
func (w *Watcher) watch(ctx context.Context, rev int64) (healthy bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := w.client.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithCreatedNotify())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return healthy, fmt.Errorf("watching %s: %w", w.prefix, err)
		}
		if resp.Canceled {
			return healthy, errWatchCanceled
		}
		healthy = true
		if len(resp.Events) == 0 {
			continue // created or progress notification
		}
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			switch ev.Type {
			case clientv3.EventTypePut:
				w.put(key, ev.Kv.Value, ev.Kv.ModRevision)
			case clientv3.EventTypeDelete:
				w.remove(key)
			}
		}
		w.publish(resp.Header.Revision)
	}
	if err := ctx.Err(); err != nil {
		return healthy, err
	}
	return healthy, errWatchClosed
}

// put applies a key's new value: a valid record joins (or replaces) the set; anything else
// removes the key's instance, since its advertised value is no longer usable.
func (w *Watcher) put(key string, value []byte, modRev int64) {
	rec, id, err := parseInstance(key, value)
	if id != nil {
		delete(w.instances, *id)
	}
	switch {
	case err == nil: // the key is under w.prefix and the record agrees with it
		delete(w.logged, key)
		w.instances[rec.InstanceID] = rec
	case errors.Is(err, discovery.ErrNotEndpoint):
	default:
		w.logOnce(key, modRev, err)
	}
}

func (w *Watcher) remove(key string) {
	delete(w.logged, key)
	if _, id, err := discovery.ParseKey(key); err == nil {
		delete(w.instances, id)
	}
}

func (w *Watcher) logOnce(key string, modRev int64, err error) {
	if r, ok := w.logged[key]; ok && r == modRev {
		return
	}
	w.logged[key] = modRev
	w.log.Warn("discovery: skipping an invalid instance value", "key", key, "mod_revision", modRev, "err", err)
}

// publish delivers the current set if it differs from the last one delivered. The first
// set is always delivered, even when empty, so consumers learn that the list succeeded.
func (w *Watcher) publish(rev int64) {
	snap := discovery.NewSnapshot(w.ep, rev, slices.Collect(maps.Values(w.instances)))
	if w.published && snap.SameInstances(w.last) {
		return
	}
	w.last, w.published = snap, true
	for {
		select {
		case w.updates <- snap:
			return
		default:
		}
		// The consumer has not taken the previous snapshot: replace it. This goroutine is the
		// only sender, so after the drain the send above succeeds.
		select {
		case <-w.updates:
		default:
		}
	}
}

// parseInstance decodes one key and value. id is set whenever the key names an instance, so a
// bad value can still remove that instance. A record that disagrees with its key (another
// endpoint or id) is malformed.
func parseInstance(key string, value []byte) (rec discovery.Record, id *uint64, err error) {
	ep, iid, err := discovery.ParseKey(key)
	if err != nil {
		return discovery.Record{}, nil, err
	}
	rec, err = discovery.ParseRecord(value)
	if err != nil {
		return discovery.Record{}, &iid, err
	}
	if rec.EndpointID() != ep || rec.InstanceID != iid {
		return discovery.Record{}, &iid, fmt.Errorf("%w: value names %s instance %x, key names %s instance %x",
			discovery.ErrMalformedRecord, rec.EndpointID(), rec.InstanceID, ep, iid)
	}
	return rec, &iid, nil
}
