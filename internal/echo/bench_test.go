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
