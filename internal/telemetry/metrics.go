package telemetry

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reqplane/reqplane/internal/plane"
)

// Label names.
const (
	LabelNamespace = "dynamo_namespace"
	LabelComponent = "dynamo_component"
	LabelEndpoint  = "dynamo_endpoint"
	LabelErrorType = "error_type"
	LabelPlane     = "plane"
	LabelStatus    = "status"
	LabelMode      = "mode"
	// LabelClientEndpoint is the endpoint a client calls, "namespace/component/endpoint".
	LabelClientEndpoint = "endpoint"
)

// Metric names (spec §9 for the dynamo_component_ family; reqplane_ for the rest).
const (
	NameRequestsTotal      = "dynamo_component_requests_total"
	NameRequestDuration    = "dynamo_component_request_duration_seconds"
	NameInflightRequests   = "dynamo_component_inflight_requests"
	NameRequestBytesTotal  = "dynamo_component_request_bytes_total"
	NameResponseBytesTotal = "dynamo_component_response_bytes_total"
	NameErrorsTotal        = "dynamo_component_errors_total"

	NameIngressRequestsTotal = "reqplane_ingress_requests_total"
	NameIngressAckSeconds    = "reqplane_ingress_ack_seconds"

	NameClientInflight       = "reqplane_client_inflight_requests"
	NameClientAckSeconds     = "reqplane_client_ack_seconds"
	NameClientFirstItem      = "reqplane_client_first_item_seconds"
	NameClientStreamSeconds  = "reqplane_client_stream_seconds"
	NameClientRetriesTotal   = "reqplane_client_retries_total"
	NameClientMarkedDown     = "reqplane_client_instances_marked_down_total"
	NameCallHomeStreamsOpen  = "reqplane_callhome_streams_open"
	NameConnectionsOpen      = "reqplane_connections_open"
	ingressStatusAck         = "ack"
	maxCachedIngressStatuses = 16
)

// Worker error types (spec §9 error_type).
const (
	ErrorDeserialization = "deserialization"  // the request's control header was refused
	ErrorInvalidMessage  = "invalid_message"  // the request's TwoPart frame was refused
	ErrorResponseStream  = "response_stream"  // calling the requester home failed
	ErrorGenerate        = "generate"         // the handler failed: an error prologue
	ErrorPublishResponse = "publish_response" // writing the prologue or an item failed
	ErrorPublishFinal    = "publish_final"    // writing the final marker or sentinel failed
)

var errorTypes = [...]string{
	ErrorDeserialization, ErrorInvalidMessage, ErrorResponseStream,
	ErrorGenerate, ErrorPublishResponse, ErrorPublishFinal,
}

var planeNames = [...]string{plane.NameHTTP, plane.NameTCP, plane.NameNATS}

// planeIndex maps a plane name to its slot in per-plane caches; -1 for an unknown plane.
func planeIndex(name string) int {
	switch name {
	case plane.NameHTTP:
		return 0
	case plane.NameTCP:
		return 1
	case plane.NameNATS:
		return 2
	}
	return -1
}

// Latency buckets: requests on loopback ack in tens of microseconds, LLM streams run for
// minutes.
var (
	ackBuckets    = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	streamBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
)

// Metrics is every metric family of one Runtime. Families are registered on the registry given
// to NewMetrics; a family that is already registered there (another Runtime of the process on
// the same registry) is shared, so several runtimes add up in one /metrics.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inflight  *prometheus.GaugeVec
	reqBytes  *prometheus.CounterVec
	respBytes *prometheus.CounterVec
	errors    *prometheus.CounterVec

	ingress    *prometheus.CounterVec
	ingressAck *prometheus.HistogramVec

	clientInflight *prometheus.GaugeVec
	clientAck      *prometheus.HistogramVec
	clientFirst    *prometheus.HistogramVec
	clientStream   *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	markedDown     *prometheus.CounterVec

	// CallHomeOpen counts the response streams this process's call-home listener has registered
	// and not yet closed.
	CallHomeOpen prometheus.Gauge
	conns        *connCollector

	mu        sync.Mutex
	endpoints map[epKey]*EndpointMetrics

	// ingressSlots caches (plane, status) children: slot 0 is the ack; for TCP and NATS slot
	// code+1 is a refusal with that code; for HTTP the slot comes from httpSlot.
	ingressSlots [len(planeNames)][maxCachedIngressStatuses]atomic.Pointer[ingressChild]
	ingressAcks  [len(planeNames)]prometheus.Observer
}

