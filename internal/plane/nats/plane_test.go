package nats

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/natsembed"
	"github.com/reqplane/reqplane/internal/plane"
)

func TestSendAcked(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	srv := startServer(t, Options{URLs: []string{ns.ClientURL()}})
	rec := &recorder{}
	subject, err := srv.Add(testCtx(t), testEndpoint, rec)
	if err != nil {
		t.Fatal(err)
	}
	if want := "dynamo_backend.generate-694d98147d54be25"; subject != want {
		t.Fatalf("subject = %q, want %q", subject, want)
	}
	// A raw queue member of another group sees every request's headers as sent on the wire.
	wire := make(chan *natsgo.Msg, 8)
	raw := rawConn(t, ns.ClientURL())
	spy, err := raw.ChanSubscribe(subject, wire)
	subscribed(t, raw, spy, err)
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}})

	tests := []struct {
		name     string
		meta     plane.Meta
		wantMeta plane.Meta
		wantHdr  map[string]string
	}{
		{
			name: "trace and caller id",
			meta: plane.Meta{RequestID: "caller-1", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "rojo=00f067aa0ba902b7"},
			wantMeta: plane.Meta{RequestID: "caller-1", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				TraceState: "rojo=00f067aa0ba902b7"},
			wantHdr: map[string]string{
				"traceparent":  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				"tracestate":   "rojo=00f067aa0ba902b7",
				"x-request-id": "caller-1",
				"request-id":   id(1),
			},
		},
		{
			name:     "no meta: the control id",
			wantMeta: plane.Meta{RequestID: id(2)},
			wantHdr:  map[string]string{"x-request-id": id(2), "request-id": id(2)},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(`{"text":"hello world ` + strconv.Itoa(i) + `"}`)
			rid := id(i + 1)
			if err := cli.Send(testCtx(t), subject, requestFrame(t, rid, body), tt.meta); err != nil {
				t.Fatalf("Send: %v", err)
			}
			req := rec.last()
			if req == nil {
				t.Fatal("the handler got nothing before the ack")
			}
			if !bytes.Equal(req.Body, body) {
				t.Errorf("body = %q, want %q", req.Body, body)
			}
			if req.Meta != tt.wantMeta {
				t.Errorf("meta = %+v, want %+v", req.Meta, tt.wantMeta)
			}
			if req.Plane != plane.NameNATS || req.Endpoint != testEndpoint {
				t.Errorf("plane %q endpoint %v", req.Plane, req.Endpoint)
			}
			if req.Control.ID != rid || req.CallHome.Context != rid || req.CallHome.Address != "127.0.0.1:41235" {
				t.Errorf("control %+v call-home %+v", req.Control, req.CallHome)
			}
			var m *natsgo.Msg
			select {
			case m = <-wire:
			case <-time.After(waitTimeout):
				t.Fatal("the spy got nothing")
			}
			if len(m.Header) != len(tt.wantHdr) {
				t.Errorf("headers %v, want %v", m.Header, tt.wantHdr)
			}
			for k, v := range tt.wantHdr {
				if got := m.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestPayloadOwned checks that requests admitted one after the other keep their own bodies:
// nothing reuses the buffers a Request aliases.
func TestPayloadOwned(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	srv := startServer(t, Options{URLs: []string{ns.ClientURL()}})
	rec := &recorder{}
	subject, err := srv.Add(testCtx(t), testEndpoint, rec)
	if err != nil {
		t.Fatal(err)
	}
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}})
	const n = 50
	for i := range n {
		body := []byte(`{"text":"` + strings.Repeat(strconv.Itoa(i%10), 100+i) + `"}`)
		if err := cli.Send(testCtx(t), subject, requestFrame(t, id(i), body), plane.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, req := range rec.reqs {
		want := `{"text":"` + strings.Repeat(strconv.Itoa(i%10), 100+i) + `"}`
		if string(req.Body) != want || req.Control.ID != id(i) {
			t.Fatalf("request %d changed: id %s body %q", i, req.Control.ID, req.Body)
		}
	}
}

func TestQueueGroupSplits(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	recs := []*recorder{{}, {}}
	var subject string
	for _, rec := range recs {
		srv := startServer(t, Options{URLs: []string{ns.ClientURL()}})
		s, err := srv.Add(testCtx(t), testEndpoint, rec)
		if err != nil {
			t.Fatal(err)
		}
		subject = s
	}
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}})
	// With a random pick per message, one member missing all 200 has probability 2^-199.
	const n = 200
	for i := range n {
		if err := cli.Send(testCtx(t), subject, requestFrame(t, id(i), []byte(`{}`)), plane.Meta{}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	a, b := recs[0].count(), recs[1].count()
	if a+b != n || a == 0 || b == 0 {
		t.Fatalf("queue group split %d/%d, want both > 0 and %d in all", a, b, n)
	}
}

func TestNoResponders(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}})
	err := cli.Send(testCtx(t), "dynamo_backend.generate-1", requestFrame(t, id(1), []byte(`{}`)), plane.Meta{})
	pe := planeError(t, err, plane.CodeNoResponders)
	if !plane.Retryable(err) || !errors.Is(err, plane.ErrNoResponders) || !errors.Is(err, natsgo.ErrNoResponders) {
		t.Errorf("no responders must be retryable and match both sentinels: %v", err)
	}
	if !strings.Contains(pe.Text, "dynamo_backend.generate-1") {
		t.Errorf("text %q does not name the subject", pe.Text)
	}
}

