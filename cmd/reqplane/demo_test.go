package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The README's first command: the demo runs a whole fleet in-process and exits 0.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, NATS and four workers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, stdout, stderr := testEnv(nil)
	if code := run(ctx, []string{"demo"}, e); code != 0 {
		t.Fatalf("demo exited %d; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	out := stdout.String()
	for _, want := range []string{
		"embedded etcd at http://127.0.0.1:",
		"round_robin", "random", "least_loaded", "power_of_two", "direct",
		"the quick brown fox",
		`Generate Error: request body must be a JSON object with a "text" field`,
		"done in",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	for _, plane := range []string{"http", "tcp", "nats"} {
		if !strings.Contains(out, "\n  "+plane+" ") {
			t.Errorf("demo output has no %s row:\n%s", plane, out)
		}
	}
}
