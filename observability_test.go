package reqplane_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	clientv3 "go.etcd.io/etcd/client/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/reqplane/reqplane"
	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/discovery"
	"github.com/reqplane/reqplane/internal/echo"
	"github.com/reqplane/reqplane/internal/testcluster"
)

// statusEnv turns the status server on, on an OS-assigned loopback port.
var statusEnv = map[string]string{"DYN_SYSTEM_PORT": "0"}

// families is one scrape of /metrics.
type families map[string]*dto.MetricFamily

func scrape(t *testing.T, addr string) families {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the sample of name whose labels include want: a counter's or gauge's value, a
// histogram's sample count; -1 when there is none.
func (f families) value(name string, want map[string]string) float64 {
	fam := f[name]
	if fam == nil {
		return -1
	}
next:
	for _, m := range fam.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// eventually polls check until it returns "" or the deadline passes.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func health(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func callEcho(t *testing.T, ctx context.Context, client *reqplane.Client, body string) error {
	t.Helper()
	s, err := client.Generate(ctx, []byte(body))
	if err != nil {
		return err
	}
	_, err = collect(t, s)
	return err
}

// After requests on each plane, the worker's /metrics has the worker and ingress families with
// their labels and counts, and each client's registry its client families.
func TestMetricsOnEveryPlane(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := newRuntime(t, c, "http,tcp,nats", statusEnv)
	if err := w.Endpoint(echoEP).Start(ctx, echo.Handler); err != nil {
		t.Fatal(err)
	}
	addr := w.StatusAddr()
	if addr == "" {
		t.Fatal("no status server")
	}
	const perPlane = 3
	clients := map[string]*reqplane.Runtime{}
	var httpURL string
	for _, p := range []string{"http", "tcp", "nats"} {
		rt := newRuntime(t, c, p, nil)
		clients[p] = rt
		client, err := rt.Endpoint(echoEP).Client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.WaitForInstances(ctx); err != nil {
			t.Fatal(err)
		}
		if p == "http" {
			httpURL = client.Instances()[0].Address
		}
		for range perPlane {
			if err := callEcho(t, ctx, client, `{"text":"hello world"}`); err != nil {
				t.Fatal(err)
			}
		}
		if p == "tcp" { // one generate error: an error prologue
			if err := callEcho(t, ctx, client, `[]`); !errors.Is(err, reqplane.ErrGenerate) {
				t.Fatalf("bad body: %v", err)
			}
		}
	}
	// Refused before the ack: a broken frame, and a frame whose control header is not one.
	badHeader, err := codec.AppendFrame(nil, []byte(`{"id":1}`), []byte(`{}`), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range [][]byte{[]byte("not a frame"), badHeader} {
		resp, err := http.Post(httpURL, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad request answered %s", resp.Status)
		}
	}

	ep := map[string]string{"dynamo_namespace": "dynamo", "dynamo_component": "backend", "dynamo_endpoint": "generate"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	total := float64(3*perPlane + 1)
	eventually(t, "worker metrics", func() string {
		f := scrape(t, addr)
		checks := []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"dynamo_component_requests_total", ep, total},
			{"dynamo_component_request_duration_seconds", ep, total},
			{"dynamo_component_inflight_requests", ep, 0},
			{"dynamo_component_errors_total", with(ep, "error_type", "generate"), 1},
			{"dynamo_component_errors_total", with(ep, "error_type", "invalid_message"), 1},
			{"dynamo_component_errors_total", with(ep, "error_type", "deserialization"), 1},
			{"dynamo_component_errors_total", with(ep, "error_type", "response_stream"), 0},
			{"reqplane_ingress_requests_total", map[string]string{"plane": "http", "status": "202"}, perPlane},
			{"reqplane_ingress_requests_total", map[string]string{"plane": "http", "status": "400"}, 2},
			{"reqplane_ingress_requests_total", map[string]string{"plane": "tcp", "status": "ack"}, perPlane + 1},
			{"reqplane_ingress_requests_total", map[string]string{"plane": "nats", "status": "ack"}, perPlane},
			{"reqplane_ingress_ack_seconds", map[string]string{"plane": "http"}, perPlane},
			{"reqplane_ingress_ack_seconds", map[string]string{"plane": "tcp"}, perPlane + 1},
			{"reqplane_ingress_ack_seconds", map[string]string{"plane": "nats"}, perPlane},
		}
		for _, c := range checks {
			if got := f.value(c.name, c.labels); got != c.want {
				return fmt.Sprintf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
		// 3 requests of 22 bytes per plane, and the bad one of 2.
		if got := f.value("dynamo_component_request_bytes_total", ep); got != 3*perPlane*22+2 {
			return fmt.Sprintf("request bytes = %v", got)
		}
		// Each echo answers two items: {"data":{"text":"hello","index":0}} and the "world" one.
		if got := f.value("dynamo_component_response_bytes_total", ep); got != 3*perPlane*(35+35) {
			return fmt.Sprintf("response bytes = %v", got)
		}
		return ""
	})

	for p, rt := range clients {
		g := rt.MetricsGatherer()
		if g == nil {
			t.Fatal("no gatherer")
		}
		cl := map[string]string{"endpoint": "dynamo/backend/generate", "plane": p, "mode": "round_robin"}
		want := float64(perPlane)
		if p == "tcp" {
			want++
		}
		eventually(t, p+" client metrics", func() string {
			fams, err := g.Gather()
			if err != nil {
				return err.Error()
			}
			f := families{}
			for _, fam := range fams {
				f[fam.GetName()] = fam
			}
			for _, c := range []struct {
				name string
				want float64
			}{
				{"reqplane_client_ack_seconds", want},
				{"reqplane_client_stream_seconds", want},
				{"reqplane_client_first_item_seconds", perPlane}, // the error has no item
				{"reqplane_client_inflight_requests", 0},
			} {
				if got := f.value(c.name, cl); got != c.want {
					return fmt.Sprintf("%s%v = %v, want %v", c.name, cl, got, c.want)
				}
			}
			if got := f.value("reqplane_callhome_streams_open", nil); got != 0 {
				return fmt.Sprintf("call-home streams open = %v", got)
			}
			if got := f.value("reqplane_connections_open", map[string]string{"plane": p}); got < 1 {
				return fmt.Sprintf("connections open on %s = %v", p, got)
			}
			return ""
		})
	}
}

// A stale record (an instance whose port refuses connections) makes a client retry on another
// instance and mark the stale one down; both are counted.
func TestMetricsRetryAndMarkDown(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := newRuntime(t, c, "tcp", nil)
	if err := w.Endpoint(echoEP).Start(ctx, echo.Handler); err != nil {
		t.Fatal(err)
	}
	// A loopback port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	const staleID = 0xdead
	rec := discovery.NewRecord(discovery.EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "generate"}, staleID,
		discovery.Transport{Kind: discovery.KindTCP, Address: dead + "/dead/generate"})
	val, err := discovery.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	cli := etcdClient(t, c)
	if _, err := cli.Put(ctx, rec.Key(), string(val)); err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, c, "tcp", nil)
	client, err := rt.Endpoint(echoEP).Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "two instances", func() string {
		if n := len(client.Instances()); n != 2 {
			return fmt.Sprint(n, " instances")
		}
		return ""
	})
	// Round robin: one of two calls picks the stale instance first, then moves on.
	for range 2 {
		if err := callEcho(t, ctx, client, `{"text":"x"}`); err != nil {
			t.Fatal(err)
		}
	}
	fams, err := rt.MetricsGatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	f := families{}
	for _, fam := range fams {
		f[fam.GetName()] = fam
	}
	labels := map[string]string{"endpoint": "dynamo/backend/generate", "plane": "tcp", "mode": "round_robin"}
	for _, name := range []string{"reqplane_client_retries_total", "reqplane_client_instances_marked_down_total"} {
		if got := f.value(name, labels); got != 1 {
			t.Errorf("%s = %v, want 1", name, got)
		}
	}
	if got := f.value("reqplane_client_ack_seconds", labels); got != 2 {
		t.Errorf("acks = %v, want 2", got)
	}
}

