package etcd

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reqplane/reqplane/internal/discovery"
)

// recordingBinder advertises natsRecord for each endpoint and remembers the ids it was given.
type recordingBinder struct {
	eps []discovery.EndpointID
	err error // returned instead, when set

	mu  sync.Mutex
	ids []uint64
}

func (b *recordingBinder) bind(_ context.Context, id uint64) ([]discovery.Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ids = append(b.ids, id)
	if b.err != nil {
		return nil, b.err
	}
	recs := make([]discovery.Record, 0, len(b.eps))
	for _, ep := range b.eps {
		recs = append(recs, natsRecord(ep, id))
	}
	return recs, nil
}

func (b *recordingBinder) calls() []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]uint64(nil), b.ids...)
}

func awaitState(t *testing.T, r *Registrar, want State) {
	t.Helper()
	deadline := time.After(waitFor)
	for r.State() != want {
		select {
		case <-r.Changes():
		case <-deadline:
			t.Fatalf("state %v, want %v", r.State(), want)
		}
	}
}

func TestRegisterVisibleThenCloseRemoves(t *testing.T) {
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.Endpoints())
	gen := discovery.EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "generate"}
	health := discovery.EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "health"}
	w := startWatcher(t, c, gen, nil)
	awaitSnapshot(t, w, "the empty first snapshot", hasIDs())

	b := &recordingBinder{eps: []discovery.EndpointID{gen, health}}
	r := NewRegistrar(c, RegistrarOptions{TTL: 5 * time.Second})
	if got := r.State(); got != StateIdle {
		t.Fatalf("state before Start %v", got)
	}
	if err := r.Start(ctx, b.bind); err != nil {
		t.Fatal(err)
	}
	id := r.InstanceID()
	if r.State() != StateRegistered || id == 0 || len(b.calls()) != 1 || b.calls()[0] != id {
		t.Fatalf("after Start: state %v, id %x, bind calls %x", r.State(), id, b.calls())
	}
	if err := r.Start(ctx, b.bind); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v, want ErrStarted", err)
	}

	// An endpoint added after Start goes under the same lease.
	extra := discovery.EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "extra"}
	if err := r.Register(ctx, natsRecord(extra, id)); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx, natsRecord(extra, id+1)); !errors.Is(err, ErrInstanceMismatch) {
		t.Fatalf("Register with another id: %v, want ErrInstanceMismatch", err)
	}

	snap := awaitSnapshot(t, w, "the registered instance", hasIDs(id))
	if rec, _ := snap.Instance(id); !rec.Equal(natsRecord(gen, id)) {
		t.Fatalf("watched record %+v", rec)
	}

	// The stored value is the byte-exact record under the lease.
	resp, err := c.Get(ctx, gen.Key(id))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("Get %s: %v, %v", gen.Key(id), resp, err)
	}
	want, _ := discovery.MarshalRecord(natsRecord(gen, id))
	if kv := resp.Kvs[0]; string(kv.Value) != string(want) || uint64(kv.Lease) != id {
		t.Fatalf("stored %s under lease %x, want %s under %x", kv.Value, kv.Lease, want, id)
	}

	// List sees both endpoints of the instance with their remaining TTL.
	entries, err := List(ctx, c, "v1/instances/dynamo/")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Record.Endpoint != "extra" || entries[1].Record.Endpoint != "generate" ||
		entries[2].Record.Endpoint != "health" {
		t.Fatalf("List = %+v", entries)
	}
	for _, e := range entries {
		if e.Err != nil || e.LeaseID != id || e.TTL <= 0 || e.TTL > 5*time.Second {
			t.Errorf("entry %+v", e)
		}
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if r.State() != StateClosed || r.InstanceID() != 0 {
		t.Fatalf("after Close: state %v, id %x", r.State(), r.InstanceID())
	}
	// Revoked, not expired: gone from etcd by the time Close returns.
	if resp, err := c.Get(ctx, discovery.InstancesRoot, clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("keys left after Close: %v, %v", resp, err)
	}
	awaitSnapshot(t, w, "no instance after Close", hasIDs())
	if err := r.Start(ctx, b.bind); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v, want ErrClosed", err)
	}
	if err := r.Register(ctx, natsRecord(extra, id)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register after Close: %v, want ErrClosed", err)
	}
}

