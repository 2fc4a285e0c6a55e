package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/discovery/etcd"
)

// syncBuffer is a bytes.Buffer safe to write from the command and read from the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var servingRE = regexp.MustCompile(`etcd is serving clients at (http://127\.0\.0\.1:\d+) `)

func TestEtcdCmdServesUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()

	cmd := newEtcdCmd()
	var stdout, stderr syncBuffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{
		"--data-dir", t.TempDir(),
		"--listen-client-urls", "http://127.0.0.1:0",
		"--listen-peer-urls", "http://127.0.0.1:0",
		"--name", "test",
	})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(runCtx) }()

	var endpoint string
	for endpoint == "" {
		if m := servingRE.FindStringSubmatch(stderr.String()); m != nil {
			endpoint = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("reqplane etcd returned early: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("reqplane etcd never said where it serves:\n%s", stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}

	c, err := etcd.NewClient(ctx, etcd.ClientConfig{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("Get: %v, %v", resp, err)
	}
	c.Close()

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reqplane etcd: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("reqplane etcd did not stop after its context was canceled")
	}
	if !strings.Contains(stderr.String(), "etcd is stopping") {
		t.Errorf("stderr lacks the stop notice:\n%s", stderr.String())
	}
}

func TestEtcdCmdErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"port taken", []string{"--listen-client-urls", "http://" + busy.Addr().String(), "--listen-peer-urls", "http://127.0.0.1:0"},
			"is an etcd already running there?"},
		{"bad log level", []string{"--log-level", "loud"}, "unknown log level"},
		{"no data dir", []string{"--data-dir", ""}, "--data-dir is required"},
		{"arguments", []string{"extra"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := newEtcdCmd()
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			args := append([]string{"--data-dir", t.TempDir()}, tt.args...)
			cmd.SetArgs(args)
			err := cmd.ExecuteContext(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("timed out")
			}
		})
	}
}