func TestSendBadSubject(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}})
	for _, subject := range []string{"", "a b"} {
		err := cli.Send(testCtx(t), subject, requestFrame(t, id(1), []byte(`{}`)), plane.Meta{})
		pe := planeError(t, err, plane.CodeConnect)
		if !strings.Contains(pe.Text, "invalid NATS subject") || !plane.Retryable(err) {
			t.Errorf("subject %q: %v, want a retryable invalid-subject error", subject, err)
		}
	}
}

func TestOversizeRefusedBeforeSending(t *testing.T) {
	const maxPayload = 1024
	ns := startNATS(t, natsembed.Options{MaxPayload: maxPayload})
	const subject = "dynamo_backend.generate-1"
	// A raw responder acks everything and counts what reached it.
	var (
		mu   sync.Mutex
		seen []int
	)
	raw := rawConn(t, ns.ClientURL())
	sub, err := raw.Subscribe(subject, func(m *natsgo.Msg) {
		mu.Lock()
		seen = append(seen, len(m.Data))
		mu.Unlock()
		m.Respond(nil)
	})
	subscribed(t, raw, sub, err)
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}})

	frameOf := func(size int) []byte {
		f := requestFrame(t, id(1), []byte(`{}`))
		body := bytes.Repeat([]byte{' '}, size-len(f)+2)
		body[0], body[len(body)-1] = '{', '}'
		f = requestFrame(t, id(1), body)
		if len(f) != size {
			t.Fatalf("frame is %d bytes, want %d", len(f), size)
		}
		return f
	}
	tests := []struct {
		name string
		size int
	}{
		{"over max_payload", 2000},
		{"one byte over", maxPayload + 1},
		// The frame fits but the headers do not: NATS counts them against max_payload too.
		{"at max_payload with headers", maxPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cli.Send(testCtx(t), subject, frameOf(tt.size), plane.Meta{})
			pe := planeError(t, err, plane.CodeTooLarge)
			want := "Request payload is too large for this deployment: " + strconv.Itoa(tt.size) +
				" bytes exceeds the NATS server max_payload of 1024 bytes"
			if pe.Text != want {
				t.Errorf("text = %q\nwant   %q", pe.Text, want)
			}
			if plane.Retryable(err) {
				t.Error("too large must not be retried")
			}
		})
	}
	// A frame that fits goes through the same connection after the refused ones: had any of
	// them been sent, the responder would have seen it first.
	small := frameOf(600)
	if err := cli.Send(testCtx(t), subject, small, plane.Meta{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != len(small) {
		t.Fatalf("responder saw payloads of sizes %v, want only [%d]", seen, len(small))
	}
}

func TestRefusals(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	srv := startServer(t, Options{URLs: []string{ns.ClientURL()}, MaxMessageSize: 512})
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}})
	raw := rawConn(t, ns.ClientURL())

	valid := requestFrame(t, id(1), []byte(`{"text":"hi"}`))
	frame := func(hdr, data string) []byte {
		f, err := codec.AppendFrame(nil, []byte(hdr), []byte(data), 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	badChecksum := bytes.Clone(valid)
	badChecksum[23] ^= 1
	tooLarge := requestFrame(t, id(1), []byte(`{"text":"`+strings.Repeat("x", 600)+`"}`))

	tests := []struct {
		name       string
		payload    []byte
		handlerErr error
		code       plane.Code
		status     string
		text       string // exact, or a prefix when prefix is set
		prefix     bool
	}{
		{"not a frame", []byte("hello"), nil, plane.CodeBadRequest, "400",
			"Two Part Codec Error: Invalid message: No message decoded", false},
		{"trailing bytes", append(bytes.Clone(valid), 1, 2), nil, plane.CodeBadRequest, "400",
			"Two Part Codec Error: Invalid message: 2 trailing bytes", false},
		{"checksum", badChecksum, nil, plane.CodeBadRequest, "400", "Two Part Codec Error: Checksum mismatch", false},
		{"header only", frame(`{"id":"x"}`, ""), nil, plane.CodeBadRequest, "400", plane.TextNotHeaderAndData, false},
		{"control header", frame(`{}`, `{}`), nil, plane.CodeBadRequest, "400",
			"Two Part Codec Error: Invalid message: control header: ", true},
		{"too large", tooLarge, nil, plane.CodeTooLarge, "413",
			"Two Part Codec Error: Message size " + strconv.Itoa(len(tooLarge)) + " exceeds the maximum allowed size of 512 bytes", false},
		{"overloaded", valid, plane.ErrOverloaded, plane.CodeOverloaded, "503", plane.TextOverloaded, false},
		{"draining", valid, plane.ErrDraining, plane.CodeDraining, "503", plane.TextDraining, false},
		{"handler error", valid, errors.New("Generate Error: no model"), plane.CodeBadRequest, "400", "Generate Error: no model", false},
		{"unknown endpoint", valid, plane.ErrUnknownEndpoint, plane.CodeUnknownEndpoint, "404", plane.TextEndpointNotFound, false},
		{"multi-line text", valid, errors.New("line one\nline two"), plane.CodeBadRequest, "400", "line one\nline two", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := testEndpoint
			ep.InstanceID = uint64(i + 1)
			rec := &recorder{err: tt.handlerErr}
			subject, err := srv.Add(testCtx(t), ep, rec)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Remove(ep)
			checkText := func(what, got string) {
				t.Helper()
				if tt.prefix && !strings.HasPrefix(got, tt.text) || !tt.prefix && got != tt.text {
					t.Errorf("%s = %q, want %q (prefix %v)", what, got, tt.text, tt.prefix)
				}
			}

			// On the wire: the text as payload, the service-error headers.
			reply, err := raw.RequestWithContext(testCtx(t), subject, tt.payload)
			if err != nil {
				t.Fatalf("raw request: %v", err)
			}
			checkText("payload", string(reply.Data))
			if got := reply.Header.Get(HeaderServiceErrorCode); got != tt.status {
				t.Errorf("%s = %q, want %q", HeaderServiceErrorCode, got, tt.status)
			}
			wantHdr := strings.ReplaceAll(string(reply.Data), "\n", " ")
			if got := reply.Header.Get(HeaderServiceError); got != wantHdr {
				t.Errorf("%s = %q, want %q", HeaderServiceError, got, wantHdr)
			}

			// Through the Client: the code and the text.
			err = cli.Send(testCtx(t), subject, tt.payload, plane.Meta{})
			pe := planeError(t, err, tt.code)
			checkText("Text", pe.Text)
			if rec.count() != 0 {
				t.Errorf("the handler admitted %d refused requests", rec.count())
			}
		})
	}
}

