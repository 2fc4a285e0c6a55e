package http2

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/plane"
)

// The h2c server against a third-party HTTP/2 implementation: curl's (nghttp2), when curl
// with HTTP/2 is installed. Dynamo's requesters are Rust's hyper; this is the closest other
// stack a test machine has.
func TestServerInteropCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	if out, err := exec.Command(curl, "--version").Output(); err != nil || !bytes.Contains(out, []byte("HTTP2")) {
		t.Skip("curl has no HTTP/2")
	}
	s := startServer(t, Options{MaxMessageSize: 4096})
	gen := &recorder{}
	u := addEndpoint(t, s, "generate", gen)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, requestFrame(t, testID, testBody), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, requestFrame(t, testID, `{"text":"`+strings.Repeat("y", 8000)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		args = append([]string{"-sS", "--http2-prior-knowledge", "--noproxy", "*",
			"-w", `%{http_code} %{http_version}\n`}, args...)
		out, err := exec.CommandContext(ctx, curl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"accepted", []string{"--data-binary", "@" + good, "-H", "Content-Type: application/octet-stream", u}, "202 2\n"},
		{"unknown endpoint", []string{"--data-binary", "@" + good, strings.Replace(u, "generate", "nope", 1)}, plane.TextEndpointNotFound + "404 2\n"},
		{"wrong method", []string{u}, "405 2\n"},
		{"too large", []string{"--data-binary", "@" + big, u}, "413 2\n"},
		{"not a frame", []string{"--data-binary", "hello", u}, "400 2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, tc.args...)
			if !strings.HasSuffix(got, tc.want) || tc.name == "unknown endpoint" && got != tc.want {
				t.Fatalf("curl printed %q, want it to end with %q", got, tc.want)
			}
		})
	}
	// One request per connection: curl 7.88 fails to reuse an h2c prior-knowledge connection
	// for a second POST (against net/http's server as well). Many requests on one connection
	// are covered with net/http's and x/net's clients (TestServerConnInterop).
}
