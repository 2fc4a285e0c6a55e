package router

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func fleet(ids ...uint64) []Instance {
	out := make([]Instance, len(ids))
	for i, id := range ids {
		out[i] = Instance{ID: id, Transports: []Transport{{Plane: "tcp", Address: "127.0.0.1:1/x"}}}
	}
	return out
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		err  bool
	}{
		{"round_robin", RoundRobin, false},
		{"Round-Robin", RoundRobin, false},
		{"random", Random, false},
		{"direct", Direct, false},
		{"least_loaded", LeastLoaded, false},
		{"power-of-two", PowerOfTwo, false},
		{"kv", 0, true},
		{"", 0, true},
	} {
		got, err := ParseMode(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParseMode(%q) = %v, %v", tc.in, got, err)
		}
	}
	for _, m := range Modes() {
		if got, err := ParseMode(m.String()); err != nil || got != m {
			t.Errorf("round trip of %v: %v %v", m, got, err)
		}
	}
}

// counts picks per instance over n picks.
func distribution(t *testing.T, r *Router, n int) map[uint64]int {
	t.Helper()
	got := map[uint64]int{}
	for range n {
		tg, err := r.Pick(PickRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got[tg.ID]++
	}
	return got
}

func TestDistribution(t *testing.T) {
	const picks = 30000
	for _, tc := range []struct {
		mode Mode
		tol  float64 // allowed relative deviation from an even share
	}{
		{RoundRobin, 0},
		{Random, 0.1},
		{LeastLoaded, 0}, // nothing in flight: ties rotate evenly
		{PowerOfTwo, 0.1},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			r := New("ns/c/e", Options{Mode: tc.mode, IntN: rng.IntN})
			r.Update(fleet(1, 2, 3))
			got := distribution(t, r, picks)
			for id := uint64(1); id <= 3; id++ {
				share := float64(got[id]) / (picks / 3)
				if share < 1-tc.tol || share > 1+tc.tol {
					t.Errorf("instance %d got %d of %d picks", id, got[id], picks)
				}
			}
		})
	}
}

func TestRoundRobinOrder(t *testing.T) {
	r := New("ns/c/e", Options{})
	r.Update(fleet(7, 3, 5))
	var seq []uint64
	for range 6 {
		tg, _ := r.Pick(PickRequest{})
		seq = append(seq, tg.ID)
	}
	want := []uint64{7, 3, 5, 7, 3, 5}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("sequence %v, want %v", seq, want)
		}
	}
}

func TestLoadAware(t *testing.T) {
	for _, mode := range []Mode{LeastLoaded, PowerOfTwo} {
		t.Run(mode.String(), func(t *testing.T) {
			r := New("ns/c/e", Options{Mode: mode, IntN: rand.New(rand.NewPCG(3, 4)).IntN})
			r.Update(fleet(1, 2))
			// Load instance 1 heavily; every pick must avoid it while 2 is idle.
			busy := r.Instances()[0]
			var ends []Flight
			for range 10 {
				ends = append(ends, busy.Begin())
			}
			for range 100 {
				tg, _ := r.Pick(PickRequest{})
				if tg.ID != 2 {
					t.Fatalf("picked loaded instance %d", tg.ID)
				}
			}
			for i := range ends {
				ends[i].End()
				ends[i].End() // idempotent
			}
			if l := busy.state.inflight.Load(); l != 0 {
				t.Fatalf("in-flight count %d after all ended", l)
			}
		})
	}
}

func TestDirect(t *testing.T) {
	r := New("dynamo/backend/generate", Options{Mode: Direct})
	r.Update(fleet(1, 0x694d98147d54be25))
	tg, err := r.Pick(PickRequest{InstanceID: 0x694d98147d54be25})
	if err != nil || tg.ID != 0x694d98147d54be25 {
		t.Fatalf("direct pick: %v %v", tg.ID, err)
	}
	_, err = r.Pick(PickRequest{InstanceID: 42})
	if want := "instance_id=42 not found for endpoint dynamo/backend/generate"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if !errors.Is(err, ErrNoInstances) {
		t.Fatal("direct miss does not match ErrNoInstances")
	}
}

