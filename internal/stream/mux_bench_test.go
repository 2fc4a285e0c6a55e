package stream

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
)

// BenchmarkRoundTrip compares one response stream's round trip, classic (a call-home
// connection per stream) against the response mux (streams on pooled connections): register,
// open the worker's end, send n items and finish, receive until io.EOF, close. Run with
// -benchmem.
func BenchmarkRoundTrip(b *testing.B) {
	for _, mode := range []string{"classic", "mux"} {
		for _, n := range []int{1, 10} {
			b.Run(mode+"/items="+strconv.Itoa(n), func(b *testing.B) {
				benchRoundTrip(b, mode == "mux", n)
			})
		}
	}
}

func benchRoundTrip(b *testing.B, mux bool, n int) {
	log := slog.New(slog.DiscardHandler)
	srv := NewServer(ServerOptions{Host: "127.0.0.1", Logger: log})
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	d := NewMuxDialer(MuxDialOptions{Logger: log})
	defer d.Close()
	ctx := context.Background()
	payload := []byte(`{"data":{"text":"hello","index":0}}`)

	open := func(st *Stream) (Responder, error) {
		if mux {
			info, _ := st.MuxInfo()
			return d.Open(ctx, info)
		}
		return Dial(ctx, st.Info(), DialOptions{Logger: log})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var st *Stream
		if mux {
			st = srv.RegisterMux("bench")
		} else {
			st = srv.Register("bench")
		}
		s, err := open(st)
		if err != nil {
			b.Fatal(err)
		}
		st.Acked()
		done := make(chan error, 1)
		go func() {
			for range n {
				if err := s.Send(payload); err != nil {
					done <- err
					return
				}
			}
			done <- s.Finish()
		}()
		got := 0
		for {
			_, err := st.Recv(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		st.Close()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		s.Close()
		if got != n {
			b.Fatalf("%d items, want %d", got, n)
		}
	}
}