func TestAckTimeout(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	const subject = "dynamo_backend.generate-1"
	got := make(chan struct{}, 4)
	// A subscriber that never answers.
	raw := rawConn(t, ns.ClientURL())
	sub, err := raw.Subscribe(subject, func(*natsgo.Msg) { got <- struct{}{} })
	subscribed(t, raw, sub, err)
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}, RequestTimeout: 200 * time.Millisecond})
	frame := requestFrame(t, id(1), []byte(`{}`))

	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"request timeout", func() (context.Context, context.CancelFunc) { return context.WithCancel(testCtx(t)) }},
		{"caller deadline first", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(testCtx(t), 100*time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			err := cli.Send(ctx, subject, frame, plane.Meta{})
			planeError(t, err, plane.CodeAckTimeout)
			if !plane.Retryable(err) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("ack timeout must be retryable and wrap DeadlineExceeded: %v", err)
			}
			select {
			case <-got:
			case <-time.After(waitTimeout):
				t.Fatal("the request never reached the subscriber")
			}
		})
	}

	t.Run("caller cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testCtx(t))
		go func() {
			select {
			case <-got:
			case <-ctx.Done():
			}
			cancel()
		}()
		err := cli.Send(ctx, subject, frame, plane.Meta{})
		planeError(t, err, plane.CodeUnknown)
		if plane.Retryable(err) || !errors.Is(err, context.Canceled) {
			t.Errorf("a canceled send is not retryable and wraps Canceled: %v", err)
		}
	})
}

