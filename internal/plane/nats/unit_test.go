package nats

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/reqplane/reqplane/internal/plane"
)

func TestSubject(t *testing.T) {
	tests := []struct {
		ep      plane.Endpoint
		want    string
		invalid bool
	}{
		{testEndpoint, "dynamo_backend.generate-694d98147d54be25", false},
		{plane.Endpoint{Namespace: "ns", Component: "c", Name: "e", InstanceID: 0}, "ns_c.e-0", false},
		{plane.Endpoint{Namespace: "ns", Component: "c", Name: "e", InstanceID: 1<<64 - 1}, "ns_c.e-ffffffffffffffff", false},
		{plane.Endpoint{Namespace: "a-b", Component: "c_d", Name: "e.f", InstanceID: 10}, "a-b_c_d.e.f-a", false},
		{plane.Endpoint{Component: "c", Name: "e"}, "", true},
		{plane.Endpoint{Namespace: "ns", Name: "e"}, "", true},
		{plane.Endpoint{Namespace: "ns", Component: "c"}, "", true},
		{plane.Endpoint{Namespace: "ns", Component: "c", Name: "e f"}, "", true},
		{plane.Endpoint{Namespace: "n*", Component: "c", Name: "e"}, "", true},
		{plane.Endpoint{Namespace: "ns", Component: ">", Name: "e"}, "", true},
		{plane.Endpoint{Namespace: "ns", Component: "c", Name: "e\n"}, "", true},
	}
	for _, tt := range tests {
		got, err := Subject(tt.ep)
		if tt.invalid {
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("Subject(%+v) = %q, %v; want ErrInvalidName", tt.ep, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Subject(%+v) = %q, %v; want %q", tt.ep, got, err, tt.want)
		}
	}
}

func TestRefusalError(t *testing.T) {
	reply := func(data, code, text string) *natsgo.Msg {
		m := &natsgo.Msg{Data: []byte(data), Header: natsgo.Header{}}
		if code != "" {
			m.Header.Set(HeaderServiceErrorCode, code)
		}
		if text != "" {
			m.Header.Set(HeaderServiceError, text)
		}
		return m
	}
	tests := []struct {
		name     string
		msg      *natsgo.Msg
		code     plane.Code
		text     string
		retry    bool
		sentinel error
	}{
		{"overloaded by prefix", reply(plane.TextOverloaded, "503", plane.TextOverloaded), plane.CodeOverloaded, plane.TextOverloaded, true, plane.ErrOverloaded},
		{"overloaded without headers (Dynamo 2026)", reply("Server overloaded: too busy", "", ""), plane.CodeOverloaded, "Server overloaded: too busy", true, plane.ErrOverloaded},
		{"draining by prefix", reply(plane.TextDraining, "503", ""), plane.CodeDraining, plane.TextDraining, true, plane.ErrDraining},
		{"503 other text", reply("busy", "503", ""), plane.CodeOverloaded, "busy", true, plane.ErrOverloaded},
		{"400", reply("Two Part Codec Error: Checksum mismatch", "400", ""), plane.CodeBadRequest, "Two Part Codec Error: Checksum mismatch", false, plane.ErrBadRequest},
		{"404", reply(plane.TextEndpointNotFound, "404", ""), plane.CodeUnknownEndpoint, plane.TextEndpointNotFound, true, plane.ErrUnknownEndpoint},
		{"413", reply("Two Part Codec Error: Message size 9 exceeds the maximum allowed size of 8 bytes", "413", ""), plane.CodeTooLarge,
			"Two Part Codec Error: Message size 9 exceeds the maximum allowed size of 8 bytes", false, plane.ErrTooLarge},
		{"no code", reply("something odd", "", ""), plane.CodeRefused, "something odd", false, nil},
		{"unknown code", reply("teapot", "418", ""), plane.CodeRefused, "teapot", false, nil},
		{"empty payload, error header", reply("", "400", "bad"), plane.CodeBadRequest, "bad", false, plane.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := refusalError(tt.msg)
			if err.Code != tt.code || err.Text != tt.text || err.Plane != plane.NameNATS {
				t.Errorf("got %+v, want code %v text %q", err, tt.code, tt.text)
			}
			if plane.Retryable(err) != tt.retry {
				t.Errorf("Retryable = %v, want %v", !tt.retry, tt.retry)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
		})
	}
}

func TestRefusalReply(t *testing.T) {
	tests := []struct {
		code       plane.Code
		text       string
		wantStatus string
		wantHeader string
		wantData   string
	}{
		{plane.CodeBadRequest, "bad", "400", "bad", "bad"},
		{plane.CodeTooLarge, "big", "413", "big", "big"},
		{plane.CodeOverloaded, plane.TextOverloaded, "503", plane.TextOverloaded, plane.TextOverloaded},
		{plane.CodeDraining, plane.TextDraining, "503", plane.TextDraining, plane.TextDraining},
		{plane.CodeUnknownEndpoint, plane.TextEndpointNotFound, "404", plane.TextEndpointNotFound, plane.TextEndpointNotFound},
		{plane.CodeUnknown, "a\r\nb\nc\rd", "400", "a b c d", "a\r\nb\nc\rd"},
		// An empty payload would be an ack: a refusal always has a text.
		{plane.CodeBadRequest, "", "400", "Request refused: bad_request", "Request refused: bad_request"},
	}
	for _, tt := range tests {
		m := refusal(tt.code, tt.text)
		if string(m.Data) != tt.wantData || m.Header.Get(HeaderServiceError) != tt.wantHeader ||
			m.Header.Get(HeaderServiceErrorCode) != tt.wantStatus {
			t.Errorf("refusal(%v, %q) = data %q headers %v", tt.code, tt.text, m.Data, m.Header)
		}
	}
}

func TestHeaderGetter(t *testing.T) {
	h := natsgo.Header{"X-Request-Id": {"upper"}, "traceparent": {"tp"}, "empty": {}}
	get := headerGetter(h)
	tests := []struct{ key, want string }{
		{"traceparent", "tp"},
		{"x-request-id", "upper"},
		{"TRACEPARENT", "tp"},
		{"empty", ""},
		{"missing", ""},
	}
	for _, tt := range tests {
		if got := get(tt.key); got != tt.want {
			t.Errorf("get(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	if got := headerGetter(nil)("traceparent"); got != "" {
		t.Errorf("nil headers gave %q", got)
	}
}

func TestAuthOption(t *testing.T) {
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	pub, _ := user.PublicKey()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	account, _ := nkeys.CreateAccount()
	accountSeed, _ := account.Seed()

	tests := []struct {
		name    string
		auth    Auth
		check   func(t *testing.T, o *natsgo.Options)
		wantErr string
	}{
		{"none", Auth{}, func(t *testing.T, o *natsgo.Options) {
			if o.User != "" || o.Token != "" || o.Nkey != "" || o.UserJWT != nil {
				t.Errorf("credentials set: %+v", o)
			}
		}, ""},
		{"user wins", Auth{User: "u", Password: "p", Token: "t", NKeySeed: string(seed)}, func(t *testing.T, o *natsgo.Options) {
			if o.User != "u" || o.Password != "p" || o.Token != "" || o.Nkey != "" {
				t.Errorf("got user %q password %q token %q nkey %q", o.User, o.Password, o.Token, o.Nkey)
			}
		}, ""},
		{"token before nkey", Auth{Token: "t", NKeySeed: string(seed), CredentialsFile: "/x.creds"}, func(t *testing.T, o *natsgo.Options) {
			if o.Token != "t" || o.Nkey != "" || o.UserJWT != nil {
				t.Errorf("got token %q nkey %q", o.Token, o.Nkey)
			}
		}, ""},
		{"nkey seed signs", Auth{NKeySeed: string(seed), NKeySeedFile: "/missing"}, func(t *testing.T, o *natsgo.Options) {
			if o.Nkey != pub {
				t.Fatalf("nkey %q, want %q", o.Nkey, pub)
			}
			nonce := []byte("nonce-from-server")
			sig, err := o.SignatureCB(nonce)
			if err != nil {
				t.Fatal(err)
			}
			if err := user.Verify(nonce, sig); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
		}, ""},
		{"nkey seed file", Auth{NKeySeedFile: seedFile}, func(t *testing.T, o *natsgo.Options) {
			if o.Nkey != pub {
				t.Errorf("nkey %q, want %q", o.Nkey, pub)
			}
		}, ""},
		{"bad seed", Auth{NKeySeed: "SUnotaseed"}, nil, "invalid nkey seed"},
		{"account seed", Auth{NKeySeed: string(accountSeed)}, nil, "not a user seed"},
		{"missing seed file", Auth{NKeySeedFile: filepath.Join(t.TempDir(), "none")}, nil, "nkey seed file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt, err := tt.auth.option()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var o natsgo.Options
			if opt != nil {
				if err := opt(&o); err != nil {
					t.Fatal(err)
				}
			}
			tt.check(t, &o)
		})
	}
}

// TestCredentialsFileMissing checks that a credentials file nats.go cannot read fails the
// connect with the file's name (nats.go reads it when the option is applied).
func TestCredentialsFileMissing(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "user.creds")
	srv := NewServer(Options{URLs: []string{deadURL(t)}, Auth: Auth{CredentialsFile: creds}})
	defer srv.Close()
	pe := planeError(t, srv.Start(testCtx(t)), plane.CodeConnect)
	if !strings.Contains(pe.Text, creds) {
		t.Errorf("text %q does not name %s", pe.Text, creds)
	}
}

func TestOptionDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if len(o.URLs) != 1 || o.URLs[0] != DefaultURL || o.Name != DefaultName || o.MaxMessageSize != 32<<20 ||
		o.ConnectTimeout != DefaultConnectTimeout || o.DrainTimeout != DefaultDrainTimeout ||
		o.PendingMsgsLimit != DefaultPendingMsgsLimit || o.PendingBytesLimit != DefaultPendingBytesLimit || o.Logger == nil {
		t.Errorf("server defaults: %+v", o)
	}
	c := ClientOptions{}.withDefaults()
	if len(c.URLs) != 1 || c.URLs[0] != DefaultURL || c.RequestTimeout != DefaultRequestTimeout ||
		c.ConnectTimeout != DefaultConnectTimeout || c.ReconnectWait != DefaultReconnectWait || c.Logger == nil {
		t.Errorf("client defaults: %+v", c)
	}
}

