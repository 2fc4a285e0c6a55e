package planetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
	"github.com/reqplane/reqplane/internal/stream"
)

// Harness adapts a plane to the suite.
type Harness struct {
	// NewServer returns a started plane.Server bound to 127.0.0.1. Each case calls it once,
	// then NewClient, and closes both when it ends (Close must be idempotent).
	NewServer func(t *testing.T) plane.Server
	// NewClient returns a plane.Client that reaches the server NewServer returned last.
	NewClient func(t *testing.T) plane.Client
	// UnknownEndpointCodes are the codes accepted for a request to an endpoint the server
	// does not serve. Default: CodeUnknownEndpoint and CodeNoResponders (NATS).
	UnknownEndpointCodes []plane.Code
	// MaxMessageSize is the limit the server enforces on a request frame. Default
	// codec.DefaultMaxMessageSize.
	MaxMessageSize int
	// Concurrency is the number of concurrent streamed requests of the load case. Default 1000.
	Concurrency int
	// CallHome is how responses come back: CallHomeClassic (the default, one connection per
	// stream) or CallHomeMux (the response mux, streams multiplexed on pooled connections).
	CallHome CallHomeMode
}

// CallHomeMode selects the response plane the suite's requester offers and its worker uses.
type CallHomeMode uint8

// The call-home modes.
const (
	// CallHomeClassic: transport tcp_server, a call-home connection per stream (spec §6).
	CallHomeClassic CallHomeMode = iota
	// CallHomeMux: transport tcp_response_mux_v1 (spec §13).
	CallHomeMux
)

// String returns "classic" or "mux".
func (m CallHomeMode) String() string {
	if m == CallHomeMux {
		return "mux"
	}
	return "classic"
}

// Defaults of the suite.
const (
	defaultConcurrency = 1000
	// waitFor bounds every wait of a case: the suite checks outcomes, never durations, and
	// runs under -race on busy machines.
	waitFor = 20 * time.Second
	// loadDeadline bounds the concurrent case.
	loadDeadline = 60 * time.Second
)

// suiteEndpoint is an endpoint of the suite's worker (the instance id of spec V11).
func suiteEndpoint(name string) plane.Endpoint {
	return plane.Endpoint{Namespace: "planetest", Component: "backend", Name: name, InstanceID: 0x694d98147d54be25}
}

// Run runs the conformance suite against the plane h builds.
func Run(t *testing.T, h Harness) {
	if h.NewServer == nil || h.NewClient == nil {
		t.Fatal("planetest: Harness needs NewServer and NewClient")
	}
	if len(h.UnknownEndpointCodes) == 0 {
		h.UnknownEndpointCodes = []plane.Code{plane.CodeUnknownEndpoint, plane.CodeNoResponders}
	}
	if h.MaxMessageSize <= 0 {
		h.MaxMessageSize = codec.DefaultMaxMessageSize
	}
	if h.Concurrency <= 0 {
		h.Concurrency = defaultConcurrency
	}
	for _, c := range []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"RoundTrip", testRoundTrip},
		{"ErrorPrologue", testErrorPrologue},
		{"StopMidStream", testStop},
		{"KillMidStream", testKill},
		{"CallHomeBroken", testCallHomeBroken},
		{"UnknownEndpoint", testUnknownEndpoint},
		{"Refusals", testRefusals},
		{"MalformedPayloads", testMalformed},
		{"Concurrent", testConcurrent},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newEnv(t, h)) })
	}
}

// env is one case's plane server and client, call-home listener and worker.
type env struct {
	h       Harness
	server  plane.Server
	client  plane.Client
	streams *stream.Server
	worker  *worker
	addr    string // the echo endpoint's advertised address
}