func TestRemove(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	srv := startServer(t, Options{URLs: []string{ns.ClientURL()}})
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}})
	rec := &recorder{}
	frame := requestFrame(t, id(1), []byte(`{}`))

	for round := range 2 { // removed endpoints can be added again
		subject, err := srv.Add(testCtx(t), testEndpoint, rec)
		if err != nil {
			t.Fatalf("round %d: Add: %v", round, err)
		}
		if err := cli.Send(testCtx(t), subject, frame, plane.Meta{}); err != nil {
			t.Fatalf("round %d: Send: %v", round, err)
		}
		srv.Remove(testEndpoint)
		// Remove returns once the NATS server has the unsubscription.
		err = cli.Send(testCtx(t), subject, frame, plane.Meta{})
		planeError(t, err, plane.CodeNoResponders)
	}
	srv.Remove(testEndpoint) // not added: no-op
	if n := rec.count(); n != 2 {
		t.Fatalf("handler admitted %d requests, want 2", n)
	}
}

func TestSendConcurrent(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	srv := startServer(t, Options{URLs: []string{ns.ClientURL()}})
	rec := &recorder{}
	subject, err := srv.Add(testCtx(t), testEndpoint, rec)
	if err != nil {
		t.Fatal(err)
	}
	// No Connect: the first Sends race to open the connection and share it.
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}})
	const n = 1000
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs <- cli.Send(testCtx(t), subject, requestFrame(t, id(i), []byte(`{"i":`+strconv.Itoa(i)+`}`)), plane.Meta{})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if got := rec.count(); got != n {
		t.Fatalf("handler admitted %d, want %d", got, n)
	}
	seen := make(map[string]bool, n)
	rec.mu.Lock()
	for _, r := range rec.reqs {
		seen[r.Control.ID] = true
	}
	rec.mu.Unlock()
	if len(seen) != n {
		t.Fatalf("%d distinct ids, want %d", len(seen), n)
	}
}

// deadURL is a loopback URL nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "nats://" + addr
}

func TestNoNATSServer(t *testing.T) {
	url := deadURL(t)
	check := func(t *testing.T, err error) {
		t.Helper()
		pe := planeError(t, err, plane.CodeConnect)
		for _, want := range []string{url, "reqplane nats", "NATS_SERVER"} {
			if !strings.Contains(pe.Text, want) {
				t.Errorf("text %q lacks %q", pe.Text, want)
			}
		}
	}
	t.Run("server start", func(t *testing.T) {
		srv := NewServer(Options{URLs: []string{url}})
		defer srv.Close()
		check(t, srv.Start(testCtx(t)))
	})
	t.Run("client send", func(t *testing.T) {
		cli := newClient(t, ClientOptions{URLs: []string{url}})
		check(t, cli.Send(testCtx(t), "x", []byte("frame"), plane.Meta{}))
		check(t, cli.Connect(testCtx(t)))
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		srv := NewServer(Options{URLs: []string{url}})
		defer srv.Close()
		err := srv.Start(ctx)
		planeError(t, err, plane.CodeConnect)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
	})
}