func TestNoInstances(t *testing.T) {
	r := New("dynamo/backend/generate", Options{})
	_, err := r.Pick(PickRequest{})
	if want := "no instances found for endpoint dynamo/backend/generate"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNoInstances) {
		t.Fatal("not a NotFoundError")
	}
}

func TestMarkDownAndRetry(t *testing.T) {
	now := time.Unix(1000, 0)
	r := New("ns/c/e", Options{Now: func() time.Time { return now }, DownFor: 5 * time.Second})
	r.Update(fleet(1, 2, 3))
	r.MarkDown(2)
	if !r.IsDown(2) {
		t.Fatal("2 not down")
	}
	for range 30 {
		if tg, _ := r.Pick(PickRequest{}); tg.ID == 2 {
			t.Fatal("picked an instance marked down")
		}
	}
	// A retry skips what it tried, and falls back to a down instance before giving up.
	tg, err := r.Pick(PickRequest{Tried: []uint64{1, 3}})
	if err != nil || tg.ID != 2 {
		t.Fatalf("last resort pick = %d, %v", tg.ID, err)
	}
	if _, err := r.Pick(PickRequest{Tried: []uint64{1, 2, 3}}); !errors.Is(err, ErrNoInstances) {
		t.Fatalf("all tried: %v", err)
	}
	now = now.Add(6 * time.Second)
	if r.IsDown(2) {
		t.Fatal("down mark did not expire")
	}
	// Down state survives a snapshot that keeps the instance, and is dropped with it.
	r.MarkDown(3)
	r.Update(fleet(1, 3))
	if !r.IsDown(3) {
		t.Fatal("down mark lost across update")
	}
	r.Update(fleet(1))
	r.Update(fleet(1, 3))
	if r.IsDown(3) {
		t.Fatal("a re-added instance kept an old down mark")
	}
}

func TestPlanePreference(t *testing.T) {
	mixed := []Instance{
		{ID: 1, Transports: []Transport{{"http", "http://a"}, {"tcp", "b"}, {"nats", "c"}}},
		{ID: 2, Transports: []Transport{{"nats", "d"}}}, // a Dynamo NATS worker
		{ID: 3, Transports: nil}, // nothing usable: skipped
	}
	for _, tc := range []struct {
		prefs []string
		want  map[uint64]string
	}{
		{nil, map[uint64]string{1: "http", 2: "nats"}},
		{[]string{"tcp", "http"}, map[uint64]string{1: "tcp", 2: "nats"}},
		{[]string{"nats"}, map[uint64]string{1: "nats", 2: "nats"}},
	} {
		r := New("ns/c/e", Options{Planes: tc.prefs})
		r.Update(mixed)
		got := map[uint64]string{}
		for _, tg := range r.Instances() {
			got[tg.ID] = tg.Transport.Plane
		}
		if len(got) != len(tc.want) {
			t.Fatalf("prefs %v: targets %v", tc.prefs, got)
		}
		for id, p := range tc.want {
			if got[id] != p {
				t.Errorf("prefs %v: instance %d on %q, want %q", tc.prefs, id, got[id], p)
			}
		}
	}
}

func TestWait(t *testing.T) {
	r := New("ns/c/e", Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on empty router: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Wait(context.Background()) }()
	r.Update(nil) // an empty snapshot does not end the wait
	r.Update(fleet(9))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Pick, Update and Begin run concurrently under -race.
func TestConcurrent(t *testing.T) {
	r := New("ns/c/e", Options{Mode: PowerOfTwo})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				if tg, err := r.Pick(PickRequest{}); err == nil {
					f := tg.Begin()
					f.End()
				}
				if i%100 == 0 && g == 0 {
					r.Update(fleet(uint64(i%3)+1, 10))
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkPick(b *testing.B) {
	for _, m := range []Mode{RoundRobin, Random, LeastLoaded, PowerOfTwo} {
		b.Run(m.String(), func(b *testing.B) {
			r := New("ns/c/e", Options{Mode: m})
			r.Update(fleet(1, 2, 3, 4, 5, 6, 7, 8))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tg, _ := r.Pick(PickRequest{})
					f := tg.Begin()
					f.End()
				}
			})
		})
	}
}