func etcdClient(t *testing.T, c *testcluster.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Etcd.Endpoints(), DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// /health is 200 "ready" while serving, 503 "notready" while draining with a request in flight.
func TestHealthDuringDrain(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	started := make(chan struct{})
	release := make(chan struct{})
	slow := reqplane.HandlerFunc(func(ctx context.Context, req *reqplane.Request, out *reqplane.Responder) error {
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return out.Send([]byte(`{"done":true}`))
	})
	w := newRuntime(t, c, "http", statusEnv)
	// Before the first Start: the status server is not running yet.
	if w.StatusAddr() != "" {
		t.Fatal("status server running before Start")
	}
	if err := w.Endpoint(echoEP).Start(ctx, slow); err != nil {
		t.Fatal(err)
	}
	addr := w.StatusAddr()
	code, body := health(t, addr)
	if code != 200 || !strings.HasPrefix(body, `{"endpoints":{"generate":"ready"},"status":"ready","uptime":{"nanos":`) {
		t.Fatalf("serving: %d %s", code, body)
	}
	client, err := newRuntime(t, c, "http", nil).Endpoint(echoEP).Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.Generate(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	drained := make(chan error, 1)
	go func() { drained <- w.Shutdown(ctx) }()
	eventually(t, "health while draining", func() string {
		code, body := health(t, addr)
		if code != 503 || !strings.HasPrefix(body, `{"endpoints":{"generate":"notready"},"status":"notready",`) {
			return fmt.Sprintf("%d %s", code, body)
		}
		return ""
	})
	// Liveness stays up.
	resp, err := http.Get("http://" + addr + "/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/live while draining: %s", resp.Status)
	}
	close(release)
	if items, err := collect(t, s); err != nil || len(items) != 1 {
		t.Fatalf("in-flight request: %q %v", items, err)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	w.Close()
	if w.StatusAddr() != "" {
		t.Fatal("status server still running after Close")
	}
}

// leaseLostProbe is a slog.Handler that, when the registrar logs the lease loss (it does so
// while re-registration has not started), reads /health at once: the answer is what a probe
// sees in that window, with no timing involved.
type leaseLostProbe struct {
	slog.Handler
	addr func() string
	root *leaseLostProbe // where codes are recorded; nil for the root itself
	mu   sync.Mutex
	seen []int
}

func (p *leaseLostProbe) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "discovery: lease lost") {
		if resp, err := http.Get("http://" + p.addr() + "/health"); err == nil {
			resp.Body.Close()
			r := p.rootOf()
			r.mu.Lock()
			r.seen = append(r.seen, resp.StatusCode)
			r.mu.Unlock()
		}
	}
	if !p.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return p.Handler.Handle(ctx, r)
}

