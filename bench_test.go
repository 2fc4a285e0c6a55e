package reqplane_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reqplane/reqplane"
	"github.com/reqplane/reqplane/internal/echo"
	"github.com/reqplane/reqplane/internal/testcluster"
)

// BenchmarkGenerate measures one whole request through the runtime, client and worker in this
// process: route, send, ack, call home, 10 items of ~100 bytes, end. Allocations per request
// include both sides.
func BenchmarkGenerate(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cluster, err := testcluster.Start(ctx, testcluster.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	body := []byte(`{"items":10,"size":100}`)
	for _, planeName := range []string{"tcp", "http", "nats"} {
		cfg, err := reqplane.LoadConfigFrom(testcluster.Lookup(cluster.Env(planeName, map[string]string{"DYN_LOG": "error"})))
		if err != nil {
			b.Fatal(err)
		}
		worker := reqplane.New(cfg, quiet)
		ep := reqplane.EndpointID{Namespace: "bench", Component: planeName, Endpoint: "generate"}
		if err := worker.Endpoint(ep).Start(ctx, echo.BenchHandler); err != nil {
			b.Fatal(err)
		}
		rt := reqplane.New(cfg, quiet)
		for _, mode := range []struct {
			name string
			opt  reqplane.CallHomeMode
		}{{"mux", reqplane.CallHomeAuto}, {"classic", reqplane.CallHomeClassic}} {
			client, err := rt.Endpoint(ep).Client(ctx, reqplane.WithCallHome(mode.opt))
			if err != nil {
				b.Fatal(err)
			}
			if err := client.WaitForInstances(ctx); err != nil {
				b.Fatal(err)
			}
			b.Run(planeName+"/"+mode.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := generateOnce(ctx, client, body); err != nil {
						b.Fatal(err)
					}
				}
			})
			// The load shape of `reqplane bench`: 64 requests in flight, so batching on every
			// connection shows, and a profile covers client and worker together.
			b.Run(planeName+"/"+mode.name+"-parallel64", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(32) // 2 × 32 on the CI's two cores; more elsewhere
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := generateOnce(ctx, client, body); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			client.Close()
		}
		rt.Close()
		worker.Close()
	}
}

// generateOnce sends one request and checks that its 10 items come back.
func generateOnce(ctx context.Context, client *reqplane.Client, body []byte) error {
	s, err := client.Generate(ctx, body)
	if err != nil {
		return err
	}
	n := 0
	for _, err := range s.All() {
		if err != nil {
			return err
		}
		n++
	}
	if n != 10 {
		return fmt.Errorf("%d items, want 10", n)
	}
	return nil
}
