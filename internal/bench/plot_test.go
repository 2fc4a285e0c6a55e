package bench

import (
	"bytes"
	"errors"
	"image/png"
	"testing"
	"time"
)

func TestWritePlot(t *testing.T) {
	lat := func(base time.Duration, n int) []time.Duration {
		d := make([]time.Duration, n)
		for i := range d {
			d[i] = base + time.Duration(i)*base/time.Duration(n)
		}
		return d
	}
	series := []Series{
		{Name: "grpc", Latencies: lat(300*time.Microsecond, 500)},
		{Name: "tcp/classic", Latencies: lat(2*time.Millisecond, 500)},
		{Name: "empty", Latencies: nil},
	}
	tests := []struct {
		name          string
		opts          PlotOptions
		series        []Series
		wantW, wantH  int
		wantErr       error
		wantErrString bool
	}{
		{"default size", PlotOptions{Title: "latency"}, series, 1000, 600, nil, false},
		{"custom size", PlotOptions{Width: 640, Height: 480}, series, 640, 480, nil, false},
		{"one sample", PlotOptions{}, []Series{{Name: "x", Latencies: []time.Duration{time.Millisecond}}}, 1000, 600, nil, false},
		{"sub-microsecond samples", PlotOptions{}, []Series{{Name: "x", Latencies: []time.Duration{10, 20, 900}}}, 1000, 600, nil, false},
		{"no samples", PlotOptions{}, []Series{{Name: "x"}}, 0, 0, ErrNoSamples, false},
		{"no series", PlotOptions{}, nil, 0, 0, ErrNoSamples, false},
		{"too small", PlotOptions{Width: 100, Height: 100}, series, 0, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WritePlot(&buf, tc.series, tc.opts)
			if tc.wantErr != nil || tc.wantErrString {
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&buf)
			if err != nil {
				t.Fatalf("not a PNG: %v", err)
			}
			if b := img.Bounds(); b.Dx() != tc.wantW || b.Dy() != tc.wantH {
				t.Fatalf("size %v, want %dx%d", b, tc.wantW, tc.wantH)
			}
			// Each non-empty series draws a line in its colour.
			for i, s := range tc.series {
				if len(s.Latencies) == 0 {
					continue
				}
				want := palette[i%len(palette)]
				found := 0
				b := img.Bounds()
				for y := b.Min.Y; y < b.Max.Y && found < 100; y++ {
					for x := b.Min.X; x < b.Max.X; x++ {
						r, g, bl, _ := img.At(x, y).RGBA()
						if uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(bl>>8) == want.B {
							found++
						}
					}
				}
				if found < 100 {
					t.Errorf("series %q: %d pixels of its colour, want a line", s.Name, found)
				}
			}
		})
	}
}

func TestSeriesOf(t *testing.T) {
	rows := []Row{{Plane: ReferencePlane, CallHome: ReferenceCallHome, LoadLatencies: seq(2)}, {Plane: "tcp", CallHome: "classic"}}
	s := SeriesOf(rows)
	if len(s) != 2 || s[0].Name != "grpc" || len(s[0].Latencies) != 2 || s[1].Name != "tcp/classic" {
		t.Errorf("SeriesOf = %+v", s)
	}
}

func TestFormatTick(t *testing.T) {
	tests := []struct {
		us   float64
		want string
	}{{10, "10µs"}, {500, "500µs"}, {1000, "1ms"}, {20000, "20ms"}, {1e6, "1s"}}
	for _, tc := range tests {
		if got := formatTick(tc.us); got != tc.want {
			t.Errorf("formatTick(%v) = %q, want %q", tc.us, got, tc.want)
		}
	}
}

// Every character the chart writes has a glyph of the right shape.
func TestGlyphs(t *testing.T) {
	for r, g := range glyphs {
		for _, row := range g {
			if len(row) != glyphW {
				t.Errorf("glyph %q has a row of %d columns", r, len(row))
			}
		}
	}
	for _, r := range "reqplane bench: load-phase latency CDF (concurrency 64, 10 items/request) 0123456789 µs ms % grpc tcp/classic http nats p50 p99" {
		if _, ok := glyphs[r]; !ok {
			t.Errorf("no glyph for %q", r)
		}
	}
}