func TestReconnect(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	_, portStr, _ := net.SplitHostPort(ns.Addr().String())
	port, _ := strconv.Atoi(portStr)
	opts := Options{URLs: []string{ns.ClientURL()}, ReconnectWait: 20 * time.Millisecond}
	srv := startServer(t, opts)
	rec := &recorder{}
	subject, err := srv.Add(testCtx(t), testEndpoint, rec)
	if err != nil {
		t.Fatal(err)
	}
	cli := newClient(t, ClientOptions{URLs: []string{ns.ClientURL()}, ReconnectWait: 20 * time.Millisecond,
		RequestTimeout: time.Second})
	frame := requestFrame(t, id(1), []byte(`{}`))
	if err := cli.Send(testCtx(t), subject, frame, plane.Meta{}); err != nil {
		t.Fatal(err)
	}

	ns.Close()
	ns2, err := natsembed.Start(testCtx(t), natsembed.Options{Host: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatalf("restart on port %d: %v", port, err)
	}
	defer ns2.Close()
	// Both sides reconnect and the server re-subscribes; until then Sends fail retryably.
	eventually(t, "a send after the NATS restart", func() bool {
		err := cli.Send(testCtx(t), subject, frame, plane.Meta{})
		if err != nil && !plane.Retryable(err) {
			t.Fatalf("non-retryable failure while reconnecting: %v", err)
		}
		return err == nil
	})
	if rec.count() < 2 {
		t.Fatalf("handler admitted %d, want >= 2", rec.count())
	}
	// Close the plane before the NATS server, so its drain meets a live server.
	srv.Close()
	cli.Close()
}

func TestLifecycle(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	url := []string{ns.ClientURL()}
	rec := &recorder{}

	t.Run("add before start", func(t *testing.T) {
		srv := NewServer(Options{URLs: url})
		defer srv.Close()
		if _, err := srv.Add(testCtx(t), testEndpoint, rec); !errors.Is(err, ErrNotStarted) {
			t.Fatalf("Add = %v, want ErrNotStarted", err)
		}
	})
	t.Run("start twice", func(t *testing.T) {
		srv := startServer(t, Options{URLs: url})
		if err := srv.Start(testCtx(t)); !errors.Is(err, ErrStarted) {
			t.Fatalf("Start = %v, want ErrStarted", err)
		}
	})
	t.Run("duplicate and invalid endpoints", func(t *testing.T) {
		srv := startServer(t, Options{URLs: url})
		if _, err := srv.Add(testCtx(t), testEndpoint, rec); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Add(testCtx(t), testEndpoint, rec); !errors.Is(err, ErrEndpointExists) {
			t.Fatalf("second Add = %v, want ErrEndpointExists", err)
		}
		bad := testEndpoint
		bad.Name = "gen*"
		if _, err := srv.Add(testCtx(t), bad, rec); !errors.Is(err, ErrInvalidName) {
			t.Fatalf("Add(%v) = %v, want ErrInvalidName", bad, err)
		}
		if _, err := srv.Add(testCtx(t), testEndpoint, nil); err == nil {
			t.Fatal("Add with a nil handler succeeded")
		}
	})
	t.Run("close", func(t *testing.T) {
		srv := startServer(t, Options{URLs: url})
		subject, err := srv.Add(testCtx(t), testEndpoint, rec)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 3 { // concurrent and repeated Close calls all return, without error
			wg.Go(func() {
				if err := srv.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		wg.Wait()
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = srv.Add(testCtx(t), testEndpoint, rec)
		planeError(t, err, plane.CodeClosed)
		planeError(t, srv.Start(testCtx(t)), plane.CodeClosed)
		srv.Remove(testEndpoint)

		cli := newClient(t, ClientOptions{URLs: url})
		err = cli.Send(testCtx(t), subject, requestFrame(t, id(1), []byte(`{}`)), plane.Meta{})
		planeError(t, err, plane.CodeNoResponders)
		for range 2 {
			if err := cli.Close(); err != nil {
				t.Fatal(err)
			}
		}
		err = cli.Send(testCtx(t), subject, requestFrame(t, id(1), []byte(`{}`)), plane.Meta{})
		planeError(t, err, plane.CodeClosed)
		planeError(t, cli.Connect(testCtx(t)), plane.CodeClosed)
	})
	t.Run("names", func(t *testing.T) {
		srv := NewServer(Options{})
		cli := NewClient(ClientOptions{})
		if srv.Name() != plane.NameNATS || cli.Name() != plane.NameNATS {
			t.Fatalf("names %q %q", srv.Name(), cli.Name())
		}
		// Closing what never connected does no I/O and does not block.
		srv.Close()
		cli.Close()
	})
}
