package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON writing mirrors serde_json's compact formatter byte for byte, because peers hash and
// compare these objects: only '"', '\\' and control characters are escaped (\b \f \n \r \t in
// short form, the rest as \u00XX with lowercase hex); '<', '>', '&', U+2028, U+2029 and all
// other non-ASCII characters are written as they are. Go strings may hold invalid UTF-8, which
// a Rust String cannot: each invalid byte is written as U+FFFD, as String::from_utf8_lossy would.

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal exactly as serde_json writes it.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s, false)
	return append(dst, '"')
}

// appendEscaped appends the body of s's JSON string literal (without quotes). With double set it
// appends that body escaped once more, i.e. as it appears inside a JSON string that itself holds
// a JSON document (the call-home info inside the request header).
func appendEscaped(dst []byte, s string, double bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, "\uFFFD"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = appendEscape(dst, c, double)
		i++
		start = i
	}
	return append(dst, s[start:]...)
}

// appendEscape appends the escape sequence for the ASCII byte c ('"', '\\' or a control char).
func appendEscape(dst []byte, c byte, double bool) []byte {
	var seq [6]byte
	n := 2
	seq[0] = '\\'
	switch c {
	case '"', '\\':
		seq[1] = c
	case '\b':
		seq[1] = 'b'
	case '\f':
		seq[1] = 'f'
	case '\n':
		seq[1] = 'n'
	case '\r':
		seq[1] = 'r'
	case '\t':
		seq[1] = 't'
	default:
		seq = [6]byte{'\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf]}
		n = 6
	}
	if !double {
		return append(dst, seq[:n]...)
	}
	for _, b := range seq[:n] {
		if b == '\\' || b == '"' {
			dst = append(dst, '\\')
		}
		dst = append(dst, b)
	}
	return dst
}

// unmarshal decodes a JSON control object with encoding/json (readers need not be fast, only
// tolerant: unknown fields are ignored). Numbers are never decoded through float64: every
// numeric field is a sized integer, and unknown ones are skipped.
func unmarshal(object string, b []byte, v any) *ControlError {
	if err := json.Unmarshal(b, v); err != nil {
		return malformed(object, err.Error(), err)
	}
	return nil
}

// isNull reports whether raw is the JSON literal null (possibly surrounded by whitespace).
func isNull(raw []byte) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func missingField(object, name string) *ControlError {
	return malformed(object, "missing field `"+name+"`", nil)
}

// skipSpace returns the index of the first non-whitespace byte at or after i (JSON whitespace).
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// parseString decodes the JSON string literal starting at b[i] and returns it and the index
// after its closing quote. Like encoding/json, invalid UTF-8 and lone surrogates decode to
// U+FFFD; raw control characters and bad escapes are errors.
func parseString(b []byte, i int) (string, int, bool) {
	return parseStringIn(b, "", i)
}

// parseStringIn is parseString for b whose bytes are also the immutable string src (or src
// empty): a literal that decodes to itself, as nearly every one does, is returned as a
// substring of src rather than a copy.
func parseStringIn(b []byte, src string, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	start := i + 1
	j := stringRun(b, start)
	if j < len(b) && b[j] == '"' {
		if len(src) == len(b) {
			return src[start:j], j + 1, true
		}
		return string(b[start:j]), j + 1, true
	}
	// Escapes, invalid UTF-8 or an error: decode the rest in one pass into a stack buffer,
	// then copy it once. A literal too long for the buffer gets one of its size instead of a
	// few growing ones.
	var stack [256]byte
	buf := stack[:0]
	if len(b)-start > len(stack) {
		end, ok := skipString(b, i)
		if !ok {
			return "", 0, false
		}
		if end-start > len(stack) {
			buf = make([]byte, 0, end-start)
		}
	}
	out, end, ok := appendStringBody(append(buf, b[start:j]...), b, j)
	if !ok {
		return "", 0, false
	}
	return string(out), end, true
}

// appendStringBody decodes the body of a string literal from b[i] (inside it, after its
// opening quote), appends the decoded text to dst, and returns it and the index after the
// closing quote. It validates as it goes, as skipString does: control characters must be
// escaped and escapes must be valid. ok is false for an invalid or unterminated literal. It
// may write into dst's spare capacity beyond the text it appends.
func appendStringBody(dst, b []byte, i int) (_ []byte, end int, ok bool) {
	for {
		// The common text, ASCII with \" \\ \/ escapes (the call-home info inside the request
		// header is full of \"), is copied a word at a time while dst has room for a whole
		// word past its end: each word is stored whole where its text goes, and only the
		// count of its plain bytes is kept. (Decoding all the escapes of a word from one load
		// was tried: the chain from one escape to the next is no shorter, and it was slower.)
		d, n := dst[:cap(dst)], len(dst)
		// (The bounds in the loop's condition, as written, let the compiler drop the checks
		// in its body.)
		for i >= 0 && n >= 0 && i <= len(b)-8 && n <= len(d)-8 {
			x := binary.LittleEndian.Uint64(b[i : i+8])
			binary.LittleEndian.PutUint64(d[n:n+8], x)
			m := swarSpecial(x)
			if m == 0 {
				i, n = i+8, n+8
				continue
			}
			k := bits.TrailingZeros64(m) >> 3
			w := x >> (8 * k) // the special byte, then what follows it in the word
			i, n = i+k, n+k
			if c := byte(w); c == '"' {
				return d[:n], i + 1, true
			} else if c != '\\' {
				break
			}
			e := byte(w >> 8)
			if k == 7 { // the escape goes on in the next word
				if i+1 >= len(b) {
					break
				}
				e = b[i+1]
			}
			if e != '"' && e != '\\' && e != '/' {
				break
			}
			d[n] = e
			i, n = i+2, n+1
		}
		dst = d[:n]
		// Anything else, one run or one special at a time.
		j := stringRun(b, i)
		dst = append(dst, b[i:j]...)
		if j >= len(b) {
			return dst, 0, false
		}
		switch c := b[j]; {
		case c == '"':
			return dst, j + 1, true
		case c == '\\':
			if dst, i, ok = appendUnescaped(dst, b, j); !ok {
				return dst, 0, false
			}
		case c < 0x20:
			return dst, 0, false
		default: // the first byte of an invalid UTF-8 sequence, which decodes to U+FFFD alone
			dst = append(dst, "\uFFFD"...)
			i = j + 1
		}
	}
}

// appendUnescaped decodes the escape sequence at b[i] ('\\'), appends the text it stands
// for, and returns the index after it. A surrogate pair written as two \u escapes is one
// character; any other surrogate decodes to U+FFFD, as in encoding/json.
func appendUnescaped(dst, b []byte, i int) ([]byte, int, bool) {
	if i+1 >= len(b) {
		return dst, 0, false
	}
	var c byte
	switch e := b[i+1]; e {
	case '"', '\\', '/':
		c = e
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		r, ok := hex4(b, i+2)
		if !ok {
			return dst, 0, false
		}
		i += 6
		if utf16.IsSurrogate(r) {
			// hex4 succeeding means b[i+2:i+6] exists, and so do b[i] and b[i+1].
			r2, ok := hex4(b, i+2)
			if dec := utf16.DecodeRune(r, r2); ok && b[i] == '\\' && b[i+1] == 'u' && dec != utf8.RuneError {
				r = dec
				i += 6
			} else {
				r = utf8.RuneError
			}
		}
		return utf8.AppendRune(dst, r), i, true
	default:
		return dst, 0, false
	}
	return append(dst, c), i + 2, true
}

// stringRun returns the index of the first byte at or after i that a string literal's body
// cannot take as it is: '"', '\\', a control character, or the first byte of an invalid UTF-8
// sequence; len(b) if there is none.
func stringRun(b []byte, i int) int {
	for {
		if i = asciiRun(b, i); i >= len(b) || b[i] < utf8.RuneSelf {
			return i
		}
		// Non-ASCII: valid UTF-8 is taken as it is, rune by rune (which is how the text
		// decodes: an invalid byte is replaced alone, and decoding goes on after it).
		for i < len(b) && b[i] >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i
			}
			i += size
		}
	}
}

// swarSpecial marks the high bit of each byte of the little-endian word x that is '"', '\\',
// below 0x20 or at least 0x80. As in scanString, the lowest marked byte is a real one: borrows
// start only at real ones and mark only bytes above them.
func swarSpecial(x uint64) uint64 {
	return ((x - 0x20*swarOnes) | ((x ^ '"'*swarOnes) - swarOnes) | ((x ^ '\\'*swarOnes) - swarOnes) | x) & swarHighs
}

// asciiRun returns the index of the first byte at or after i that is '"', '\\', a control
// character or non-ASCII; len(b) if there is none.
func asciiRun(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := swarSpecial(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return i
		}
	}
	return i
}

// hex4 decodes the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
