package reqplane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/reqplane/reqplane"
	"github.com/reqplane/reqplane/internal/testcluster"
)

// exampleFleet starts an embedded etcd and NATS (what a real deployment runs as services) and
// returns a configuration pointing at them, everything on 127.0.0.1.
func exampleFleet(ctx context.Context, planes string) (*testcluster.Cluster, func() *reqplane.Config) {
	cluster, err := testcluster.Start(ctx, testcluster.Options{})
	if err != nil {
		panic(err)
	}
	return cluster, func() *reqplane.Config {
		cfg, err := reqplane.LoadConfigFrom(testcluster.Lookup(cluster.Env(planes, nil)))
		if err != nil {
			panic(err)
		}
		return cfg
	}
}

var quiet = reqplane.WithLogger(slog.New(slog.DiscardHandler))

// A worker that streams one item per word, and a client that calls it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster, config := exampleFleet(ctx, "tcp")
	defer cluster.Close()

	// The worker.
	worker := reqplane.New(config(), quiet)
	defer worker.Close()
	words := reqplane.HandlerFunc(func(ctx context.Context, req *reqplane.Request, out *reqplane.Responder) error {
		var text string
		if err := json.Unmarshal(req.Body, &text); err != nil {
			return err // the caller sees "Generate Error: …"
		}
		for _, w := range strings.Fields(text) {
			if err := out.SendJSON(map[string]string{"word": w}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := worker.Namespace("demo").Component("words").Endpoint("split").Start(ctx, words); err != nil {
		panic(err)
	}

	// The client.
	rt := reqplane.New(config(), quiet)
	defer rt.Close()
	client, err := rt.Namespace("demo").Component("words").Endpoint("split").Client(ctx)
	if err != nil {
		panic(err)
	}
	s, err := client.Generate(ctx, []byte(`"hello reqplane"`))
	if err != nil {
		panic(err)
	}
	for item, err := range s.All() {
		if err != nil {
			panic(err)
		}
		fmt.Println(string(item))
	}
	// Output:
	// {"word":"hello"}
	// {"word":"reqplane"}
}

// Typed handlers and calls: JSON in, JSON out, on the HTTP/2 plane.
func ExampleTyped() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster, config := exampleFleet(ctx, "http")
	defer cluster.Close()

	type Prompt struct {
		Text  string `json:"text"`
		Count int    `json:"count"`
	}
	type Token struct {
		Index int    `json:"index"`
		Text  string `json:"text"`
	}
	worker := reqplane.New(config(), quiet)
	defer worker.Close()
	h := reqplane.Typed(func(ctx context.Context, p Prompt, send func(Token) error) error {
		for i := range p.Count {
			if err := send(Token{Index: i, Text: p.Text}); err != nil {
				return err
			}
		}
		return nil
	})
	ep := reqplane.EndpointID{Namespace: "demo", Component: "llm", Endpoint: "generate"}
	if err := worker.Endpoint(ep).Start(ctx, h); err != nil {
		panic(err)
	}

	rt := reqplane.New(config(), quiet)
	defer rt.Close()
	client, err := rt.Endpoint(ep).Client(ctx, reqplane.WithRouterMode(reqplane.LeastLoaded))
	if err != nil {
		panic(err)
	}
	for tok, err := range reqplane.Call[Prompt, Token](ctx, client, Prompt{Text: "hi", Count: 3}) {
		if err != nil {
			panic(err)
		}
		fmt.Println(tok.Index, tok.Text)
	}
	// Output:
	// 0 hi
	// 1 hi
	// 2 hi
}

// Errors carry a Code; the sentinels work with errors.Is.
func ExampleCodeOf() {
	err := error(&reqplane.Error{Code: reqplane.CodeNoInstances, Message: "no instances found for endpoint dynamo/backend/generate"})
	fmt.Println(reqplane.CodeOf(err), err)
	// Output:
	// no_instances no instances found for endpoint dynamo/backend/generate
}
