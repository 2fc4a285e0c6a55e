package codec

import (
	"encoding/binary"
	"math/bits"
)

// maxValidDepth is encoding/json's nesting limit (maxNestingDepth in its scanner): a value
// inside more than this many arrays and objects is invalid there, so it is here too.
const maxValidDepth = 10000

// SWAR constants: one bit or byte value repeated in each of a word's eight bytes.
const (
	swarOnes  = 0x0101010101010101
	swarHighs = 0x8080808080808080
)

// ValidJSON reports whether b is exactly one JSON value with optional surrounding whitespace.
// It gives encoding/json.Valid's answer for every input (FuzzValidJSON checks): the RFC 8259
// grammar, at most 10000 nested arrays and objects, and, like encoding/json, no UTF-8 check
// inside strings. It is a single loop without recursion that skips the plain bytes of strings
// eight at a time, and allocates only for input nested more than 256 levels deep.
func ValidJSON(b []byte) bool {
	// kinds has one bit per open container, set for an object, clear for an array. The inline
	// words cover the first 256 levels; deeper input grows it once to the full limit.
	var inline [4]uint64
	kinds := inline[:]
	depth, i, n := 0, 0, len(b)
	// obj caches the innermost container's kind bit.
	var ok, obj bool

value:
	for i < n && isSpace(b[i]) {
		i++
	}
	if i >= n {
		return false
	}
	switch c := b[i]; c {
	case '"':
		if i, ok = scanString(b, i+1); !ok {
			return false
		}
	case '{', '[':
		if depth == maxValidDepth {
			return false
		}
		if depth == len(kinds)*64 {
			grown := make([]uint64, (maxValidDepth+63)/64)
			copy(grown, kinds)
			kinds = grown
		}
		word, bit := depth>>6, uint64(1)<<(depth&63)
		depth++
		for i++; i < n && isSpace(b[i]); i++ {
		}
		if c == '[' {
			kinds[word] &^= bit
			if i < n && b[i] == ']' {
				i++
				goto closed
			}
			obj = false
			goto value
		}
		kinds[word] |= bit
		if i < n && b[i] == '}' {
			i++
			goto closed
		}
		obj = true
		goto key
	case 't':
		if n-i < 4 || string(b[i:i+4]) != "true" {
			return false
		}
		i += 4
	case 'f':
		if n-i < 5 || string(b[i:i+5]) != "false" {
			return false
		}
		i += 5
	case 'n':
		if n-i < 4 || string(b[i:i+4]) != "null" {
			return false
		}
		i += 4
	default: // a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
		if c == '-' {
			if i++; i >= n {
				return false
			}
			c = b[i]
		}
		switch {
		case c == '0':
			i++
		case '1' <= c && c <= '9':
			for i++; i < n && isDigit(b[i]); i++ {
			}
		default:
			return false
		}
		if i < n && (b[i] == '.' || b[i]|0x20 == 'e') {
			if i, ok = scanFraction(b, i); !ok {
				return false
			}
		}
	}

	// A value ended at b[i]: what follows is the end, a ',' or the enclosing closer.
after:
	for i < n && isSpace(b[i]) {
		i++
	}
	if depth == 0 {
		return i == n
	}
	if i >= n {
		return false
	}
	switch b[i] {
	case ',':
		for i++; i < n && isSpace(b[i]); i++ {
		}
		if obj {
			goto key
		}
		goto value
	case '}':
		if !obj {
			return false
		}
	case ']':
		if obj {
			return false
		}
	default:
		return false
	}
	i++
closed: // the container at depth has just been closed
	depth--
	if depth > 0 {
		obj = kinds[(depth-1)>>6]>>((depth-1)&63)&1 != 0
	}
	goto after

	// An object member starts at b[i] (whitespace already skipped): key, ':', then its value.
key:
	if i >= n || b[i] != '"' {
		return false
	}
	if i, ok = scanString(b, i+1); !ok {
		return false
	}
	for i < n && isSpace(b[i]) {
		i++
	}
	if i >= n || b[i] != ':' {
		return false
	}
	i++
	goto value
}

func isSpace(c byte) bool {
	return c <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f'
}

// scanString validates the rest of a string literal from b[i], just after its opening quote,
// and returns the index after the closing quote. Control characters must be escaped and
// escapes must be valid; other bytes, including invalid UTF-8, are taken as they are, as
// encoding/json's scanner does.
func scanString(b []byte, i int) (int, bool) {
	for {
		// Skip plain bytes a word at a time. A byte needs a look if it is below 0x20 or is
		// '"' or '\\' (the zero-byte test of x XOR the byte). Borrows can only mark bytes
		// above a true hit, so the lowest marked byte is a real one; bytes >= 0x80 are never
		// marked (&^ x).
		for ; i+8 <= len(b); i += 8 {
			x := binary.LittleEndian.Uint64(b[i:])
			m := ((x - 0x20*swarOnes) | ((x ^ '"'*swarOnes) - swarOnes) | ((x ^ '\\'*swarOnes) - swarOnes)) &^ x & swarHighs
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto special
			}
		}
		for ; i < len(b); i++ {
			if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
				goto special
			}
		}
		return 0, false

	special:
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(b) {
				return 0, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return 0, false
				}
				i += 6
			default:
				return 0, false
			}
		default: // a control character
			return 0, false
		}
	}
}

// scanFraction validates a number's optional fraction and exponent from b[i] and returns the
// index after them: (\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanFraction(b []byte, i int) (int, bool) {
	n := len(b)
	if i < n && b[i] == '.' {
		if i++; i >= n || !isDigit(b[i]) {
			return 0, false
		}
		for i++; i < n && isDigit(b[i]); i++ {
		}
	}
	if i < n && b[i]|0x20 == 'e' {
		if i++; i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= n || !isDigit(b[i]) {
			return 0, false
		}
		for i++; i < n && isDigit(b[i]); i++ {
		}
	}
	return i, true
}
