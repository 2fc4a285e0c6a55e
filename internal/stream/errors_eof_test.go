package stream

import (
	"errors"
	"io"
	"testing"
)

// A stream that fails because its connection hit EOF must not look like a clean end to callers
// that test errors.Is(err, io.EOF).
func TestFailureIsNotEOF(t *testing.T) {
	err := newError(CodeIncomplete, TextIncomplete, io.EOF)
	if errors.Is(err, io.EOF) {
		t.Fatal("an incomplete stream matches io.EOF")
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err %#v does not say what happened", err)
	}
}
