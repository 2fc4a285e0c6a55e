package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reqplane/reqplane"
	"github.com/reqplane/reqplane/internal/echo"
	"github.com/reqplane/reqplane/internal/testcluster"
)

// "reqplane call" against an in-process worker: items printed as compact JSON lines, and the
// errors a user meets.
func TestCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cluster, err := testcluster.Start(ctx, testcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	vars := cluster.Env("tcp", map[string]string{"DYN_LOG": "error"})
	cfg, err := reqplane.LoadConfigFrom(testcluster.Lookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	worker := reqplane.New(cfg, reqplane.WithLogger(newLogger(new(strings.Builder), cfg.Log)))
	defer worker.Close()
	if err := worker.Endpoint(reqplane.EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "generate"}).Start(ctx, echo.Handler); err != nil {
		t.Fatal(err)
	}
	id := worker.InstanceID().String()

	for _, tc := range []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string
		wantStderr string // a part of stderr
	}{
		{"data", []string{"call", "dynamo/backend/generate", "-d", `{"text":"hello world"}`}, "", 0,
			"{\"data\":{\"text\":\"hello\",\"index\":0}}\n{\"data\":{\"text\":\"world\",\"index\":1}}\n", ""},
		{"stdin, count, direct", []string{"call", "dynamo/backend/generate", "--count", "2", "--router", "direct", "--instance", id, "-v"},
			" {\"text\" : \"x\"} ", 0, "{\"data\":{\"text\":\"x\",\"index\":0}}\n{\"data\":{\"text\":\"x\",\"index\":0}}\n", "# instance " + id + " via tcp"},
		{"generate error", []string{"call", "dynamo/backend/generate", "-d", `{"prompt":1}`}, "", 1, "",
			`reqplane: Generate Error: request body must be a JSON object with a "text" field`},
		{"no instances", []string{"call", "dynamo/backend/nope", "-d", `{}`}, "", 1, "",
			"reqplane: no instances found for endpoint dynamo/backend/nope"},
		{"unknown instance", []string{"call", "dynamo/backend/generate", "--instance", "abc", "-d", `{}`}, "", 1, "",
			"reqplane: instance_id=2748 not found for endpoint dynamo/backend/generate"},
		{"waits, then gives up", []string{"call", "dynamo/backend/nope", "-d", `{}`, "--wait", "200ms"}, "", 1, "",
			"no instances found for endpoint dynamo/backend/nope"},
		{"direct without instance", []string{"call", "dynamo/backend/generate", "--router", "direct", "-d", `{}`}, "", 1, "",
			"reqplane: --router direct needs --instance HEX"},
		{"not json", []string{"call", "dynamo/backend/generate", "-d", `{text`}, "", 1, "",
			"reqplane: the request is not valid JSON"},
		{"bad endpoint", []string{"call", "dynamo/backend", "-d", `{}`}, "", 1, "",
			"want namespace/component/endpoint"},
		{"bad mode", []string{"call", "dynamo/backend/generate", "--router", "kv", "-d", `{}`}, "", 1, "",
			"unknown router mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, stdout, stderr := testEnv(vars)
			e.stdin = strings.NewReader(tc.stdin)
			if code := run(ctx, tc.args, e); code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.wantCode, stderr)
			}
			if stdout.String() != tc.wantStdout {
				t.Errorf("stdout %q, want %q", stdout, tc.wantStdout)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tc.wantStderr)
			}
		})
	}
}
