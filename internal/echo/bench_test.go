package echo

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestAppendBenchItem(t *testing.T) {
	tests := []struct {
		i, size int
		want    string
	}{
		{0, 0, `{"data":{"index":0,"pad":""}}`},
		{7, 29, `{"data":{"index":7,"pad":""}}`},
		{7, 30, `{"data":{"index":7,"pad":"x"}}`},
		{12345, 100, `{"data":{"index":12345,"pad":"` + strings.Repeat("x", 100-33) + `"}}`},
	}
	for _, tc := range tests {
		got := string(AppendBenchItem([]byte("prefix"), tc.i, tc.size))
		if got != "prefix"+tc.want {
			t.Errorf("AppendBenchItem(%d, %d) = %s, want %s", tc.i, tc.size, got, tc.want)
		}
		if !json.Valid([]byte(tc.want)) {
			t.Errorf("%s is not JSON", tc.want)
		}
	}
	if n := len(AppendBenchItem(nil, 99, 100)); n != 100 {
		t.Errorf("a 100-byte item is %d bytes", n)
	}
}

func TestParseBenchRequest(t *testing.T) {
	tests := []struct {
		body    string
		want    BenchRequest
		wantErr bool
	}{
		{`{"items":10,"size":100}`, BenchRequest{Items: 10, Size: 100}, false},
		{`{"items":1,"size":100,"pad":"xxxx"}`, BenchRequest{Items: 1, Size: 100}, false},
		{`{}`, BenchRequest{}, false},
		{`{"items":-1,"size":1}`, BenchRequest{}, true},
		{`{"items":1000001,"size":1}`, BenchRequest{}, true},
		{`{"items":1,"size":1048577}`, BenchRequest{}, true},
		{`{"items":"ten"}`, BenchRequest{}, true},
		{`not json`, BenchRequest{}, true},
		// What the bench sends, read by hand, and neighbours left to encoding/json.
		{`{"items":10,"size":100,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`, BenchRequest{Items: 10, Size: 100}, false},
		{`{"items":2,"size":100,"hold_ms":5000}`, BenchRequest{Items: 2, Size: 100, HoldMS: 5000}, false},
		{`{"items":1,"items":3}`, BenchRequest{Items: 3}, false},
		{`{"ITEMS":4,"Size":5}`, BenchRequest{Items: 4, Size: 5}, false},
		{`{ "items" : 6 }`, BenchRequest{Items: 6}, false},
		{`{"items":-0,"size":0}`, BenchRequest{}, false},
		{`{"items":1e1}`, BenchRequest{}, true},
		{`{"items":01}`, BenchRequest{}, true},
		{`{"items":1,"pad":"\u0078","x":[1]}`, BenchRequest{Items: 1}, false},
		{`{"items":1}x`, BenchRequest{}, true},
		{`{"items":1,}`, BenchRequest{}, true},
		{`{"items":99999999999999999999}`, BenchRequest{}, true},
		{`{"hold_ms":60001}`, BenchRequest{}, true},
		{`{"HOLD_MS":"x"}`, BenchRequest{}, true},
		{`{"Hold_Ms":7}`, BenchRequest{HoldMS: 7}, false},
	}
	for _, tc := range tests {
		got, err := ParseBenchRequest([]byte(tc.body))
		if tc.wantErr != (err != nil) || got != tc.want {
			t.Errorf("ParseBenchRequest(%s) = %+v, %v", tc.body, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadBenchRequest) {
			t.Errorf("ParseBenchRequest(%s): %v is not ErrBadBenchRequest", tc.body, err)
		}
	}
}

// FuzzParseBenchRequest checks the hand-written reader against encoding/json: whatever it
// accepts, encoding/json decodes to the same request, and ParseBenchRequest answers as a parse
// with encoding/json alone would.
func FuzzParseBenchRequest(f *testing.F) {
	for _, s := range []string{
		`{"items":10,"size":100,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`, `{"items":2,"size":100,"hold_ms":5000}`,
		`{}`, `{"items":-1}`, `{"Items":1}`, `{"items":1,"items":2}`, `{"items":1.5}`, `{"s\u0069ze":3}`,
		`{"items":1,"pad":"\"","z":null}`, `{"items":123456789012345678}`, `{"items":1}}`, `{"items":0`, `{"HOLD_MS":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if fast, ok := parseBenchFast(b); ok {
			var slow BenchRequest
			if err := json.Unmarshal(b, &slow); err != nil || slow != fast {
				t.Fatalf("%q: hand-written %+v, encoding/json %+v %v", b, fast, slow, err)
			}
		}
		got, err := ParseBenchRequest(b)
		var want BenchRequest
		jerr := json.Unmarshal(b, &want)
		if jerr != nil {
			if err == nil {
				t.Fatalf("%q: accepted as %+v, encoding/json: %v", b, got, jerr)
			}
			return
		}
		if err == nil && got != want {
			t.Fatalf("%q: %+v, encoding/json %+v", b, got, want)
		}
	})
}

func BenchmarkParseBenchRequest(b *testing.B) {
	body := []byte(`{"items":10,"size":100,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBenchRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendBenchItem(b *testing.B) {
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBenchItem(buf[:0], 7, 100)
	}
}
