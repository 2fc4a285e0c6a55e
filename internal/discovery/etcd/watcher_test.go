package etcd

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reqplane/reqplane/internal/discovery"
	"github.com/reqplane/reqplane/internal/discovery/etcdembed"
)

// Spec vector V11, as Dynamo writes it.
const (
	v11ID     = uint64(0x694d98147d54be25)
	v11Tagged = `{"type":"Endpoint","component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":7587888160958627365,"transport":{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"}}`
	v11Old    = `{
  "component": "backend",
  "endpoint": "generate",
  "namespace": "dynamo",
  "instance_id": 7587888160958627365,
  "transport": {
    "nats_tcp": "dynamo_backend.generate-694d98147d54be25"
  }
}`
	v11All = `{"type":"Endpoint","component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":7587888160958627365,"transport":{"http":"http://10.0.0.5:8081/v1/dynamo/generate"},"transports":[{"http":"http://10.0.0.5:8081/v1/dynamo/generate"},{"tcp":"10.0.0.5:45123/694d98147d54be25/generate"},{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"}]}`
)

var dynamoEP = discovery.EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "generate"}

func TestWatcherReadsDynamoRecordsAndSkipsBadValues(t *testing.T) {
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.Endpoints())
	logs := &logRecorder{}
	w := startWatcher(t, c, dynamoEP, logs.logger())
	awaitSnapshot(t, w, "the empty first snapshot", hasIDs())

	const otherID = 0xabc
	otherOld := `{"component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":2748,"transport":{"nats_tcp":"dynamo_backend.generate-abc"},"unknown":[1]}`
	puts := []struct{ key, value string }{
		{dynamoEP.Key(v11ID), v11Tagged},
		{dynamoEP.Key(otherID), otherOld},
		{dynamoEP.Key(1), "\x00garbage"},
		{dynamoEP.Key(2), `{"type":"Model","name":"llama"}`},
		{dynamoEP.Key(3), v11Tagged}, // key and record disagree on the id
		{dynamoEP.Prefix() + "XYZ", v11Tagged},
		{dynamoEP.Prefix() + "abc/extra", v11Tagged},
		{"v1/instances/dynamo/backend/generate_x/5", v11Tagged}, // another endpoint
	}
	for _, p := range puts {
		if _, err := c.Put(ctx, p.key, p.value); err != nil {
			t.Fatal(err)
		}
	}
	snap := awaitSnapshot(t, w, "the two Dynamo records", hasIDs(otherID, v11ID))
	if rec, _ := snap.Instance(v11ID); rec.Transport.Address != "dynamo_backend.generate-694d98147d54be25" {
		t.Fatalf("record %+v", rec)
	}

	// The untagged, pretty-printed form and the multi-plane form replace values in place.
	for _, v := range []string{v11Old, v11All} {
		if _, err := c.Put(ctx, dynamoEP.Key(v11ID), v); err != nil {
			t.Fatal(err)
		}
	}
	snap = awaitSnapshot(t, w, "the three-plane record", func(s discovery.Snapshot) bool {
		r, ok := s.Instance(v11ID)
		return ok && len(r.Transports()) == 3
	})
	if got := snap.IDs(); !slices.Equal(got, []uint64{otherID, v11ID}) {
		t.Fatalf("ids %x", got)
	}

	// Each bad value was logged exactly once, though more events arrived afterwards; the
	// other record type was skipped silently.
	for _, key := range []string{dynamoEP.Key(1), dynamoEP.Key(3), dynamoEP.Prefix() + "XYZ", dynamoEP.Prefix() + "abc/extra"} {
		if n := logs.count("skipping an invalid instance value", "key="+key); n != 1 {
			t.Errorf("%s logged %d times, want once", key, n)
		}
	}
	if n := logs.count("key=" + dynamoEP.Key(2)); n != 0 {
		t.Errorf("the Model record was logged %d times", n)
	}

	// A valid record turning into garbage takes its instance out; deleting restores nothing.
	if _, err := c.Put(ctx, dynamoEP.Key(otherID), "{"); err != nil {
		t.Fatal(err)
	}
	awaitSnapshot(t, w, "the garbled instance removed", hasIDs(v11ID))
	if _, err := c.Delete(ctx, dynamoEP.Key(v11ID)); err != nil {
		t.Fatal(err)
	}
	awaitSnapshot(t, w, "the deleted instance removed", hasIDs())

	// List shows the malformed values with their reason and leaves the other type out.
	entries, err := List(ctx, c, dynamoEP.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, e := range entries {
		if e.Err == nil || !errors.Is(e.Err, discovery.ErrMalformedRecord) && !errors.Is(e.Err, discovery.ErrInvalidKey) {
			t.Errorf("entry %s: err %v", e.Key, e.Err)
		}
		bad = append(bad, e.Key)
	}
	want := []string{dynamoEP.Key(1), dynamoEP.Key(3), dynamoEP.Key(otherID), dynamoEP.Prefix() + "XYZ", dynamoEP.Prefix() + "abc/extra"}
	if !slices.Equal(bad, want) {
		t.Errorf("List keys %q, want %q", bad, want)
	}
}

