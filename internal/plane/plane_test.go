package plane

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestMetaHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		meta Meta
		want map[string]string
	}{
		{"bare", Meta{}, map[string]string{"x-request-id": "ID", "request-id": "ID"}},
		{"caller id", Meta{RequestID: "r1"}, map[string]string{"x-request-id": "r1", "request-id": "ID"}},
		{"traced", Meta{TraceParent: "00-a-b-01", TraceState: "k=v"},
			map[string]string{"traceparent": "00-a-b-01", "tracestate": "k=v", "x-request-id": "ID", "request-id": "ID"}},
		{"tracestate alone is not sent", Meta{TraceState: "k=v"}, map[string]string{"x-request-id": "ID", "request-id": "ID"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			tc.meta.Headers("ID", func(k, v string) { got[k] = v })
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("headers %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMetaFromHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want string
	}{
		{"x-request-id wins", map[string]string{"x-request-id": "a", "request-id": "b", "x-dynamo-request-id": "c"}, "a"},
		{"request-id next", map[string]string{"request-id": "b", "x-dynamo-request-id": "c"}, "b"},
		{"x-dynamo-request-id next", map[string]string{"x-dynamo-request-id": "c"}, "c"},
		{"control id last", nil, "ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.hdr {
				h.Set(k, v)
			}
			h.Set("traceparent", "tp")
			m := MetaFromHeaders(h.Get, "ID")
			if m.RequestID != tc.want || m.TraceParent != "tp" {
				t.Fatalf("meta %+v, want request id %q", m, tc.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	wrapped := fmt.Errorf("send: %w", &Error{Plane: NameHTTP, Code: CodeOverloaded, Status: 503, Text: TextOverloaded})
	if !errors.Is(wrapped, ErrOverloaded) || errors.Is(wrapped, ErrDraining) {
		t.Fatal("Is does not match by code")
	}
	if CodeOf(wrapped) != CodeOverloaded || !Retryable(wrapped) {
		t.Fatal("CodeOf/Retryable")
	}
	if CodeOf(errors.New("x")) != CodeUnknown || Retryable(errors.New("x")) {
		t.Fatal("foreign error classified")
	}
	for _, tc := range []struct {
		code  Code
		retry bool
	}{
		{CodeUnknownEndpoint, true}, {CodeOverloaded, true}, {CodeDraining, true}, {CodeNoResponders, true},
		{CodeConnect, true}, {CodeAckTimeout, true},
		{CodeBadRequest, false}, {CodeTooLarge, false}, {CodeRefused, false}, {CodeClosed, false}, {CodeUnknown, false},
	} {
		if got := (&Error{Code: tc.code}).Retryable(); got != tc.retry {
			t.Errorf("%v retryable = %v", tc.code, got)
		}
	}
	if got := (&Error{Plane: NameTCP, Code: CodeConnect, Err: errors.New("refused")}).Error(); got != "tcp request plane: connect: refused" {
		t.Fatalf("text %q", got)
	}
	if code, text := Refusal(ErrDraining); code != CodeDraining || text != TextDraining {
		t.Fatalf("Refusal(ErrDraining) = %v %q", code, text)
	}
	if code, text := Refusal(errors.New("nope")); code != CodeBadRequest || text != "nope" {
		t.Fatalf("Refusal(other) = %v %q", code, text)
	}
}
