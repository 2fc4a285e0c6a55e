package telemetry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/config"
	"github.com/reqplane/reqplane/internal/plane"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestObserveIngress(t *testing.T) {
	ep := plane.Endpoint{Namespace: "ns", Component: "comp", Name: "gen", InstanceID: 1}
	_, frameErr := plane.Decode([]byte("junk"), 1<<20)
	hdr, err := codec.AppendFrame(nil, []byte(`{}`), []byte(`{}`), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	_, headerErr := plane.Decode(hdr, 1<<20)
	start := time.Now()
	tests := []struct {
		name      string
		o         plane.Outcome
		status    string // the status label expected
		errorType string // the worker error expected, if any
	}{
		{"http ack", plane.Outcome{Plane: "http", Endpoint: ep, Status: 202, Start: start}, "202", ""},
		{"http bad frame", plane.Outcome{Plane: "http", Endpoint: ep, Status: 400, Code: plane.CodeBadRequest, Err: frameErr, Start: start}, "400", "invalid_message"},
		{"http odd status", plane.Outcome{Plane: "http", Status: 418, Code: plane.CodeRefused, Err: plane.ErrBadRequest, Start: start}, "418", ""},
		{"tcp ack", plane.Outcome{Plane: "tcp", Endpoint: ep, Start: start}, "ack", ""},
		{"tcp bad header", plane.Outcome{Plane: "tcp", Endpoint: ep, Code: plane.CodeBadRequest, Err: headerErr, Start: start}, "bad_request", "deserialization"},
		{"tcp unknown endpoint", plane.Outcome{Plane: "tcp", Code: plane.CodeUnknownEndpoint, Err: plane.ErrUnknownEndpoint, Start: start}, "unknown_endpoint", ""},
		{"nats draining", plane.Outcome{Plane: "nats", Endpoint: ep, Code: plane.CodeDraining, Err: plane.ErrDraining, Start: start}, "draining", ""},
		{"nats overloaded", plane.Outcome{Plane: "nats", Endpoint: ep, Code: plane.CodeOverloaded, Err: plane.ErrOverloaded, Start: start}, "overloaded", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newMetrics(t)
			m.ObserveIngress(&tt.o)
			m.ObserveIngress(&tt.o) // the cached child the second time
			if got := testutil.ToFloat64(m.ingress.WithLabelValues(tt.o.Plane, tt.status)); got != 2 {
				t.Errorf("ingress{%s,%s} = %v, want 2", tt.o.Plane, tt.status, got)
			}
			wantAcks := uint64(0)
			if tt.o.Acked() {
				wantAcks = 2
			}
			if got := histCount(t, reg, NameIngressAckSeconds, tt.o.Plane); got != wantAcks {
				t.Errorf("ack observations = %d, want %d", got, wantAcks)
			}
			for _, et := range errorTypes {
				want := 0.0
				if et == tt.errorType {
					want = 2
				}
				if got := testutil.ToFloat64(m.errors.WithLabelValues("ns", "comp", "gen", et)); got != want {
					t.Errorf("errors{%s} = %v, want %v", et, got, want)
				}
			}
		})
	}
}

// histCount returns the sample count of histogram name for label plane=p.
func histCount(t *testing.T, g prometheus.Gatherer, name, p string) uint64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == LabelPlane && l.GetValue() == p {
					return m.Histogram.GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestEndpointMetrics(t *testing.T) {
	m, _ := newMetrics(t)
	e := m.Endpoint("ns", "comp", "gen")
	if m.Endpoint("ns", "comp", "gen") != e {
		t.Fatal("endpoint metrics not cached")
	}
	start := e.Begin(10)
	if got := testutil.ToFloat64(m.inflight.WithLabelValues("ns", "comp", "gen")); got != 1 {
		t.Errorf("inflight = %v", got)
	}
	e.ResponseBytes(7)
	e.Error(ErrorPublishFinal)
	e.Error("not a type")
	e.End(start)
	for _, c := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.requests.WithLabelValues("ns", "comp", "gen"), 1},
		{m.inflight.WithLabelValues("ns", "comp", "gen"), 0},
		{m.reqBytes.WithLabelValues("ns", "comp", "gen"), 10},
		{m.respBytes.WithLabelValues("ns", "comp", "gen"), 7},
		{m.errors.WithLabelValues("ns", "comp", "gen", ErrorPublishFinal), 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%v = %v, want %v", c.c, got, c.want)
		}
	}
}

