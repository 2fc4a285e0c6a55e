package etcd

import (
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/reqplane/reqplane/internal/discovery"
	"github.com/reqplane/reqplane/internal/discovery/etcdembed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor is generous: -race on two shared cores is slow, and nothing here asserts timing.
const waitFor = 20 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startEtcd starts an embedded etcd on free loopback ports and a fresh data directory.
func startEtcd(t *testing.T) *etcdembed.Server {
	t.Helper()
	s, err := etcdembed.Start(testContext(t), etcdembed.Config{
		DataDir:          t.TempDir(),
		ListenClientURLs: []string{"http://127.0.0.1:0"},
		ListenPeerURLs:   []string{"http://127.0.0.1:0"},
		UnsafeNoFsync:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newTestClient connects to endpoints through NewClient and closes the client at cleanup.
func newTestClient(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := NewClient(testContext(t), ClientConfig{Endpoints: endpoints, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startWatcher starts a watcher on ep and closes it at cleanup.
func startWatcher(t *testing.T, c *clientv3.Client, ep discovery.EndpointID, log *slog.Logger) *Watcher {
	t.Helper()
	w := NewWatcher(c, ep, WatcherOptions{Logger: log, Backoff: Backoff{Min: 20 * time.Millisecond, Max: 500 * time.Millisecond}})
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// awaitSnapshot reads snapshots until one satisfies ok, failing after waitFor.
func awaitSnapshot(t *testing.T, w *Watcher, what string, ok func(discovery.Snapshot) bool) discovery.Snapshot {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	var last discovery.Snapshot
	for {
		select {
		case s, open := <-w.Updates():
			if !open {
				t.Fatalf("updates closed while waiting for %s", what)
			}
			if ok(s) {
				return s
			}
			last = s
		case <-timer.C:
			t.Fatalf("no snapshot with %s; last ids %x at revision %d", what, last.IDs(), last.Revision)
		}
	}
}

func hasIDs(ids ...uint64) func(discovery.Snapshot) bool {
	slices.Sort(ids)
	return func(s discovery.Snapshot) bool { return slices.Equal(s.IDs(), ids) }
}

// natsRecord is the one-plane record an instance of ep would advertise.
func natsRecord(ep discovery.EndpointID, id uint64) discovery.Record {
	return discovery.NewRecord(ep, id, discovery.Transport{Kind: discovery.KindNATS, Address: discovery.NATSSubject(ep, id)})
}

// logRecorder is a slog handler that keeps every record, for asserting on logs.
type logRecorder struct {
	mu      sync.Mutex
	records []string
}

func (l *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, string(p))
	return len(p), nil
}

// count returns how many records contain every one of subs.
func (l *logRecorder) count(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, r := range l.records {
		for _, s := range subs {
			if !strings.Contains(r, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// bridge is a loopback TCP proxy in front of etcd whose traffic a test can cut, to hold one
// client back while others change etcd.
type bridge struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	paused bool
	conns  map[net.Conn]struct{}
}

func newBridge(t *testing.T, target string) *bridge {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bridge{target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *bridge) endpoint() string { return "http://" + b.ln.Addr().String() }

func (b *bridge) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", b.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		b.mu.Lock()
		if b.paused {
			b.mu.Unlock()
			c.Close()
			up.Close()
			continue
		}
		b.conns[c], b.conns[up] = struct{}{}, struct{}{}
		b.mu.Unlock()
		b.wg.Add(2)
		go b.pipe(c, up)
		go b.pipe(up, c)
	}
}

func (b *bridge) pipe(dst, src net.Conn) {
	defer b.wg.Done()
	_, _ = io.Copy(dst, src) // either side closing ends the pair
	dst.Close()
	src.Close()
	b.mu.Lock()
	delete(b.conns, dst)
	delete(b.conns, src)
	b.mu.Unlock()
}

// pause cuts every connection and refuses new ones until resume.
func (b *bridge) pause() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paused = true
	for c := range b.conns {
		c.Close()
	}
}

func (b *bridge) resume() {
	b.mu.Lock()
	b.paused = false
	b.mu.Unlock()
}

func (b *bridge) close() {
	b.ln.Close()
	b.pause()
	b.wg.Wait()
}
