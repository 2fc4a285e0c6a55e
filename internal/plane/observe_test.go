package plane

import (
	"errors"
	"testing"

	"github.com/reqplane/reqplane/internal/codec"
)

func TestErrorType(t *testing.T) {
	_, frameErr := Decode([]byte("garbage"), 1<<20)
	hdr, err := codec.AppendFrame(nil, []byte(`{"id":1}`), []byte(`{}`), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	_, headerErr := Decode(hdr, 1<<20)
	big, err := codec.AppendFrame(nil, []byte(`{}`), make([]byte, 100), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	_, sizeErr := Decode(big, 64)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"ack", nil, ""},
		{"bad frame", frameErr, ErrorTypeInvalidMessage},
		{"too large", sizeErr, ErrorTypeInvalidMessage},
		{"bad control header", headerErr, ErrorTypeDeserialization},
		{"overloaded", ErrOverloaded, ""},
		{"draining", ErrDraining, ""},
		{"unknown endpoint", ErrUnknownEndpoint, ""},
		{"a handler's own refusal", errors.New("nope"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorType(tt.err); got != tt.want {
				t.Errorf("ErrorType(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