type epKey struct{ ns, comp, ep string }

type ingressChild struct{ count prometheus.Counter }

// NewMetrics creates the metric families and registers them on reg (nil: not registered, for a
// caller that only wants the instrumentation to run). It fails only when reg holds a different
// metric under one of these names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	epLabels := []string{LabelNamespace, LabelComponent, LabelEndpoint}
	clientLabels := []string{LabelClientEndpoint, LabelPlane, LabelMode}
	m := &Metrics{endpoints: map[epKey]*EndpointMetrics{}}
	var errs []error
	counterVec := func(name, help string, labels []string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels), &errs)
	}
	gaugeVec := func(name, help string, labels []string) *prometheus.GaugeVec {
		return register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels), &errs)
	}
	histVec := func(name, help string, buckets []float64, labels []string) *prometheus.HistogramVec {
		return register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels), &errs)
	}

	m.requests = counterVec(NameRequestsTotal, "Requests a worker endpoint acknowledged and processed.", epLabels)
	m.duration = histVec(NameRequestDuration, "Time from a request's acknowledgement to the end of its response stream.", streamBuckets, epLabels)
	m.inflight = gaugeVec(NameInflightRequests, "Requests a worker endpoint is processing.", epLabels)
	m.reqBytes = counterVec(NameRequestBytesTotal, "Request body bytes a worker endpoint received.", epLabels)
	m.respBytes = counterVec(NameResponseBytesTotal, "Response item bytes (the items' data JSON) a worker endpoint sent.", epLabels)
	m.errors = counterVec(NameErrorsTotal, "Worker failures by error_type (spec §9).", append(epLabels[:3:3], LabelErrorType))

	m.ingress = counterVec(NameIngressRequestsTotal, "Requests a request-plane server answered, by plane and status (HTTP code; ack or refusal code on TCP and NATS).", []string{LabelPlane, LabelStatus})
	m.ingressAck = histVec(NameIngressAckSeconds, "Time a request-plane server took from reading a request to acknowledging it.", ackBuckets, []string{LabelPlane})

	m.clientInflight = gaugeVec(NameClientInflight, "Requests a client sent and whose response stream has not ended.", clientLabels)
	m.clientAck = histVec(NameClientAckSeconds, "Time from sending a request to the worker's acknowledgement.", ackBuckets, clientLabels)
	m.clientFirst = histVec(NameClientFirstItem, "Time from the start of a call to its first response item.", streamBuckets, clientLabels)
	m.clientStream = histVec(NameClientStreamSeconds, "Time from the start of a call to the end of its response stream.", streamBuckets, clientLabels)
	m.retries = counterVec(NameClientRetriesTotal, "Requests moved to another instance after a failure before the acknowledgement, by the plane that failed.", clientLabels)
	m.markedDown = counterVec(NameClientMarkedDown, "Instances a client marked down after a connect failure, ack timeout, no responders or broken stream.", clientLabels)

	m.CallHomeOpen = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: NameCallHomeStreamsOpen, Help: "Response streams registered on the call-home listener and not yet closed."}), &errs)
	m.conns = register(reg, newConnCollector(), &errs)

	for i, p := range planeNames {
		m.ingressAcks[i] = m.ingressAck.WithLabelValues(p)
	}
	return m, errors.Join(errs...)
}