// TestHandleObserve checks the outcomes and replies of one endpoint's messages, which share the
// endpoint's Outcome: each is reported whole, nothing of the one before.
func TestHandleObserve(t *testing.T) {
	var got []plane.Outcome
	var replies []*natsgo.Msg
	busy := false
	e := &endpoint{
		ep:      testEndpoint,
		subject: "dynamo_backend.generate-694d98147d54be25",
		h: plane.HandlerFunc(func(*plane.Request) error {
			if busy {
				return plane.ErrOverloaded
			}
			return nil
		}),
		max:     1 << 20,
		log:     discardLogger,
		observe: func(o *plane.Outcome) { got = append(got, *o) },
		respond: func(_, resp *natsgo.Msg) error {
			replies = append(replies, resp)
			return nil
		},
	}
	frame := requestFrame(t, id(1), []byte(`{"text":"hello"}`))
	steps := []struct {
		name  string
		data  []byte
		busy  bool
		code  plane.Code // CodeUnknown: acked, with the nil reply (an empty message)
		reply string
	}{
		{"ack", frame, false, plane.CodeUnknown, ""},
		{"bad frame", []byte("hello"), false, plane.CodeBadRequest, "Two Part Codec Error: Invalid message: No message decoded"},
		{"ack after a refusal", frame, false, plane.CodeUnknown, ""},
		{"overloaded", frame, true, plane.CodeOverloaded, plane.TextOverloaded},
	}
	for i, st := range steps {
		busy = st.busy
		e.handle(&natsgo.Msg{Subject: e.subject, Reply: "_INBOX.t", Data: st.data})
		if len(got) != i+1 || len(replies) != i+1 {
			t.Fatalf("%s: %d outcomes, %d replies", st.name, len(got), len(replies))
		}
		o, r := got[i], replies[i]
		if o.Plane != plane.NameNATS || o.Endpoint != testEndpoint || o.Code != st.code || o.Acked() != (st.code == plane.CodeUnknown) || o.Start.IsZero() {
			t.Errorf("%s: outcome %+v", st.name, o)
		}
		if st.code == plane.CodeUnknown {
			if r != nil {
				t.Errorf("%s: ack reply %+v, want nil (the empty message)", st.name, r)
			}
			continue
		}
		if r == nil || string(r.Data) != st.reply {
			t.Errorf("%s: reply %+v, want %q", st.name, r, st.reply)
		}
	}
	if e.outcome != (plane.Outcome{}) {
		t.Errorf("the endpoint holds on to %+v", e.outcome)
	}
}