func newEnv(t *testing.T, h Harness) *env {
	t.Helper()
	e := &env{h: h, worker: newWorker(h.MaxMessageSize)}
	// Cleanups run last-registered first: the call-home listener goes first (killing what
	// still streams), then the client and the server, then the worker's goroutines are
	// waited for, and finally its mux connections are closed.
	t.Cleanup(func() { e.worker.mux.Close() })
	t.Cleanup(e.worker.wait)
	e.server = h.NewServer(t)
	t.Cleanup(func() { e.server.Close() })
	e.client = h.NewClient(t)
	t.Cleanup(func() { e.client.Close() })
	e.streams = stream.NewServer(stream.ServerOptions{
		Host:            "127.0.0.1",
		MaxMessageSize:  h.MaxMessageSize,
		PrologueTimeout: waitFor,
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err := e.streams.Start(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.streams.Close() })
	addr, err := e.server.Add(ctxFor(t), suiteEndpoint("generate"), e.worker)
	if err != nil {
		t.Fatalf("Add(%v): %v", suiteEndpoint("generate"), err)
	}
	e.addr = addr
	return e
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// call sends body to address as a requester does and returns the acknowledged stream, which
// the caller must Close. A refusal is returned as the plane's error.
func (e *env) call(ctx context.Context, address, body string, meta plane.Meta) (*stream.Stream, string, error) {
	id := uuid.NewString()
	var (
		st    *stream.Stream
		frame []byte
		err   error
	)
	if e.h.CallHome == CallHomeMux {
		st = e.streams.RegisterMux(id)
		frame, err = codec.AppendFrame(nil, st.AppendRequestControl(nil), []byte(body), e.h.MaxMessageSize)
	} else {
		st = e.streams.Register(id)
		frame, err = plane.EncodeRequest(nil, id, st.Info(), []byte(body), e.h.MaxMessageSize)
	}
	if err != nil {
		st.Close()
		return nil, id, fmt.Errorf("planetest: encoding the request: %w", err)
	}
	if err := e.client.Send(ctx, address, frame, meta); err != nil {
		st.Abandon()
		return nil, id, err
	}
	st.Acked()
	return st, id, nil
}

// mustCall is call for requests that must be acknowledged.
func (e *env) mustCall(t *testing.T, body string, meta plane.Meta) (*stream.Stream, string) {
	t.Helper()
	st, id, err := e.call(ctxFor(t), e.addr, body, meta)
	if err != nil {
		t.Fatalf("Send(%s) refused: %v", body, err)
	}
	t.Cleanup(func() { st.Close() })
	return st, id
}

// recvAll receives until the stream ends.
func recvAll(ctx context.Context, st *stream.Stream) ([]string, error) {
	var items []string
	for {
		item, err := st.Recv(ctx)
		if err != nil {
			return items, err
		}
		items = append(items, string(item))
	}
}

func echoItems(words ...string) []string {
	items := make([]string, len(words))
	for i, w := range words {
		items[i] = string(echoItem(w, i))
	}
	return items
}

// waitOutcome waits for the worker's report on request id.
func (e *env) waitOutcome(t *testing.T, id string) outcome {
	t.Helper()
	select {
	case o := <-e.worker.outcome(id):
		return o
	case <-time.After(waitFor):
		t.Fatalf("the worker's handler for %s did not end", id)
		return outcome{}
	}
}

func testRoundTrip(t *testing.T, e *env) {
	if e.client.Name() != e.server.Name() {
		t.Errorf("client plane %q, server plane %q", e.client.Name(), e.server.Name())
	}
	const body = `{"text":"hello world from planetest","delay_ms":1}`
	meta := plane.Meta{
		RequestID:   "planetest-request",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		TraceState:  "vendor=planetest",
	}
	st, id := e.mustCall(t, body, meta)
	items, err := recvAll(ctxFor(t), st)
	if err != io.EOF {
		t.Fatalf("stream ended with %v after %q, want io.EOF", err, items)
	}
	if want := echoItems("hello", "world", "from", "planetest"); !slices.Equal(items, want) {
		t.Fatalf("items\n%q\nwant\n%q", items, want)
	}
	o := e.waitOutcome(t, id)
	if o.err != nil {
		t.Errorf("worker: %v", o.err)
	}
	if ep := suiteEndpoint("generate"); o.plane != e.server.Name() || o.endpoint != ep || o.id != id || o.body != body {
		t.Errorf("handler got plane %q endpoint %v id %q body %q; want %q %v %q %q",
			o.plane, o.endpoint, o.id, o.body, e.server.Name(), ep, id, body)
	}
	if o.meta != meta {
		t.Errorf("handler got meta %+v, want %+v", o.meta, meta)
	}

	// Without a caller's request id, the control id is the request id.
	st, id = e.mustCall(t, `{"text":"again"}`, plane.Meta{})
	if items, err := recvAll(ctxFor(t), st); err != io.EOF || !slices.Equal(items, echoItems("again")) {
		t.Fatalf("second request: %q, %v", items, err)
	}
	if o := e.waitOutcome(t, id); o.meta.RequestID != id || o.meta.TraceParent != "" {
		t.Errorf("handler got meta %+v, want request id %q and no trace", o.meta, id)
	}
}

func testErrorPrologue(t *testing.T, e *env) {
	for _, body := range []string{`{"nope":1}`, `not json`, `{"text":7}`} {
		st, _ := e.mustCall(t, body, plane.Meta{})
		items, err := recvAll(ctxFor(t), st)
		if len(items) != 0 || !errors.Is(err, stream.ErrGenerate) || err.Error() != badInputText {
			t.Fatalf("body %s: items %q, end %v; want the error prologue %q", body, items, err, badInputText)
		}
	}
}

func testStop(t *testing.T, e *env) {
	st, id := e.mustCall(t, `{"text":"one two three","mode":"block"}`, plane.Meta{})
	first, err := st.Recv(ctxFor(t))
	if err != nil || string(first) != string(echoItem("one", 0)) {
		t.Fatalf("first item %q, %v", first, err)
	}
	st.Stop()
	o := e.waitOutcome(t, id)
	if !o.stopped || o.killed || !errors.Is(o.cause, stream.ErrStopped) || o.err != nil {
		t.Fatalf("handler saw stopped=%v killed=%v cause=%v err=%v; want a graceful stop", o.stopped, o.killed, o.cause, o.err)
	}
	// The requester ends cleanly after what the worker sent before it stopped.
	items, err := recvAll(ctxFor(t), st)
	if rest := echoItems("one", "two", "three")[1:]; err != io.EOF || !slices.Equal(items, rest[:min(len(items), len(rest))]) {
		t.Fatalf("after stop: %q, %v; want a prefix of %q and io.EOF", items, err, rest)
	}
}

func testKill(t *testing.T, e *env) {
	st, id := e.mustCall(t, `{"text":"one","mode":"block"}`, plane.Meta{})
	if item, err := st.Recv(ctxFor(t)); err != nil || string(item) != string(echoItem("one", 0)) {
		t.Fatalf("first item %q, %v", item, err)
	}
	st.Close()
	o := e.waitOutcome(t, id)
	if !o.killed || o.stopped || !errors.Is(o.cause, stream.ErrKilled) {
		t.Fatalf("handler saw killed=%v stopped=%v cause=%v; want a kill", o.killed, o.stopped, o.cause)
	}
}

func testCallHomeBroken(t *testing.T, e *env) {
	st, _ := e.mustCall(t, `{"text":"one two three","mode":"abort"}`, plane.Meta{})
	items, err := recvAll(ctxFor(t), st)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the requester hangs after the worker's connection broke")
	}
	if !slices.Equal(items, echoItems("one")) || !errors.Is(err, stream.ErrIncomplete) ||
		err.Error() != stream.TextIncomplete {
		t.Fatalf("items %q, end %v; want one item and %q", items, err, stream.TextIncomplete)
	}
}

func testUnknownEndpoint(t *testing.T, e *env) {
	gone := suiteEndpoint("gone")
	addr, err := e.server.Add(ctxFor(t), gone, e.worker)
	if err != nil {
		t.Fatal(err)
	}
	e.server.Remove(gone)
	before := e.worker.acceptedCount()
	_, _, err = e.call(ctxFor(t), addr, `{"text":"x"}`, plane.Meta{})
	if !slices.Contains(e.h.UnknownEndpointCodes, plane.CodeOf(err)) || !plane.Retryable(err) {
		t.Fatalf("Send to a removed endpoint = %v (code %v); want one of %v, retryable", err, plane.CodeOf(err), e.h.UnknownEndpointCodes)
	}
	if e.worker.acceptedCount() != before {
		t.Fatal("a request for a removed endpoint reached a handler")
	}
	// The served endpoint is unaffected.
	st, _ := e.mustCall(t, `{"text":"still"}`, plane.Meta{})
	if items, err := recvAll(ctxFor(t), st); err != io.EOF || !slices.Equal(items, echoItems("still")) {
		t.Fatalf("after an unknown endpoint: %q, %v", items, err)
	}
}

func testRefusals(t *testing.T, e *env) {
	for i, tc := range []struct {
		name      string
		refuse    error
		code      plane.Code
		retryable bool
	}{
		{"overloaded", plane.ErrOverloaded, plane.CodeOverloaded, true},
		{"draining", plane.ErrDraining, plane.CodeDraining, true},
		{"bad request", errors.New("planetest: refused"), plane.CodeBadRequest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := suiteEndpoint("refuse" + strconv.Itoa(i))
			addr, err := e.server.Add(ctxFor(t), ep, plane.HandlerFunc(func(*plane.Request) error { return tc.refuse }))
			if err != nil {
				t.Fatal(err)
			}
			defer e.server.Remove(ep)
			_, _, err = e.call(ctxFor(t), addr, `{"text":"x"}`, plane.Meta{})
			if plane.CodeOf(err) != tc.code || plane.Retryable(err) != tc.retryable {
				t.Fatalf("Send = %v (code %v, retryable %v); want code %v, retryable %v",
					err, plane.CodeOf(err), plane.Retryable(err), tc.code, tc.retryable)
			}
		})
	}
}