// Enabled lets every record reach Handle, which filters for the inner handler.
func (p *leaseLostProbe) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs and WithGroup keep the probe (the registrar may log through a derived logger); the
// derived probes share the parent's record of codes.
func (p *leaseLostProbe) WithAttrs(as []slog.Attr) slog.Handler {
	return &leaseLostProbe{Handler: p.Handler.WithAttrs(as), addr: p.addr, root: p.rootOf()}
}

func (p *leaseLostProbe) WithGroup(name string) slog.Handler {
	return &leaseLostProbe{Handler: p.Handler.WithGroup(name), addr: p.addr, root: p.rootOf()}
}

func (p *leaseLostProbe) rootOf() *leaseLostProbe {
	if p.root != nil {
		return p.root
	}
	return p
}

func (p *leaseLostProbe) codes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.seen...)
}

// Revoking the worker's lease behind its back makes /health 503 until it re-registers, then 200.
func TestHealthAfterLeaseLoss(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg, err := reqplane.LoadConfigFrom(testcluster.Lookup(c.Env("tcp", statusEnv)))
	if err != nil {
		t.Fatal(err)
	}
	var w *reqplane.Runtime
	probe := &leaseLostProbe{
		Handler: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}),
		addr:    func() string { return w.StatusAddr() },
	}
	w = reqplane.New(cfg, reqplane.WithLogger(slog.New(probe)))
	t.Cleanup(func() { w.Close() })
	if err := w.Endpoint(echoEP).Start(ctx, echo.Handler); err != nil {
		t.Fatal(err)
	}
	if code, body := health(t, w.StatusAddr()); code != 200 {
		t.Fatalf("before: %d %s", code, body)
	}
	old := w.InstanceID()
	cli := etcdClient(t, c)
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(old)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "re-registration", func() string {
		if id := w.InstanceID(); id == 0 || id == old {
			return "instance " + id.String()
		}
		if code, body := health(t, w.StatusAddr()); code != 200 {
			return fmt.Sprintf("%d %s", code, body)
		}
		return ""
	})
	if got := probe.codes(); len(got) != 1 || got[0] != 503 {
		t.Fatalf("/health while the lease was lost: %v, want [503]", got)
	}
}

