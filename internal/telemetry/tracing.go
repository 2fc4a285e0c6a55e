package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/reqplane/reqplane/internal/config"
	"github.com/reqplane/reqplane/internal/plane"
)

// Span names.
const (
	SpanClient  = "reqplane.client"
	SpanHandler = "reqplane.handler"
)

// Span attributes and events.
const (
	AttrEndpoint   = attribute.Key("reqplane.endpoint")    // "ns/comp/ep"
	AttrInstance   = attribute.Key("reqplane.instance")    // lowercase hex, as in discovery keys
	AttrPlane      = attribute.Key("reqplane.plane")       // http, tcp, nats
	AttrRouterMode = attribute.Key("reqplane.router_mode") // round_robin, random, …
	AttrRequestID  = attribute.Key("reqplane.request_id")  // x-request-id, else the context id
	AttrContextID  = attribute.Key("reqplane.context_id")  // the RequestControlMessage id
	AttrAttempt    = attribute.Key("reqplane.attempt")     // 0 for the first send
	AttrError      = attribute.Key("reqplane.error")

	EventRoute     = "route"      // an instance was picked
	EventAck       = "ack"        // the worker acknowledged
	EventRefused   = "refused"    // the send failed before an ack
	EventFirstItem = "first_item" // the first response item arrived
)

// InstrumentationName names reqplane's tracer.
const InstrumentationName = "github.com/reqplane/reqplane"

// Tracer starts reqplane's spans. W3C trace context (traceparent, tracestate) travels in
// plane.Meta, whatever the process's global propagator is.
type Tracer struct {
	tr   trace.Tracer
	prop propagation.TraceContext
	// The span kinds, made once: options boxed per call are an allocation per request.
	client, server []trace.SpanStartOption
	// noop is set when tr is OpenTelemetry's no-op tracer: a span without a parent is then
	// the no-op span off, and starting it costs nothing.
	noop bool
	off  trace.Span
}

// NewTracer returns a Tracer on tp; nil means tracing off (no-op spans, which still pass an
// incoming trace context on).
func NewTracer(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	tr := tp.Tracer(InstrumentationName)
	_, isNoop := tr.(noop.Tracer)
	return &Tracer{
		tr:     tr,
		client: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)},
		server: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)},
		noop:   isNoop,
		off:    noop.Span{},
	}
}

// parentless reports whether ctx carries no span context, which is when the no-op tracer
// returns its empty span (see noop.Tracer.Start).
func parentless(ctx context.Context) bool {
	return trace.SpanContextFromContext(ctx).Equal(trace.SpanContext{})
}

// StartClient starts the span of one call by a client. The span ends when the response stream
// ends (or the call fails).
func (t *Tracer) StartClient(ctx context.Context, endpoint, mode, contextID, requestID string) (context.Context, trace.Span) {
	if t.noop && parentless(ctx) {
		return ctx, t.off // what noop.Tracer.Start returns, without a context to carry it
	}
	ctx, span := t.tr.Start(ctx, SpanClient, t.client...)
	if span.IsRecording() {
		span.SetAttributes(
			AttrEndpoint.String(endpoint),
			AttrRouterMode.String(mode),
			AttrContextID.String(contextID),
			AttrRequestID.String(requestIDOr(requestID, contextID)),
		)
	}
	return ctx, span
}

// StartHandler starts a worker's span for one request, the child of the trace context the
// requester sent in meta (a new trace when it sent none). instance is the instance id, set as
// lowercase hex. With tracing off and no trace context, it returns ctx and a no-op span.
func (t *Tracer) StartHandler(ctx context.Context, meta *plane.Meta, endpoint string, instance uint64, planeName, contextID string) (context.Context, trace.Span) {
	if meta.TraceParent != "" {
		ctx = t.prop.Extract(ctx, metaCarrier{m: meta})
	} else if t.noop && parentless(ctx) {
		return ctx, t.off
	}
	ctx, span := t.tr.Start(ctx, SpanHandler, t.server...)
	if span.IsRecording() {
		span.SetAttributes(
			AttrEndpoint.String(endpoint),
			AttrInstance.String(strconv.FormatUint(instance, 16)),
			AttrPlane.String(planeName),
			AttrContextID.String(contextID),
			AttrRequestID.String(requestIDOr(meta.RequestID, contextID)),
		)
	}
	return ctx, span
}

// Inject writes the trace context of ctx's span into meta (nothing when ctx carries none).
func (t *Tracer) Inject(ctx context.Context, meta *plane.Meta) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	t.prop.Inject(ctx, metaCarrier{m: meta})
}

// Fail marks span as failed with err.
func Fail(span trace.Span, err error) {
	if err == nil || !span.IsRecording() {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

func requestIDOr(requestID, id string) string {
	if requestID != "" {
		return requestID
	}
	return id
}

// metaCarrier adapts plane.Meta to the propagator: only the W3C keys are carried.
type metaCarrier struct{ m *plane.Meta }

func (c metaCarrier) Get(key string) string {
	switch strings.ToLower(key) {
	case plane.HeaderTraceParent:
		return c.m.TraceParent
	case plane.HeaderTraceState:
		return c.m.TraceState
	}
	return ""
}

func (c metaCarrier) Set(key, value string) {
	switch strings.ToLower(key) {
	case plane.HeaderTraceParent:
		c.m.TraceParent = value
	case plane.HeaderTraceState:
		c.m.TraceState = value
	}
}

func (c metaCarrier) Keys() []string {
	return []string{plane.HeaderTraceParent, plane.HeaderTraceState}
}

// ServiceName is the default OpenTelemetry service.name; OTEL_SERVICE_NAME overrides it.
const ServiceName = "reqplane"

// NewProvider builds an SDK TracerProvider exporting with OTLP as cfg says (http/protobuf or
// grpc), batching spans. The exporter reads the other OTEL_EXPORTER_OTLP_* variables (headers,
// TLS, timeout, compression) itself, and the resource OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES. It does no network I/O: the exporter connects on its first export.
// The caller shuts the provider down (which flushes).
func NewProvider(ctx context.Context, cfg config.Tracing) (*sdktrace.TracerProvider, error) {
	if !cfg.Enabled {
		return nil, errors.New("telemetry: tracing is not enabled (no OTLP endpoint)")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	hasScheme := strings.Contains(cfg.Endpoint, "://")
	switch cfg.Protocol {
	case config.OTLPGRPC:
		opt := otlptracegrpc.WithEndpointURL(cfg.Endpoint)
		if !hasScheme {
			opt = otlptracegrpc.WithEndpoint(cfg.Endpoint)
		}
		exp, err = otlptracegrpc.New(ctx, opt)
	default:
		opt := otlptracehttp.WithEndpointURL(cfg.Endpoint)
		if !hasScheme {
			opt = otlptracehttp.WithEndpoint(cfg.Endpoint)
		}
		exp, err = otlptracehttp.New(ctx, opt)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: creating the OTLP %s exporter for %s: %w", cfg.Protocol, cfg.Endpoint, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", ServiceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: tracing resource: %w", err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
	), nil
}