// register registers c, or returns the collector already registered under the same
// description (another Runtime on the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errs *[]error) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	*errs = append(*errs, err)
	return c
}

// EndpointMetrics are one served endpoint's worker metrics, label children resolved.
type EndpointMetrics struct {
	requests  prometheus.Counter
	duration  prometheus.Observer
	inflight  prometheus.Gauge
	reqBytes  prometheus.Counter
	respBytes prometheus.Counter
	errors    [len(errorTypes)]prometheus.Counter
}

// Endpoint returns the metrics of endpoint ns/comp/ep, creating them on first use.
func (m *Metrics) Endpoint(ns, comp, ep string) *EndpointMetrics {
	k := epKey{ns, comp, ep}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.endpoints[k]; e != nil {
		return e
	}
	e := &EndpointMetrics{
		requests:  m.requests.WithLabelValues(ns, comp, ep),
		duration:  m.duration.WithLabelValues(ns, comp, ep),
		inflight:  m.inflight.WithLabelValues(ns, comp, ep),
		reqBytes:  m.reqBytes.WithLabelValues(ns, comp, ep),
		respBytes: m.respBytes.WithLabelValues(ns, comp, ep),
	}
	for i, t := range errorTypes {
		e.errors[i] = m.errors.WithLabelValues(ns, comp, ep, t)
	}
	m.endpoints[k] = e
	return e
}

// Begin counts a request the worker starts processing (requestBytes: its body) and returns its
// start time for End.
func (e *EndpointMetrics) Begin(requestBytes int) time.Time {
	e.requests.Inc()
	e.inflight.Inc()
	e.reqBytes.Add(float64(requestBytes))
	return time.Now()
}

// End counts the end of a request begun at start.
func (e *EndpointMetrics) End(start time.Time) {
	e.inflight.Dec()
	e.duration.Observe(time.Since(start).Seconds())
}

// ResponseBytes counts n bytes of response items sent.
func (e *EndpointMetrics) ResponseBytes(n int) { e.respBytes.Add(float64(n)) }

// Error counts one failure of the given error type (one of the Error* constants; others and ""
// are ignored).
func (e *EndpointMetrics) Error(errorType string) {
	for i, t := range errorTypes {
		if t == errorType {
			e.errors[i].Inc()
			return
		}
	}
}

// ObserveIngress counts one request a plane server answered. It is a plane.ObserveFunc: pass it
// as the servers' Observe option. Refusals of the frame or control header are also counted as
// the endpoint's worker errors (invalid_message, deserialization).
func (m *Metrics) ObserveIngress(o *plane.Outcome) {
	p := planeIndex(o.Plane)
	if p < 0 {
		return
	}
	child := m.ingressChild(p, o)
	child.count.Inc()
	if o.Acked() {
		m.ingressAcks[p].Observe(time.Since(o.Start).Seconds())
		return
	}
	if t := plane.ErrorType(o.Err); t != "" && o.Endpoint.Name != "" {
		m.Endpoint(o.Endpoint.Namespace, o.Endpoint.Component, o.Endpoint.Name).Error(t)
	}
}

// ingressChild returns the cached counter of o's (plane, status).
func (m *Metrics) ingressChild(p int, o *plane.Outcome) *ingressChild {
	slot, status := -1, ""
	switch {
	case o.Plane == plane.NameHTTP:
		slot, status = httpSlot(o.Status), strconv.Itoa(o.Status)
	case o.Acked():
		slot, status = 0, ingressStatusAck
	default:
		if s := int(o.Code) + 1; s < maxCachedIngressStatuses {
			slot = s
		}
		status = o.Code.String()
	}
	if slot < 0 {
		return &ingressChild{count: m.ingress.WithLabelValues(planeNames[p], status)}
	}
	if c := m.ingressSlots[p][slot].Load(); c != nil {
		return c
	}
	c := &ingressChild{count: m.ingress.WithLabelValues(planeNames[p], status)}
	m.ingressSlots[p][slot].Store(c) // racing stores hold the same child
	return c
}