// One request on each plane makes one trace: the client's span and, under it, the worker's,
// which the handler's context carries.
func TestTraceAcrossPlanes(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	workerSpans, clientSpans := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	workerTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(workerSpans))
	clientTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(clientSpans))
	t.Cleanup(func() {
		_ = workerTP.Shutdown(context.Background())
		_ = clientTP.Shutdown(context.Background())
	})
	h := reqplane.HandlerFunc(func(ctx context.Context, req *reqplane.Request, out *reqplane.Responder) error {
		// User code adds its own span under the handler's.
		_, child := trace.SpanFromContext(ctx).TracerProvider().Tracer("test").Start(ctx, "user.work")
		child.End()
		req.Logger().Debug("handled")
		return out.Send([]byte(`{"ok":true}`))
	})
	newRT := func(planes string, tp trace.TracerProvider) *reqplane.Runtime {
		cfg, err := reqplane.LoadConfigFrom(testcluster.Lookup(c.Env(planes, nil)))
		if err != nil {
			t.Fatal(err)
		}
		rt := reqplane.New(cfg, reqplane.WithTracerProvider(tp),
			reqplane.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
		t.Cleanup(func() { rt.Close() })
		return rt
	}
	w := newRT("http,tcp,nats", workerTP)
	if err := w.Endpoint(echoEP).Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"http", "tcp", "nats"} {
		t.Run(p, func(t *testing.T) {
			client, err := newRT(p, clientTP).Endpoint(echoEP).Client(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := client.WaitForInstances(ctx); err != nil {
				t.Fatal(err)
			}
			rid := "rid-" + p
			s, err := client.Generate(ctx, []byte(`{}`), reqplane.WithRequestID(rid))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := collect(t, s); err != nil {
				t.Fatal(err)
			}
			cs := findSpan(clientSpans.Ended(), "reqplane.client", rid)
			if cs == nil {
				t.Fatal("no client span")
			}
			if attr(cs, "reqplane.plane") != p || attr(cs, "reqplane.instance") != w.InstanceID().String() ||
				attr(cs, "reqplane.router_mode") != "round_robin" || attr(cs, "reqplane.endpoint") != "dynamo/backend/generate" {
				t.Errorf("client span attributes: %v", cs.Attributes())
			}
			var events []string
			for _, e := range cs.Events() {
				events = append(events, e.Name)
			}
			if strings.Join(events, ",") != "route,ack,first_item" {
				t.Errorf("client span events %v", events)
			}
			var ws, child sdktrace.ReadOnlySpan
			eventually(t, "worker spans", func() string {
				ws = findSpan(workerSpans.Ended(), "reqplane.handler", rid)
				if ws == nil {
					return "no handler span"
				}
				for _, s := range workerSpans.Ended() {
					if s.Name() == "user.work" && s.Parent().SpanID() == ws.SpanContext().SpanID() {
						child = s
					}
				}
				if child == nil {
					return "no user span under the handler's"
				}
				return ""
			})
			if ws.SpanContext().TraceID() != cs.SpanContext().TraceID() {
				t.Errorf("trace ids differ: worker %s, client %s", ws.SpanContext().TraceID(), cs.SpanContext().TraceID())
			}
			if ws.Parent().SpanID() != cs.SpanContext().SpanID() || !ws.Parent().IsRemote() {
				t.Errorf("worker span's parent %v, want the client span %s (remote)", ws.Parent(), cs.SpanContext().SpanID())
			}
			if ws.SpanKind() != trace.SpanKindServer || cs.SpanKind() != trace.SpanKindClient {
				t.Errorf("kinds: worker %v, client %v", ws.SpanKind(), cs.SpanKind())
			}
			if attr(ws, "reqplane.plane") != p {
				t.Errorf("worker span attributes: %v", ws.Attributes())
			}
		})
	}
}

func findSpan(spans []sdktrace.ReadOnlySpan, name, requestID string) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.Name() == name && attr(s, "reqplane.request_id") == requestID {
			return s
		}
	}
	return nil
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}