func TestKilledRegistrationExpires(t *testing.T) {
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.Endpoints())
	ep := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "ep"}
	w := startWatcher(t, c, ep, nil)

	// A worker with its own connection, killed without revoking: only the TTL removes it.
	worker := newTestClient(t, s.Endpoints())
	sess, err := NewSession(ctx, worker, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Register(ctx, natsRecord(ep, sess.ID())); err != nil {
		t.Fatal(err)
	}
	awaitSnapshot(t, w, "the worker", hasIDs(sess.ID()))

	worker.Close() // keep-alives stop; the lease is not revoked
	select {
	case <-sess.Done():
	case <-time.After(waitFor):
		t.Fatal("session Done not closed after its client closed")
	}
	awaitSnapshot(t, w, "the worker gone after its TTL", hasIDs())
	sess.Close() // the revoke fails on the closed client; the lease is gone anyway
}

func TestRegistrarReregistersAfterRevoke(t *testing.T) {
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.Endpoints())
	ep := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "ep"}
	w := startWatcher(t, c, ep, nil)
	logs := &logRecorder{}

	b := &recordingBinder{eps: []discovery.EndpointID{ep}}
	r := NewRegistrar(c, RegistrarOptions{
		TTL:     2 * time.Second,
		Logger:  logs.logger(),
		Backoff: Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	})
	if err := r.Start(ctx, b.bind); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := r.InstanceID()
	awaitSnapshot(t, w, "the first instance", hasIDs(old))

	// Revoke the lease behind the worker's back, as an operator or a lease expiry would.
	if _, err := c.Revoke(ctx, clientv3.LeaseID(old)); err != nil {
		t.Fatal(err)
	}
	snap := awaitSnapshot(t, w, "a new instance replacing the old", func(s discovery.Snapshot) bool {
		return len(s.Instances) == 1 && s.Instances[0].InstanceID != old
	})
	fresh := snap.Instances[0].InstanceID
	awaitState(t, r, StateRegistered)
	if got := r.InstanceID(); got != fresh {
		t.Fatalf("InstanceID() = %x, watcher sees %x", got, fresh)
	}
	if calls := b.calls(); len(calls) != 2 || calls[0] != old || calls[1] != fresh {
		t.Fatalf("bind calls %x, want [%x %x]", calls, old, fresh)
	}
	if rec, _ := snap.Instance(fresh); rec.Transport.Address != discovery.NATSSubject(ep, fresh) {
		t.Fatalf("new record advertises %q", rec.Transport.Address)
	}
	if logs.count("lease lost", discovery.FormatInstanceID(old)) != 1 {
		t.Errorf("lease loss not logged once: %q", logs.records)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	awaitSnapshot(t, w, "no instance after Close", hasIDs())
}

