package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/testcluster"
)

// lockedBuffer is a bytes.Buffer the worker writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// "reqplane worker --system-port 0" serves health and metrics and logs where.
func TestWorkerSystemPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and NATS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := testcluster.Start(ctx, testcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e, _, _ := testEnv(c.Env("tcp", nil)) // DYN_SYSTEM_PORT unset: the flag turns it on
	var stderr lockedBuffer
	e.stderr = &stderr
	wctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() { done <- run(wctx, []string{"worker", "--system-port", "0"}, e) }()
	defer func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("worker exited %d; stderr:\n%s", code, stderr.String())
		}
	}()
	addrRE := regexp.MustCompile(`msg="status server listening" addr=(127\.0\.0\.1:\d+)`)
	var addr string
	for addr == "" {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no status server address logged:\n%s", stderr.String())
		case code := <-done:
			done <- code
			t.Fatalf("worker exited %d:\n%s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/health never became ready: %s", resp.Status)
		case <-time.After(20 * time.Millisecond):
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, err = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.Contains(body.String(), "# TYPE dynamo_component_requests_total counter") {
		t.Fatalf("/metrics: %v\n%s", err, body.String())
	}
}

func TestWorkerSystemPortInvalid(t *testing.T) {
	for _, port := range []string{"-2", "65536"} {
		e, _, stderr := testEnv(nil)
		if code := run(context.Background(), []string{"worker", "--system-port", port}, e); code == 0 || !strings.Contains(stderr.String(), "--system-port "+port) {
			t.Errorf("--system-port %s: exit %d, stderr %q", port, code, stderr.String())
		}
	}
}
