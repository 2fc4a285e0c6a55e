package codec

import (
	"bytes"
	"encoding/json"
	"strings"
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
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	start := i + 1
	// Fast path: no escapes, valid UTF-8.
	for j := start; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			if utf8.Valid(b[start:j]) {
				return string(b[start:j]), j + 1, true
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	// Validate and find the end first, so the result is allocated once and unescaped runs are
	// copied whole.
	end, ok := skipString(b, i)
	if !ok {
		return "", 0, false
	}
	raw := b[start : end-1]
	var sb strings.Builder
	sb.Grow(len(raw))
	run := 0
	for j := 0; j < len(raw); {
		c := raw[j]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(raw[j:])
			if r == utf8.RuneError && size == 1 {
				sb.Write(raw[run:j])
				sb.WriteRune(utf8.RuneError)
				run = j + 1
			}
			j += size
			continue
		}
		if c != '\\' {
			j++
			continue
		}
		sb.Write(raw[run:j])
		esc := raw[j+1] // skipString guarantees a valid escape
		j += 2
		switch esc {
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r, _ := hex4(raw, j)
			j += 4
			if utf16.IsSurrogate(r) {
				// A valid pair is \uD8xx\uDCxx; anything else is a lone surrogate.
				r2, ok := hex4(raw, j+2)
				if dec := utf16.DecodeRune(r, r2); ok && raw[j] == '\\' && raw[j+1] == 'u' && dec != utf8.RuneError {
					r = dec
					j += 6
				} else {
					r = utf8.RuneError
				}
			}
			sb.WriteRune(r)
		default: // '"', '\\', '/'
			sb.WriteByte(esc)
		}
		run = j
	}
	sb.Write(raw[run:])
	return sb.String(), end, true
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