func TestPrefixIsolation(t *testing.T) {
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.Endpoints())
	gen := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "gen"}
	generate := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "generate"}
	wGen := startWatcher(t, c, gen, nil)
	wGenerate := startWatcher(t, c, generate, nil)

	sess, err := NewSession(ctx, c, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	sess2, err := NewSession(ctx, c, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess2.Close()
	if err := sess.Register(ctx, natsRecord(gen, sess.ID())); err != nil {
		t.Fatal(err)
	}
	if err := sess2.Register(ctx, natsRecord(generate, sess2.ID())); err != nil {
		t.Fatal(err)
	}
	awaitSnapshot(t, wGen, "gen's instance only", hasIDs(sess.ID()))
	awaitSnapshot(t, wGenerate, "generate's instance only", hasIDs(sess2.ID()))

	for _, tt := range []struct {
		path string
		want []uint64
	}{
		{"ns/comp/gen", []uint64{sess.ID()}},
		{"ns/comp/generate", []uint64{sess2.ID()}},
		{"ns/comp", []uint64{sess.ID(), sess2.ID()}},
		{"ns/co", nil},
	} {
		prefix, err := discovery.InstancesPrefix(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := List(ctx, c, prefix)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, e := range entries {
			got = append(got, e.Record.InstanceID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) ids %x, want %x", tt.path, got, tt.want)
		}
	}
	if _, err := List(ctx, c, "v1/instances/ns/comp/gen"); !errors.Is(err, discovery.ErrInvalidKey) {
		t.Errorf("List without trailing slash: %v", err)
	}
	// Registering the same key twice in one session fails the txn compare.
	if err := sess.Register(ctx, natsRecord(gen, sess.ID())); !errors.Is(err, ErrKeyExists) {
		t.Errorf("second Register: %v, want ErrKeyExists", err)
	}
}

func TestWatcherSurvivesRestartAndCompaction(t *testing.T) {
	ctx := testContext(t)
	srv := startEtcd(t)
	cfg := srv.Config()
	target := srv.Endpoints()[0][len("http://"):]
	ep := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "ep"}

	// Both clients reach etcd through bridges the test can cut: cutting them before a stop
	// is what a crash looks like to clients, and it spares etcd's graceful wait for open
	// streams. The watcher's bridge also holds it back while the others compact.
	brWatch, brDirect := newBridge(t, target), newBridge(t, target)
	direct := newTestClient(t, []string{brDirect.endpoint()})
	watchClient := newTestClient(t, []string{brWatch.endpoint()})
	logs := &logRecorder{}
	w := startWatcher(t, watchClient, ep, logs.logger())

	a, err := NewSession(ctx, direct, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Register(ctx, natsRecord(ep, a.ID())); err != nil {
		t.Fatal(err)
	}
	awaitSnapshot(t, w, "instance a", hasIDs(a.ID()))

	// Restart etcd on the same data directory and ports. Leases and keys survive it, and the
	// watcher resumes and sees what changes afterwards.
	brWatch.pause()
	brDirect.pause()
	srv.Close()
	srv2, err := etcdembed.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		brWatch.pause()
		brDirect.pause()
		srv2.Close()
	})
	brWatch.resume()
	brDirect.resume()
	b, err := NewSession(ctx, direct, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Register(ctx, natsRecord(ep, b.ID())); err != nil {
		t.Fatal(err)
	}
	awaitSnapshot(t, w, "instances a and b after the restart", hasIDs(a.ID(), b.ID()))

	// Cut the watcher off, change the set, and compact past everything it has seen: when it
	// reconnects its watch revision is compacted, and it must re-list.
	brWatch.pause()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Put(ctx, ep.Key(v11ID), `{"component":"comp","endpoint":"ep","namespace":"ns","instance_id":7587888160958627365,"transport":{"tcp":"127.0.0.1:1/694d98147d54be25/ep"}}`); err != nil {
		t.Fatal(err)
	}
	put, err := direct.Put(ctx, "unrelated", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Compact(ctx, put.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	brWatch.resume()

	awaitSnapshot(t, w, "b and the raw record after the compaction", hasIDs(b.ID(), v11ID))
	if logs.count("re-listing", "compacted") == 0 {
		t.Errorf("the watcher did not re-list after the compaction: %q", logs.records)
	}

	// And it keeps watching after the re-list.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	awaitSnapshot(t, w, "b gone", hasIDs(v11ID))
}

func TestWatcherLatestWins(t *testing.T) {
	ep := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "ep"}
	w := NewWatcher(nil, ep, WatcherOptions{})
	w.instances = map[uint64]discovery.Record{}
	// Nobody reads: publishing must never block, and only the newest snapshot remains.
	for id := uint64(1); id <= 5; id++ {
		w.instances[id] = natsRecord(ep, id)
		w.publish(int64(id))
	}
	w.publish(6) // unchanged set: not delivered again
	if n := len(w.updates); n != 1 {
		t.Fatalf("%d snapshots queued, want 1", n)
	}
	s := <-w.Updates()
	if !slices.Equal(s.IDs(), []uint64{1, 2, 3, 4, 5}) || s.Revision != 5 {
		t.Fatalf("snapshot ids %v at %d", s.IDs(), s.Revision)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, open := <-w.Updates(); open {
		t.Fatal("Updates not closed by Close")
	}
}

func TestWatcherLifecycle(t *testing.T) {
	s := startEtcd(t)
	c := newTestClient(t, s.Endpoints())
	ep := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "ep"}

	bad := NewWatcher(c, discovery.EndpointID{Namespace: "ns", Component: "a/b", Endpoint: "ep"}, WatcherOptions{})
	if err := bad.Start(context.Background()); !errors.Is(err, discovery.ErrInvalidName) {
		t.Fatalf("Start with a bad name: %v", err)
	}
	bad.Close()

	// Stopping the context stops the watcher too; Close still waits and is idempotent.
	ctx, cancel := context.WithCancel(context.Background())
	w := NewWatcher(c, ep, WatcherOptions{})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	awaitSnapshot(t, w, "the first snapshot", hasIDs())
	cancel()
	for range w.Updates() {
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}