// Two runtimes on one registry share the families; a foreign metric under one of the names is
// an error.
func TestRegistrySharing(t *testing.T) {
	m1, reg := newMetrics(t)
	m2, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("second NewMetrics on the same registry: %v", err)
	}
	m1.Endpoint("a", "b", "c").Begin(1)
	m2.Endpoint("a", "b", "c").Begin(1)
	if got := testutil.ToFloat64(m1.requests.WithLabelValues("a", "b", "c")); got != 2 {
		t.Errorf("shared requests = %v, want 2", got)
	}
	m1.CallHomeOpen.Inc()
	m2.CallHomeOpen.Inc()
	if got := testutil.ToFloat64(m1.CallHomeOpen); got != 2 {
		t.Errorf("shared call-home gauge = %v", got)
	}

	foreign := prometheus.NewRegistry()
	foreign.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: NameRequestsTotal, Help: "not ours"}))
	m3, err := NewMetrics(foreign)
	if err == nil || m3 == nil {
		t.Fatalf("conflict: metrics %v, err %v; want usable metrics and an error", m3, err)
	}
	m3.Endpoint("a", "b", "c").Begin(1) // still usable, unexported
}

func TestClientMetrics(t *testing.T) {
	m, _ := newMetrics(t)
	c := m.Client("ns/comp/ep", "round_robin")
	p := c.Plane("tcp")
	if c.Plane("tcp") != p {
		t.Fatal("plane metrics not cached")
	}
	p.Retries.Inc()
	p.Ack.Observe(0.001)
	if got := testutil.ToFloat64(m.retries.WithLabelValues("ns/comp/ep", "tcp", "round_robin")); got != 1 {
		t.Errorf("retries = %v", got)
	}
	if n := testutil.CollectAndCount(m.clientAck); n != 1 {
		t.Errorf("ack series = %d, want 1 (planes resolved lazily)", n)
	}
}