func testMalformed(t *testing.T, e *env) {
	max := e.h.MaxMessageSize
	info := codec.CallHomeInfo{Address: e.streams.Addr(), Subject: uuid.NewString(), Context: "id-1", StreamType: codec.StreamTypeResponse}
	control := codec.AppendRequestControl(nil, "id-1", info)
	body := []byte(`{"text":"x"}`)
	frame := func(t *testing.T, header, data []byte) []byte {
		t.Helper()
		f, err := codec.AppendFrame(nil, header, data, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		name    string
		payload func(t *testing.T) []byte
		code    plane.Code
	}{
		{"empty", func(*testing.T) []byte { return []byte{} }, plane.CodeBadRequest},
		{"prefix only", func(t *testing.T) []byte { return frame(t, control, body)[:codec.PrefixLen] }, plane.CodeBadRequest},
		{"truncated", func(t *testing.T) []byte { f := frame(t, control, body); return f[:len(f)-5] }, plane.CodeBadRequest},
		{"trailing bytes", func(t *testing.T) []byte { return append(frame(t, control, body), "xx"...) }, plane.CodeBadRequest},
		{"bad checksum", func(t *testing.T) []byte { f := frame(t, control, body); f[23] ^= 0xff; return f }, plane.CodeBadRequest},
		{"header only", func(t *testing.T) []byte { return frame(t, control, nil) }, plane.CodeBadRequest},
		{"data only", func(t *testing.T) []byte { return frame(t, nil, body) }, plane.CodeBadRequest},
		{"header not JSON", func(t *testing.T) []byte { return frame(t, []byte("nope"), body) }, plane.CodeBadRequest},
		{"header not a control message", func(t *testing.T) []byte { return frame(t, []byte(`{"id":1}`), body) }, plane.CodeBadRequest},
		{"wrong transport", func(t *testing.T) []byte {
			h := strings.Replace(string(control), `"transport":"tcp_server"`, `"transport":"nats_tcp"`, 1)
			return frame(t, []byte(h), body)
		}, plane.CodeBadRequest},
		{"context mismatch", func(t *testing.T) []byte {
			other := info
			other.Context = "id-2"
			return frame(t, codec.AppendRequestControl(nil, "id-1", other), body)
		}, plane.CodeBadRequest},
		{"mux context mismatch", func(t *testing.T) []byte {
			mi := codec.MuxCallHomeInfo{Address: e.streams.Addr(), FrontendServerID: e.streams.FrontendServerID(),
				StreamID: codec.UUID(uuid.New()), Context: "id-2", Version: codec.MuxVersion}
			return frame(t, codec.AppendMuxRequestControl(nil, "id-1", mi), body)
		}, plane.CodeBadRequest},
		{"mux version", func(t *testing.T) []byte {
			mi := codec.MuxCallHomeInfo{Address: e.streams.Addr(), FrontendServerID: e.streams.FrontendServerID(),
				StreamID: codec.UUID(uuid.New()), Context: "id-1", Version: 2}
			return frame(t, codec.AppendMuxRequestControl(nil, "id-1", mi), body)
		}, plane.CodeBadRequest},
		{"oversize", func(t *testing.T) []byte {
			// One byte over the limit in total; the body stays valid JSON.
			pad := max + 1 - codec.PrefixLen - len(control) - len(`{"text":""}`)
			return frame(t, control, []byte(`{"text":"`+strings.Repeat("x", pad)+`"}`))
		}, plane.CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.worker.acceptedCount()
			err := e.client.Send(ctxFor(t), e.addr, tc.payload(t), plane.Meta{})
			if plane.CodeOf(err) != tc.code || plane.Retryable(err) {
				t.Fatalf("Send = %v (code %v); want code %v, not retryable", err, plane.CodeOf(err), tc.code)
			}
			if e.worker.acceptedCount() != before {
				t.Fatal("a malformed request reached the handler")
			}
		})
	}
	// The server still serves.
	st, _ := e.mustCall(t, `{"text":"still serving"}`, plane.Meta{})
	if items, err := recvAll(ctxFor(t), st); err != io.EOF || !slices.Equal(items, echoItems("still", "serving")) {
		t.Fatalf("after malformed payloads: %q, %v", items, err)
	}
}

func testConcurrent(t *testing.T, e *env) {
	n := e.h.Concurrency
	ctx, cancel := context.WithTimeout(context.Background(), loadDeadline)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			words := []string{"r" + strconv.Itoa(i), "a" + strconv.Itoa(i), "b" + strconv.Itoa(i)}
			st, _, err := e.call(ctx, e.addr, `{"text":"`+strings.Join(words, " ")+`"}`, plane.Meta{})
			if err != nil {
				fail("request %d: Send: %v", i, err)
				return
			}
			defer st.Close()
			items, err := recvAll(ctx, st)
			if err != io.EOF || !slices.Equal(items, echoItems(words...)) {
				fail("request %d: items %q, end %v", i, items, err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d concurrent requests on one client: first failures:\n%s", n, strings.Join(errs, "\n"))
	}
}
