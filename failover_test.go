package reqplane_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reqplane/reqplane"
	"github.com/reqplane/reqplane/internal/discovery"
	"github.com/reqplane/reqplane/internal/discovery/etcd"
	"github.com/reqplane/reqplane/internal/echo"
	"github.com/reqplane/reqplane/internal/testcluster"
)

// registerDead advertises an instance of ep whose address refuses connections, as a crashed
// worker's record does until its lease expires.
func registerDead(t *testing.T, ctx context.Context, c *testcluster.Cluster, ep reqplane.EndpointID, tr discovery.Transport) uint64 {
	t.Helper()
	cli, err := etcd.NewClient(ctx, etcd.ClientConfig{Endpoints: c.Etcd.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	s, err := etcd.NewSession(ctx, cli, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	id := discovery.EndpointID{Namespace: ep.Namespace, Component: ep.Component, Endpoint: ep.Endpoint}
	if err := s.Register(ctx, discovery.NewRecord(id, s.ID(), tr)); err != nil {
		t.Fatal(err)
	}
	return s.ID()
}

// A request that cannot be delivered to one instance moves to another before the ack, and the
// dead instance is marked down so that later requests avoid it.
func TestRetryBeforeAck(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tc := range []struct {
		planes string
		dead   func(id uint64) discovery.Transport
	}{
		{"tcp", func(uint64) discovery.Transport {
			return discovery.Transport{Kind: discovery.KindTCP, Address: "127.0.0.1:1/dead/generate"}
		}},
		{"http", func(uint64) discovery.Transport {
			return discovery.Transport{Kind: discovery.KindHTTP, Address: "http://127.0.0.1:1/v1/dynamo/generate"}
		}},
		{"nats", func(id uint64) discovery.Transport { // nobody subscribes: no responders
			return discovery.Transport{Kind: discovery.KindNATS, Address: "dynamo_dead.generate-" + discovery.FormatInstanceID(id)}
		}},
	} {
		t.Run(tc.planes, func(t *testing.T) {
			ep := reqplane.EndpointID{Namespace: "dynamo", Component: "retry" + tc.planes, Endpoint: "generate"}
			dead := registerDead(t, ctx, c, ep, tc.dead(1))
			w := newRuntime(t, c, tc.planes, nil)
			if err := w.Endpoint(ep).Start(ctx, echo.Handler); err != nil {
				t.Fatal(err)
			}
			client, err := newRuntime(t, c, tc.planes, nil).Endpoint(ep).Client(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for len(client.Instances()) < 2 {
				time.Sleep(10 * time.Millisecond)
			}
			for i := range 6 {
				s, err := client.Generate(ctx, []byte(`{"text":"ok"}`))
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if s.Instance() != w.InstanceID() {
					t.Fatalf("request %d served by %s", i, s.Instance())
				}
				if items, err := collect(t, s); err != nil || len(items) != 1 {
					t.Fatalf("request %d: %q %v", i, items, err)
				}
			}
			down := false
			for _, in := range client.Instances() {
				if uint64(in.ID) == dead {
					down = in.Down
				}
			}
			if !down {
				t.Fatal("the dead instance is not marked down")
			}
			// Direct routing to the dead instance fails, before any ack, as unavailable.
			_, err = client.Generate(ctx, []byte(`{"text":"x"}`), reqplane.WithInstance(reqplane.InstanceID(dead)))
			if !errors.Is(err, reqplane.ErrUnavailable) {
				t.Fatalf("direct to the dead instance: %v", err)
			}
		})
	}
}

// After the ack nothing is retried: a stream that breaks fails with the spec's error, the handler
// ran exactly once, and the instance is marked suspect.
func TestNoRetryAfterAck(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var calls atomic.Int32
	worker := newRuntime(t, c, "tcp", nil)
	h := reqplane.HandlerFunc(func(ctx context.Context, req *reqplane.Request, out *reqplane.Responder) error {
		calls.Add(1)
		if err := out.Send([]byte(`1`)); err != nil {
			return err
		}
		panic("engine crashed") // the worker survives; the stream ends with an in-band error
	})
	if err := worker.Endpoint(echoEP).Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	client, err := newRuntime(t, c, "tcp", nil).Endpoint(echoEP).Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.Generate(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	items, err := collect(t, s)
	if err != nil || len(items) != 2 || items[1] != `{"event":"error","comment":["handler panicked: engine crashed"]}` {
		t.Fatalf("items %q, err %v", items, err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times", n)
	}
	// Kill the worker's process-level state mid-stream: the runtime closes with a request in flight.
	block := make(chan struct{})
	defer close(block)
	ep2 := reqplane.EndpointID{Namespace: "dynamo", Component: "broken", Endpoint: "generate"}
	w2 := newRuntime(t, c, "tcp", nil)
	if err := w2.Endpoint(ep2).Start(ctx, reqplane.HandlerFunc(func(ctx context.Context, _ *reqplane.Request, out *reqplane.Responder) error {
		calls.Add(1)
		_ = out.Send([]byte(`1`))
		select {
		case <-ctx.Done():
		case <-block:
		}
		return ctx.Err()
	})); err != nil {
		t.Fatal(err)
	}
	cfg, err := reqplane.LoadConfigFrom(testcluster.Lookup(c.Env("tcp", nil)))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	crt := reqplane.New(cfg, reqplane.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer crt.Close()
	c2, err := crt.Endpoint(ep2).Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err = c2.Generate(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer scancel()
	go w2.Shutdown(sctx) // the drain deadline passes: the handler is cancelled, the stream cut
	_, err = s.Recv()
	if !errors.Is(err, reqplane.ErrStream) {
		t.Fatalf("broken stream (%s call-home): %#v", s.CallHome(), err)
	}
	if calls.Load() != 2 {
		t.Fatalf("handler calls %d, want 2 (no retry)", calls.Load())
	}
	// The instance leaves discovery as the drain revokes its lease, so its down mark is seen in
	// the client's log rather than in Instances.
	if !strings.Contains(logs.String(), `msg="instance marked down"`) {
		t.Fatalf("the instance that broke its stream was not marked suspect; log:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A record without "response_mux" (as Dynamo's workers write) is only ever offered the classic
// call-home: Dynamo rejects the mux transport and has no fallback.
func TestDynamoRecordGetsClassicCallHome(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep := reqplane.EndpointID{Namespace: "dynamo", Component: "legacy", Endpoint: "generate"}
	w := newRuntime(t, c, "http", nil)
	if err := w.Endpoint(ep).Start(ctx, echo.Handler); err != nil {
		t.Fatal(err)
	}
	client, err := newRuntime(t, c, "http", nil).Endpoint(ep).Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.WaitForInstances(ctx); err != nil {
		t.Fatal(err)
	}
	// The HTTP plane routes by endpoint name, so a second record for the same URL, written as
	// Dynamo writes it, reaches the same worker.
	url := client.Instances()[0].Address
	legacy := registerDead(t, ctx, c, ep, discovery.Transport{Kind: discovery.KindHTTP, Address: url})
	for len(client.Instances()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	for _, tc := range []struct {
		id   reqplane.InstanceID
		want string
	}{{w.InstanceID(), "mux"}, {reqplane.InstanceID(legacy), "classic"}} {
		s, err := client.Generate(ctx, []byte(`{"text":"a b"}`), reqplane.WithInstance(tc.id))
		if err != nil {
			t.Fatal(err)
		}
		if s.CallHome() != tc.want {
			t.Errorf("instance %s: %s call-home, want %s", tc.id, s.CallHome(), tc.want)
		}
		if items, err := collect(t, s); err != nil || len(items) != 2 {
			t.Fatalf("instance %s: %q %v", tc.id, items, err)
		}
	}
}

// TestDrainDeadlineReleasesBlockedSend: past the drain deadline, a handler blocked in Send
// because its requester reads nothing (classic: a full socket; mux: no credit) is released by
// closing its stream, so Shutdown returns instead of waiting for a reader that never comes.
func TestDrainDeadlineReleasesBlockedSend(t *testing.T) {
	c := startCluster(t)
	item := []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
	for _, tc := range []struct {
		name string
		mode reqplane.CallHomeMode
	}{{"classic", reqplane.CallHomeClassic}, {"mux", reqplane.CallHomeAuto}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ep := reqplane.EndpointID{Namespace: "dynamo", Component: "flood-" + tc.name, Endpoint: "generate"}
			w := newRuntime(t, c, "tcp", nil)
			sending := make(chan struct{}, 1)
			if err := w.Endpoint(ep).Start(ctx, reqplane.HandlerFunc(func(ctx context.Context, _ *reqplane.Request, out *reqplane.Responder) error {
				for {
					if err := out.Send(item); err != nil {
						return err
					}
					select {
					case sending <- struct{}{}:
					default:
					}
				}
			})); err != nil {
				t.Fatal(err)
			}
			client, err := newRuntime(t, c, "tcp", nil).Endpoint(ep).Client(ctx, reqplane.WithCallHome(tc.mode))
			if err != nil {
				t.Fatal(err)
			}
			s, err := client.Generate(ctx, []byte(`{}`), reqplane.WaitForInstance())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			<-sending // the handler streams; nobody reads, so it soon blocks in Send

			sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer scancel()
			done := make(chan struct{})
			go func() {
				defer close(done)
				w.Shutdown(sctx)
			}()
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatal("Shutdown did not return: the handler blocked in Send was not released")
			}
		})
	}
}