// httpSlot is the cache slot of an HTTP status the plane answers; -1 for others.
func httpSlot(status int) int {
	switch status {
	case 202:
		return 0
	case 400:
		return 1
	case 404:
		return 2
	case 405:
		return 3
	case 413:
		return 4
	case 503:
		return 5
	}
	return -1
}

// ClientMetrics are one client's metrics (one endpoint, one router mode), per plane.
type ClientMetrics struct {
	m              *Metrics
	endpoint, mode string
	planes         [len(planeNames)]atomic.Pointer[ClientPlane]
}

// ClientPlane are a client's metrics on one plane, label children resolved.
type ClientPlane struct {
	Inflight   prometheus.Gauge
	Ack        prometheus.Observer
	FirstItem  prometheus.Observer
	Stream     prometheus.Observer
	Retries    prometheus.Counter
	MarkedDown prometheus.Counter
}

// Client returns the metrics of a client of endpoint ("ns/comp/ep") routing with mode.
func (m *Metrics) Client(endpoint, mode string) *ClientMetrics {
	return &ClientMetrics{m: m, endpoint: endpoint, mode: mode}
}

// Plane returns the client's metrics on the named plane, resolving them on first use.
func (c *ClientMetrics) Plane(name string) *ClientPlane {
	i := planeIndex(name)
	if i < 0 {
		return c.resolve(name)
	}
	if p := c.planes[i].Load(); p != nil {
		return p
	}
	p := c.resolve(name)
	c.planes[i].Store(p)
	return p
}

func (c *ClientMetrics) resolve(name string) *ClientPlane {
	m := c.m
	return &ClientPlane{
		Inflight:   m.clientInflight.WithLabelValues(c.endpoint, name, c.mode),
		Ack:        m.clientAck.WithLabelValues(c.endpoint, name, c.mode),
		FirstItem:  m.clientFirst.WithLabelValues(c.endpoint, name, c.mode),
		Stream:     m.clientStream.WithLabelValues(c.endpoint, name, c.mode),
		Retries:    m.retries.WithLabelValues(c.endpoint, name, c.mode),
		MarkedDown: m.markedDown.WithLabelValues(c.endpoint, name, c.mode),
	}
}

// ConnSource reports open connections per plane; it is called at every scrape.
type ConnSource func(yield func(plane string, open int))

// AddConnSource adds a source of reqplane_connections_open and returns the function that
// removes it (a Runtime removes its own on Close).
func (m *Metrics) AddConnSource(src ConnSource) (remove func()) { return m.conns.add(src) }

// connCollector sums reqplane_connections_open{plane} over its sources at scrape time, so that
// nothing is counted on the connection path.
type connCollector struct {
	desc *prometheus.Desc

	mu      sync.Mutex
	next    int
	sources map[int]ConnSource
}

func newConnCollector() *connCollector {
	return &connCollector{
		desc: prometheus.NewDesc(NameConnectionsOpen,
			"Request-plane client connections open, by plane (TCP, HTTP: pooled connections; NATS: 1 per connected client).",
			[]string{LabelPlane}, nil),
		sources: map[int]ConnSource{},
	}
}

func (c *connCollector) add(src ConnSource) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.next
	c.next++
	c.sources[id] = src
	return func() {
		c.mu.Lock()
		delete(c.sources, id)
		c.mu.Unlock()
	}
}

func (c *connCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *connCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	srcs := make([]ConnSource, 0, len(c.sources))
	for _, s := range c.sources {
		srcs = append(srcs, s)
	}
	c.mu.Unlock()
	var open [len(planeNames)]int
	var seen [len(planeNames)]bool
	for _, s := range srcs {
		s(func(p string, n int) {
			if i := planeIndex(p); i >= 0 {
				open[i] += n
				seen[i] = true
			}
		})
	}
	for i, p := range planeNames {
		if seen[i] {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(open[i]), p)
		}
	}
}