func TestRegistrarRetriesFailingBinder(t *testing.T) {
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.Endpoints())
	ep := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "ep"}

	b := &recordingBinder{eps: []discovery.EndpointID{ep}}
	r := NewRegistrar(c, RegistrarOptions{TTL: 2 * time.Second, Backoff: Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err := r.Start(ctx, b.bind); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := r.InstanceID()

	// While the binder fails, the registrar stays Lost and keeps retrying with fresh leases,
	// revoking each one it could not complete.
	b.mu.Lock()
	b.err = errors.New("plane cannot bind")
	b.mu.Unlock()
	if _, err := c.Revoke(ctx, clientv3.LeaseID(old)); err != nil {
		t.Fatal(err)
	}
	awaitState(t, r, StateLost)
	if r.InstanceID() != 0 {
		t.Fatalf("InstanceID() = %x while lost", r.InstanceID())
	}
	b.mu.Lock()
	b.err = nil
	b.mu.Unlock()
	awaitState(t, r, StateRegistered)
	calls := b.calls()
	if len(calls) < 3 || r.InstanceID() != calls[len(calls)-1] {
		t.Fatalf("bind calls %x, id %x", calls, r.InstanceID())
	}
	// Only the final lease holds keys: the failed attempts left nothing behind.
	entries, err := List(ctx, c, ep.Prefix())
	if err != nil || len(entries) != 1 || entries[0].Record.InstanceID != r.InstanceID() {
		t.Fatalf("List = %+v, %v", entries, err)
	}
}

func TestRegistrarStartErrors(t *testing.T) {
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.Endpoints())
	ep := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "ep"}
	bindErr := errors.New("no port")
	tests := []struct {
		name string
		bind Binder
		want error
	}{
		{"binder fails", func(context.Context, uint64) ([]discovery.Record, error) { return nil, bindErr }, bindErr},
		{"no records", func(context.Context, uint64) ([]discovery.Record, error) { return nil, nil }, ErrNoRecords},
		{"wrong instance id", func(_ context.Context, id uint64) ([]discovery.Record, error) {
			return []discovery.Record{natsRecord(ep, id+1)}, nil
		}, ErrInstanceMismatch},
		{"invalid name", func(_ context.Context, id uint64) ([]discovery.Record, error) {
			return []discovery.Record{natsRecord(discovery.EndpointID{Namespace: "ns", Component: "Comp", Endpoint: "ep"}, id)}, nil
		}, discovery.ErrInvalidName},
		{"same endpoint twice", func(_ context.Context, id uint64) ([]discovery.Record, error) {
			return []discovery.Record{natsRecord(ep, id), natsRecord(ep, id)}, nil
		}, ErrKeyExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistrar(c, RegistrarOptions{TTL: 2 * time.Second})
			defer r.Close()
			if err := r.Start(ctx, tt.bind); !errors.Is(err, tt.want) {
				t.Fatalf("Start = %v, want %v", err, tt.want)
			}
			if r.State() != StateIdle {
				t.Fatalf("state %v after a failed Start", r.State())
			}
			// Nothing half-registered stays behind: the attempt's lease was revoked.
			resp, err := c.Get(ctx, discovery.InstancesRoot, clientv3.WithPrefix())
			if err != nil || len(resp.Kvs) != 0 {
				t.Fatalf("keys left: %v, %v", resp, err)
			}
			leases, err := c.Leases(ctx)
			if err != nil || len(leases.Leases) != 0 {
				t.Fatalf("leases left: %v, %v", leases, err)
			}
		})
	}

	r := NewRegistrar(c, RegistrarOptions{})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, (&recordingBinder{eps: []discovery.EndpointID{ep}}).bind); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
}

func TestStateString(t *testing.T) {
	tests := map[State]string{
		StateIdle: "idle", StateRegistered: "registered", StateReregistering: "reregistering",
		StateLost: "lost", StateClosed: "closed", State(42): "state(42)",
	}
	for s, want := range tests {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int32(s), s.String(), want)
		}
	}
}

func TestRegistrarSurvivesEtcdOutage(t *testing.T) {
	ctx := testContext(t)
	s := startEtcd(t)
	direct := newTestClient(t, s.Endpoints())
	ep := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "ep"}
	w := startWatcher(t, direct, ep, nil)

	// The worker reaches etcd through a bridge; cutting it is an outage longer than the TTL.
	br := newBridge(t, s.Endpoints()[0][len("http://"):])
	workerClient := newTestClient(t, []string{br.endpoint()})
	logs := &logRecorder{}
	b := &recordingBinder{eps: []discovery.EndpointID{ep}}
	r := NewRegistrar(workerClient, RegistrarOptions{
		TTL:            2 * time.Second,
		Logger:         logs.logger(),
		Backoff:        Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond},
		AttemptTimeout: time.Second,
	})
	if err := r.Start(ctx, b.bind); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := r.InstanceID()
	awaitSnapshot(t, w, "the worker", hasIDs(old))

	br.pause()
	// The lease expires on the server; the watcher, which still reaches etcd, drops it.
	awaitSnapshot(t, w, "the worker gone during the outage", hasIDs())
	awaitState(t, r, StateLost)
	if r.InstanceID() != 0 {
		t.Fatalf("InstanceID() = %x during the outage", r.InstanceID())
	}
	if n := len(b.calls()); n != 1 {
		t.Fatalf("bind called %d times without a lease", n)
	}
	if err := r.Register(ctx, natsRecord(ep, old)); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("Register during the outage: %v, want ErrNotRegistered", err)
	}
	br.resume()

	snap := awaitSnapshot(t, w, "the worker back under a new id", func(s discovery.Snapshot) bool {
		return len(s.Instances) == 1 && s.Instances[0].InstanceID != old
	})
	awaitState(t, r, StateRegistered)
	if got := r.InstanceID(); got != snap.Instances[0].InstanceID {
		t.Fatalf("InstanceID() = %x, watcher sees %x", got, snap.Instances[0].InstanceID)
	}
	if logs.count("lease lost") != 1 || logs.count("re-registration failed") == 0 || logs.count("re-registered") != 1 {
		t.Errorf("outage not logged as lost, failing, re-registered: %q", logs.records)
	}
}
