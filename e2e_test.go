package reqplane_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reqplane/reqplane"
	"github.com/reqplane/reqplane/internal/echo"
	"github.com/reqplane/reqplane/internal/testcluster"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var echoEP = reqplane.EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "generate"}

func startCluster(t *testing.T) *testcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := testcluster.Start(ctx, testcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newRuntime(t *testing.T, c *testcluster.Cluster, planes string, extra map[string]string) *reqplane.Runtime {
	t.Helper()
	cfg, err := reqplane.LoadConfigFrom(testcluster.Lookup(c.Env(planes, extra)))
	if err != nil {
		t.Fatal(err)
	}
	rt := reqplane.New(cfg, reqplane.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	t.Cleanup(func() { rt.Close() })
	return rt
}

func collect(t *testing.T, s *reqplane.ResponseStream) ([]string, error) {
	t.Helper()
	var items []string
	for item, err := range s.All() {
		if err != nil {
			return items, err
		}
		items = append(items, string(item))
	}
	return items, nil
}

// Every plane, and a worker serving all three, answers the echo request identically, with the
// multiplexed call-home (the default between reqplane peers) and with the classic one.
func TestEndToEndPlanes(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tc := range []struct{ worker, client, wantPlane string }{
		{"http", "http", "http"},
		{"tcp", "tcp", "tcp"},
		{"nats", "nats", "nats"},
		{"http,tcp,nats", "tcp", "tcp"},
		{"http,tcp,nats", "nats,http", "nats"},
		{"nats,tcp", "http", "nats"}, // the client's plane is not offered: the record's primary transport
	} {
		t.Run(tc.worker+"->"+tc.client, func(t *testing.T) {
			w := newRuntime(t, c, tc.worker, nil)
			ep := echoEP
			ep.Component = "c" + reqplane.InstanceID(time.Now().UnixNano()).String() // one endpoint per case
			if err := w.Endpoint(ep).Start(ctx, echo.Handler); err != nil {
				t.Fatal(err)
			}
			cl := newRuntime(t, c, tc.client, nil)
			for _, mode := range []struct {
				opt  reqplane.CallHomeMode
				name string
			}{{reqplane.CallHomeAuto, "mux"}, {reqplane.CallHomeClassic, "classic"}} {
				t.Run(mode.name, func(t *testing.T) {
					client, err := cl.Endpoint(ep).Client(ctx, reqplane.WithCallHome(mode.opt))
					if err != nil {
						t.Fatal(err)
					}
					defer client.Close()
					roundTrip(t, ctx, client, w.InstanceID(), tc.wantPlane, mode.name)
				})
			}
		})
	}
}

func roundTrip(t *testing.T, ctx context.Context, client *reqplane.Client, instance reqplane.InstanceID, wantPlane, wantCallHome string) {
	t.Helper()
	if err := client.WaitForInstances(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := client.Generate(ctx, []byte(`{"text":"hello world"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Plane() != wantPlane || s.Instance() != instance || s.CallHome() != wantCallHome {
		t.Errorf("served on %s by %s with the %s call-home, want %s by %s with %s", s.Plane(), s.Instance(), s.CallHome(), wantPlane, instance, wantCallHome)
	}
	items, err := collect(t, s)
	want := []string{`{"data":{"text":"hello","index":0}}`, `{"data":{"text":"world","index":1}}`}
	if err != nil || len(items) != 2 || items[0] != want[0] || items[1] != want[1] {
		t.Fatalf("items %q, err %v", items, err)
	}
	// A bad body is a generate error, with the engine's text.
	s, err = client.Generate(ctx, []byte(`[]`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	if !errors.Is(err, reqplane.ErrGenerate) || err.Error() != `Generate Error: request body must be a JSON object with a "text" field` {
		t.Fatalf("bad body: %v", err)
	}
}

func TestNoInstances(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newRuntime(t, c, "tcp", nil)
	client, err := cl.Endpoint(echoEP).Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Generate(ctx, []byte(`{"text":"x"}`))
	if !errors.Is(err, reqplane.ErrNoInstances) || err.Error() != "no instances found for endpoint dynamo/backend/generate" {
		t.Fatalf("err = %v", err)
	}
	// Waiting for an instance: one appears, and the call goes through.
	w := newRuntime(t, c, "tcp", nil)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = w.Endpoint(echoEP).Start(ctx, echo.Handler)
	}()
	s, err := client.Generate(ctx, []byte(`{"text":"late"}`), reqplane.WaitForInstance())
	if err != nil {
		t.Fatal(err)
	}
	if items, err := collect(t, s); err != nil || len(items) != 1 {
		t.Fatalf("items %q, err %v", items, err)
	}
}

// Cancelling the caller's context stops the handler on the worker.
func TestCancelReachesWorker(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	h := reqplane.HandlerFunc(func(ctx context.Context, req *reqplane.Request, out *reqplane.Responder) error {
		if err := out.Send([]byte(`{"n":1}`)); err != nil {
			return err
		}
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return ctx.Err()
	})
	w := newRuntime(t, c, "http", nil)
	if err := w.Endpoint(echoEP).Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	client, err := newRuntime(t, c, "http", nil).Endpoint(echoEP).Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	callCtx, callCancel := context.WithCancel(ctx)
	s, err := client.Generate(callCtx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	callCancel()
	if _, err := s.Recv(); !errors.Is(err, reqplane.ErrCanceled) {
		t.Fatalf("after cancel: %v", err)
	}
	select {
	case cause := <-stopped:
		if cause == nil {
			t.Fatal("no cause")
		}
	case <-ctx.Done():
		t.Fatal("the handler never saw the cancellation")
	}
	if _, err := s.Recv(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("recv after close: %v", err)
	}
}
