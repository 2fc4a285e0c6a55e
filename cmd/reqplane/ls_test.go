package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/config"
	"github.com/reqplane/reqplane/internal/discovery"
	"github.com/reqplane/reqplane/internal/discovery/etcd"
	"github.com/reqplane/reqplane/internal/discovery/etcdembed"
)

// lsFixture is an embedded etcd with two registered instances, a Dynamo-written record
// without a lease, and a garbage value.
type lsFixture struct {
	endpoints []string
	gen       uint64 // instance serving ns/comp/gen over NATS
	generate  uint64 // instance serving ns/comp/generate over HTTP and TCP
}

func newLsFixture(t *testing.T) lsFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := etcdembed.Start(ctx, etcdembed.Config{
		DataDir:          t.TempDir(),
		ListenClientURLs: []string{"http://127.0.0.1:0"},
		ListenPeerURLs:   []string{"http://127.0.0.1:0"},
		UnsafeNoFsync:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c, err := etcd.NewClient(ctx, etcd.ClientConfig{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	gen := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "gen"}
	generate := discovery.EndpointID{Namespace: "ns", Component: "comp", Endpoint: "generate"}
	s1, err := etcd.NewSession(ctx, c, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s1.Close() })
	s2, err := etcd.NewSession(ctx, c, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	regs := []struct {
		s   *etcd.Session
		rec discovery.Record
	}{
		{s1, discovery.NewRecord(gen, s1.ID(), discovery.Transport{Kind: discovery.KindNATS, Address: discovery.NATSSubject(gen, s1.ID())})},
		{s2, discovery.NewRecord(generate, s2.ID(),
			discovery.Transport{Kind: discovery.KindHTTP, Address: discovery.HTTPURL("127.0.0.1", 8081, "/v1/dynamo", "generate")},
			discovery.Transport{Kind: discovery.KindTCP, Address: discovery.TCPAddress("127.0.0.1", 9, s2.ID(), "generate")})},
	}
	for _, r := range regs {
		if err := r.s.Register(ctx, r.rec); err != nil {
			t.Fatal(err)
		}
	}
	dynamo := `{"type":"Endpoint","component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":7587888160958627365,"transport":{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"}}`
	if _, err := c.Put(ctx, "v1/instances/dynamo/backend/generate/694d98147d54be25", dynamo); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "v1/instances/dynamo/backend/generate/1", "garbage"); err != nil {
		t.Fatal(err)
	}
	return lsFixture{endpoints: srv.Endpoints(), gen: s1.ID(), generate: s2.ID()}
}

func runLs(t *testing.T, endpoints []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := newLsCmd(func() (etcd.ClientConfig, error) {
		return etcd.ClientConfig{Endpoints: endpoints, DialTimeout: time.Second}, nil
	})
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestLsTable(t *testing.T) {
	f := newLsFixture(t)
	hex := discovery.FormatInstanceID
	genRow := regexp.MustCompile(`(?m)^ns/comp/gen +` + hex(f.gen) + ` +nats_tcp:ns_comp\.gen-` + hex(f.gen) + ` +(\d+)s$`)
	generateRow := regexp.MustCompile(`(?m)^ns/comp/generate +` + hex(f.generate) +
		` +http:http://127\.0\.0\.1:8081/v1/dynamo/generate,tcp:127\.0\.0\.1:9/` + hex(f.generate) + `/generate +(\d+)s$`)
	dynamoRow := regexp.MustCompile(`(?m)^dynamo/backend/generate +694d98147d54be25 +nats_tcp:dynamo_backend\.generate-694d98147d54be25 +-$`)
	header := regexp.MustCompile(`(?m)^NAMESPACE/COMPONENT/ENDPOINT +INSTANCE +TRANSPORTS +TTL$`)

	tests := []struct {
		name      string
		args      []string
		want      []*regexp.Regexp
		notWant   []*regexp.Regexp
		wantWarn  bool
		wantEmpty bool
	}{
		{"all", nil, []*regexp.Regexp{header, genRow, generateRow, dynamoRow}, nil, true, false},
		{"namespace", []string{"ns"}, []*regexp.Regexp{genRow, generateRow}, []*regexp.Regexp{dynamoRow}, false, false},
		{"gen is not generate", []string{"ns/comp/gen"}, []*regexp.Regexp{genRow}, []*regexp.Regexp{generateRow}, false, false},
		{"generate", []string{"ns/comp/generate/"}, []*regexp.Regexp{generateRow}, []*regexp.Regexp{genRow}, false, false},
		{"nothing there", []string{"nobody"}, []*regexp.Regexp{header}, []*regexp.Regexp{genRow, generateRow, dynamoRow}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runLs(t, f.endpoints, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			for _, re := range tt.want {
				m := re.FindStringSubmatch(out)
				if m == nil {
					t.Errorf("output lacks %v:\n%s", re, out)
					continue
				}
				if len(m) > 1 && (m[1] == "0" || len(m[1]) > 2) {
					t.Errorf("TTL %ss out of (0, 30]", m[1])
				}
			}
			for _, re := range tt.notWant {
				if re.MatchString(out) {
					t.Errorf("output has %v:\n%s", re, out)
				}
			}
			warned := strings.Contains(errOut, "warning: skipping v1/instances/dynamo/backend/generate/1: malformed discovery record")
			if warned != tt.wantWarn {
				t.Errorf("stderr %q: warning shown %v, want %v", errOut, warned, tt.wantWarn)
			}
			if empty := strings.Contains(errOut, "no instances registered under"); empty != tt.wantEmpty {
				t.Errorf("stderr %q: empty notice %v, want %v", errOut, empty, tt.wantEmpty)
			}
		})
	}
}

func TestLsJSON(t *testing.T) {
	f := newLsFixture(t)
	out, _, err := runLs(t, f.endpoints, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Namespace  string            `json:"namespace"`
		Component  string            `json:"component"`
		Endpoint   string            `json:"endpoint"`
		InstanceID uint64            `json:"instance_id"`
		Instance   string            `json:"instance"`
		Transports []json.RawMessage `json:"transports"`
		TTLSeconds *int64            `json:"ttl_seconds"`
		Key        string            `json:"key"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(got) != 3 {
		t.Fatalf("%d instances:\n%s", len(got), out)
	}
	d := got[0] // dynamo sorts first
	var transport bytes.Buffer
	if len(d.Transports) == 1 {
		if err := json.Compact(&transport, d.Transports[0]); err != nil {
			t.Fatal(err)
		}
	}
	if d.InstanceID != 7587888160958627365 || d.Instance != "694d98147d54be25" || d.TTLSeconds != nil ||
		d.Key != "v1/instances/dynamo/backend/generate/694d98147d54be25" ||
		transport.String() != `{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"}` {
		t.Errorf("dynamo entry %+v", d)
	}
	g := got[2]
	if g.Endpoint != "generate" || g.InstanceID != f.generate || len(g.Transports) != 2 || g.TTLSeconds == nil || *g.TTLSeconds <= 0 {
		t.Errorf("generate entry %+v", g)
	}

	// Nothing found is an empty array, not null.
	out, _, err = runLs(t, f.endpoints, "--json", "nobody")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty --json output %q, %v", out, err)
	}
}

func TestLsErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing answering", nil, "etcd at " + dead + ` is not reachable (`},
		{"nothing answering, hint", nil, `start one with "reqplane etcd" or set ETCD_ENDPOINTS`},
		{"too deep", []string{"a/b/c/d"}, "more than namespace/component/endpoint"},
		{"empty part", []string{"a//c"}, "must not be empty"},
		{"two arguments", []string{"a", "b"}, "accepts at most 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runLs(t, []string{dead}, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestEtcdClientConfig(t *testing.T) {
	got := etcdClientConfig(config.Etcd{
		Endpoints: config.URLs{"http://10.0.0.2:2379"}, Username: "u", Password: "p",
		CAFile: "ca.pem", ClientCertFile: "c.pem", ClientKeyFile: "k.pem",
	})
	want := etcd.ClientConfig{Endpoints: []string{"http://10.0.0.2:2379"}, Username: "u", Password: "p",
		CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}
	if got.Password != want.Password || got.Username != want.Username || got.CAFile != want.CAFile ||
		got.CertFile != want.CertFile || got.KeyFile != want.KeyFile ||
		len(got.Endpoints) != 1 || got.Endpoints[0] != want.Endpoints[0] {
		t.Errorf("etcdClientConfig = %+v, want %+v", got, want)
	}
}