func TestConnSources(t *testing.T) {
	m, reg := newMetrics(t)
	rm1 := m.AddConnSource(func(yield func(string, int)) { yield("tcp", 2); yield("nats", 1) })
	rm2 := m.AddConnSource(func(yield func(string, int)) { yield("tcp", 3); yield("bogus", 9) })
	want := `
# HELP reqplane_connections_open Request-plane client connections open, by plane (TCP, HTTP: pooled connections; NATS: 1 per connected client).
# TYPE reqplane_connections_open gauge
reqplane_connections_open{plane="nats"} 1
reqplane_connections_open{plane="tcp"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), NameConnectionsOpen); err != nil {
		t.Error(err)
	}
	rm1()
	rm2()
	if n, err := testutil.GatherAndCount(reg, NameConnectionsOpen); err != nil || n != 0 {
		t.Errorf("after removing the sources: %d series, %v", n, err)
	}
}

func TestTracePropagation(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	tr := NewTracer(tp)
	ctx, client := tr.StartClient(context.Background(), "ns/comp/ep", "random", "id-1", "")
	var meta plane.Meta
	tr.Inject(ctx, &meta)
	if !strings.HasPrefix(meta.TraceParent, "00-"+client.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent %q", meta.TraceParent)
	}
	meta.RequestID = "id-1"
	hctx, handler := tr.StartHandler(context.Background(), &meta, "ns/comp/ep", 0x1f, "tcp", "id-1")
	Fail(handler, errors.New("boom"))
	handler.End()
	client.End()
	if handler.SpanContext().TraceID() != client.SpanContext().TraceID() {
		t.Error("trace ids differ")
	}
	spans := rec.Ended()
	if len(spans) != 2 || spans[0].Parent().SpanID() != client.SpanContext().SpanID() || !spans[0].Parent().IsRemote() {
		t.Fatalf("spans %v", spans)
	}
	if got := attrValue(spans[0].Attributes(), AttrInstance); got != "1f" {
		t.Errorf("handler instance attribute %q, want 1f", got)
	}
	if spans[0].Status().Description != "boom" {
		t.Errorf("handler status %v", spans[0].Status())
	}
	if hctx == nil {
		t.Fatal("no handler context")
	}

	// Tracing off: no span is recorded, an incoming context is still passed on.
	off := NewTracer(nil)
	var none plane.Meta
	octx, s := off.StartClient(context.Background(), "e", "m", "id", "")
	off.Inject(octx, &none)
	s.End()
	if none.TraceParent != "" {
		t.Errorf("tracing off injected %q", none.TraceParent)
	}
	pctx, ps := off.StartHandler(context.Background(), &meta, "e", 1, "tcp", "id")
	var passed plane.Meta
	off.Inject(pctx, &passed)
	ps.End()
	if passed.TraceParent == "" || passed.TraceParent[3:35] != meta.TraceParent[3:35] {
		t.Errorf("tracing off: incoming %q passed on as %q", meta.TraceParent, passed.TraceParent)
	}
}

func attrValue(kvs []attribute.KeyValue, k attribute.Key) string {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestTracingOff checks the no-op tracer: nothing is allocated for a request without a trace
// context, and a trace context in ctx or meta is still passed on, as noop.Tracer does.
func TestTracingOff(t *testing.T) {
	off := NewTracer(nil)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	parent := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	traced := plane.Meta{TraceParent: "00-01020300000000000000000000000000-0405060000000000-01"}
	tests := []struct {
		name   string
		start  func(ctx context.Context, meta *plane.Meta) (context.Context, trace.Span)
		ctx    context.Context
		meta   plane.Meta
		wantSC trace.SpanContext // the span context passed on; zero: none
	}{
		{"client", clientStarter(off), context.Background(), plane.Meta{}, trace.SpanContext{}},
		{"client with a parent", clientStarter(off), parent, plane.Meta{}, sc},
		{"handler", handlerStarter(off), context.Background(), plane.Meta{RequestID: "r"}, trace.SpanContext{}},
		{"handler with a parent", handlerStarter(off), parent, plane.Meta{}, sc},
		{"handler with a traceparent", handlerStarter(off), context.Background(), traced, sc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, span := tt.start(tt.ctx, &tt.meta)
			if span.IsRecording() {
				t.Error("a no-op span is recording")
			}
			if !span.SpanContext().Equal(tt.wantSC) || !trace.SpanContextFromContext(ctx).Equal(tt.wantSC) {
				t.Errorf("span context %v, in ctx %v, want %v", span.SpanContext(), trace.SpanContextFromContext(ctx), tt.wantSC)
			}
			if tt.wantSC.IsValid() {
				return
			}
			if ctx != tt.ctx {
				t.Error("ctx replaced without a span context to carry")
			}
			if n := testing.AllocsPerRun(100, func() { _, s := tt.start(tt.ctx, &tt.meta); s.End() }); n != 0 {
				t.Errorf("%v allocations per span with tracing off", n)
			}
		})
	}
}

func clientStarter(tr *Tracer) func(context.Context, *plane.Meta) (context.Context, trace.Span) {
	return func(ctx context.Context, meta *plane.Meta) (context.Context, trace.Span) {
		return tr.StartClient(ctx, "ns/comp/ep", "random", "id", meta.RequestID)
	}
}

func handlerStarter(tr *Tracer) func(context.Context, *plane.Meta) (context.Context, trace.Span) {
	return func(ctx context.Context, meta *plane.Meta) (context.Context, trace.Span) {
		return tr.StartHandler(ctx, meta, "ns/comp/ep", 0x1f, "tcp", "id")
	}
}

func TestNewProvider(t *testing.T) {
	ctx := context.Background()
	if _, err := NewProvider(ctx, config.Tracing{}); err == nil {
		t.Fatal("disabled tracing built a provider")
	}
	for _, cfg := range []config.Tracing{
		{Enabled: true, Endpoint: "http://127.0.0.1:4318/v1/traces", Protocol: config.OTLPHTTPProtobuf},
		{Enabled: true, Endpoint: "http://127.0.0.1:4317", Protocol: config.OTLPGRPC},
		{Enabled: true, Endpoint: "127.0.0.1:4317", Protocol: config.OTLPGRPC},
	} {
		tp, err := NewProvider(ctx, cfg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		// Nothing was exported: shutting down sends nothing and returns at once.
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := tp.Shutdown(sctx); err != nil {
			t.Errorf("%+v: shutdown: %v", cfg, err)
		}
		cancel()
	}
}
