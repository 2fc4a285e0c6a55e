package codec

import (
	"encoding/binary"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TCP request plane envelope (spec §5.4):
//
//	request: u16 path_len | path | u16 headers_len | headers JSON | u32 payload_len | payload
//	reply:   u32 len | data            (len 0 = ack)

const (
	minTCPPathLen    = 1
	maxTCPPathLen    = 1024
	maxTCPHeadersLen = math.MaxUint16
	// tcpFixedLen is the three length fields of a request.
	tcpFixedLen = 2 + 2 + 4
)

// TCPErrorCode classifies a TCP-plane envelope failure.
type TCPErrorCode uint8

// The TCP-plane error codes.
const (
	// TCPCodeIO: the connection failed or ended inside a message.
	TCPCodeIO TCPErrorCode = iota + 1
	// TCPCodePathLength: path_len outside 1..1024.
	TCPCodePathLength
	// TCPCodeTooLarge: payload_len (or a reply's len) over the limit.
	TCPCodeTooLarge
	// TCPCodeInvalidPath: the path is not UTF-8. The request was consumed; the connection is fine.
	TCPCodeInvalidPath
	// TCPCodeHeadersTooLarge: the headers JSON does not fit its u16 length (encoding only).
	TCPCodeHeadersTooLarge
)

// TCPError is a TCP-plane envelope failure. Its text is the server's wording.
type TCPError struct {
	Code TCPErrorCode
	// Size and Max: the offending length and its limit (path length, payload or header size).
	Size, Max uint64
	// Err is the underlying I/O error for TCPCodeIO.
	Err error
}

// Error renders the spec's text, e.g. "invalid endpoint path length: 0".
func (e *TCPError) Error() string {
	switch e.Code {
	case TCPCodePathLength:
		return "invalid endpoint path length: " + strconv.FormatUint(e.Size, 10)
	case TCPCodeTooLarge:
		return "message too large: " + strconv.FormatUint(e.Size, 10) + " bytes (max: " +
			strconv.FormatUint(e.Max, 10) + " bytes)"
	case TCPCodeInvalidPath:
		return "Invalid endpoint path"
	case TCPCodeHeadersTooLarge:
		return "headers too large: " + strconv.FormatUint(e.Size, 10) + " bytes (max: " +
			strconv.FormatUint(e.Max, 10) + " bytes)"
	case TCPCodeIO:
		if e.Err != nil {
			return e.Err.Error()
		}
		return "I/O error"
	default:
		return "TCPError(" + strconv.Itoa(int(e.Code)) + ")"
	}
}

// Unwrap returns the underlying I/O error.
func (e *TCPError) Unwrap() error { return e.Err }

// Is matches any *TCPError with the same code, so errors.Is(err, ErrTCPTooLarge) works.
func (e *TCPError) Is(target error) bool {
	t, ok := target.(*TCPError)
	return ok && t.Code == e.Code
}

// Fatal reports whether the server must close the connection after replying: true for every
// code but TCPCodeInvalidPath, after which the stream is still in sync.
func (e *TCPError) Fatal() bool { return e.Code != TCPCodeInvalidPath }

// Reply is the reply data a server sends for this failure: "Invalid endpoint path" (then go on)
// or "Read error: {text}" (then close).
func (e *TCPError) Reply() string {
	if e.Code == TCPCodeInvalidPath {
		return e.Error()
	}
	return "Read error: " + e.Error()
}

// Sentinels for errors.Is; each matches every *TCPError with its code.
var (
	ErrTCPPathLength  error = &TCPError{Code: TCPCodePathLength}
	ErrTCPTooLarge    error = &TCPError{Code: TCPCodeTooLarge}
	ErrTCPInvalidPath error = &TCPError{Code: TCPCodeInvalidPath}
)

// TCPRequest is one request read from a TCP-plane connection.
type TCPRequest struct {
	Path string
	// RawHeaders is the headers object as received; it aliases the reader's buffer. Headers
	// and FindHeaders decode it: a map per request would cost more than the few headers a
	// server reads.
	RawHeaders []byte
	// Payload is the TwoPart frame; it aliases the reader's buffer.
	Payload []byte
}

// Headers returns the request's headers (ParseHeaders of RawHeaders): nil when it has none or
// they are not a JSON object of strings.
func (r TCPRequest) Headers() map[string]string { return ParseHeaders(r.RawHeaders) }

// Header is one TCP-plane request header.
type Header struct{ Key, Value string }

// AppendTCPRequest appends one request envelope. The path must be 1..1024 bytes of UTF-8; the
// headers are written as a JSON object with sorted keys ({} when empty); the payload must not
// exceed max (max <= 0: no limit beyond the u32 field). Errors are *TCPError; nothing is
// appended then.
func AppendTCPRequest(dst []byte, path string, headers map[string]string, payload []byte, max int) ([]byte, error) {
	var small [16]Header // typical header sets sort without allocating
	hs := small[:0]
	if len(headers) > len(small) {
		hs = make([]Header, 0, len(headers))
	}
	for k, v := range headers {
		hs = append(hs, Header{k, v})
	}
	slices.SortFunc(hs, func(a, b Header) int { return strings.Compare(a.Key, b.Key) })
	return AppendTCPRequestSorted(dst, path, hs, payload, max)
}

// AppendTCPRequestSorted is AppendTCPRequest with the headers given as pairs sorted by key,
// keys distinct: it appends the same bytes as AppendTCPRequest with the map of those pairs,
// without a map.
func AppendTCPRequestSorted(dst []byte, path string, headers []Header, payload []byte, max int) ([]byte, error) {
	if len(path) < minTCPPathLen || len(path) > maxTCPPathLen {
		return dst, &TCPError{Code: TCPCodePathLength, Size: uint64(len(path)), Max: maxTCPPathLen}
	}
	if !utf8.ValidString(path) {
		return dst, &TCPError{Code: TCPCodeInvalidPath}
	}
	limit := uint64(math.MaxUint32)
	if max > 0 && uint64(max) < limit {
		limit = uint64(max)
	}
	if uint64(len(payload)) > limit {
		return dst, &TCPError{Code: TCPCodeTooLarge, Size: uint64(len(payload)), Max: limit}
	}
	start := len(dst)
	dst = slices.Grow(dst, tcpFixedLen+len(path)+len(payload)+64)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(path)))
	dst = append(dst, path...)
	hpos := len(dst)
	dst = append(dst, 0, 0)
	dst = appendSortedHeaders(dst, headers)
	hlen := len(dst) - hpos - 2
	if hlen > maxTCPHeadersLen {
		return dst[:start], &TCPError{Code: TCPCodeHeadersTooLarge, Size: uint64(hlen), Max: maxTCPHeadersLen}
	}
	binary.BigEndian.PutUint16(dst[hpos:], uint16(hlen))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...), nil
}

// AppendHeaders appends headers as a compact JSON object with keys in sorted order, so equal
// maps encode to equal bytes; nil or empty is {}.
func AppendHeaders(dst []byte, headers map[string]string) []byte {
	var small [16]string // typical header sets sort without allocating
	var keys []string
	if len(headers) <= len(small) {
		keys = small[:0]
		for k := range headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
	} else {
		keys = slices.Sorted(maps.Keys(headers))
	}
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, k)
		dst = append(dst, ':')
		dst = AppendString(dst, headers[k])
	}
	return append(dst, '}')
}

// appendSortedHeaders is AppendHeaders for pairs already sorted by key.
func appendSortedHeaders(dst []byte, headers []Header) []byte {
	dst = append(dst, '{')
	for i, h := range headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, h.Key)
		dst = append(dst, ':')
		dst = AppendString(dst, h.Value)
	}
	return append(dst, '}')
}

// TCPRequestReader reads pipelined requests from one TCP-plane connection. It reads ahead, so
// it must own the connection's read side. Requests returned by Next alias its buffer and are
// valid until the next call. It is not safe for concurrent use.
type TCPRequestReader struct {
	in      inbuf
	max     int
	err     error  // sticky fatal error
	lastStr string // the previous path, reused: a connection mostly serves one endpoint
}

// NewTCPRequestReader returns a reader that refuses payloads larger than max (max <= 0: no
// limit beyond the u32 field). It does no I/O.
func NewTCPRequestReader(r io.Reader, max int) *TCPRequestReader {
	return &TCPRequestReader{in: inbuf{r: r}, max: max}
}

// Next returns the next request. io.EOF means the peer closed cleanly between requests. Other
// failures are *TCPError: if Fatal, reply Reply() and close (Next keeps returning the error);
// otherwise (invalid UTF-8 path) reply Reply() and call Next again. Lengths are checked before
// the bytes they announce are read or allocated for.
func (t *TCPRequestReader) Next() (TCPRequest, error) {
	if t.err != nil {
		return TCPRequest{}, t.err
	}
	t.in.release()
	for {
		b := t.in.buffered()
		req, n, need, err := t.split(b)
		if err != nil {
			if err.Fatal() {
				t.err = err
			} else {
				t.in.consume(n)
			}
			return TCPRequest{}, err
		}
		if n > 0 {
			t.in.consume(n)
			return req, nil
		}
		if err := t.in.fill(need); err != nil {
			if err == io.EOF {
				if t.in.end == t.in.start {
					return TCPRequest{}, io.EOF
				}
				err = io.ErrUnexpectedEOF
			}
			e := &TCPError{Code: TCPCodeIO, Err: err}
			if err == io.ErrUnexpectedEOF {
				t.err = e
			}
			return TCPRequest{}, e
		}
	}
}

// split parses the request at the start of b. n > 0: a whole request of n bytes. n == 0 and
// err == nil: need is how many bytes must be buffered to make progress.
func (t *TCPRequestReader) split(b []byte) (req TCPRequest, n, need int, err *TCPError) {
	if len(b) < 2 {
		return TCPRequest{}, 0, 2, nil
	}
	plen := int(binary.BigEndian.Uint16(b))
	if plen < minTCPPathLen || plen > maxTCPPathLen {
		return TCPRequest{}, 0, 0, &TCPError{Code: TCPCodePathLength, Size: uint64(plen), Max: maxTCPPathLen}
	}
	hoff := 2 + plen + 2
	if len(b) < hoff {
		return TCPRequest{}, 0, hoff, nil
	}
	hlen := int(binary.BigEndian.Uint16(b[hoff-2:]))
	poff := hoff + hlen + 4
	if len(b) < poff {
		return TCPRequest{}, 0, poff, nil
	}
	size := uint64(binary.BigEndian.Uint32(b[poff-4:]))
	if limit := t.limit(); size > limit || size > uint64(math.MaxInt-poff) {
		return TCPRequest{}, 0, 0, &TCPError{Code: TCPCodeTooLarge, Size: size, Max: limit}
	}
	total := poff + int(size)
	if len(b) < total {
		return TCPRequest{}, 0, total, nil
	}
	path := b[2 : 2+plen]
	if !utf8.Valid(path) {
		return TCPRequest{}, total, 0, &TCPError{Code: TCPCodeInvalidPath}
	}
	return TCPRequest{
		Path:       t.pathString(path),
		RawHeaders: b[hoff : hoff+hlen : hoff+hlen],
		Payload:    b[poff:total:total],
	}, total, 0, nil
}

func (t *TCPRequestReader) limit() uint64 {
	if t.max > 0 && uint64(t.max) < math.MaxUint32 {
		return uint64(t.max)
	}
	return math.MaxUint32
}

func (t *TCPRequestReader) pathString(p []byte) string {
	if string(p) != t.lastStr {
		t.lastStr = string(p)
	}
	return t.lastStr
}

// ParseHeaders parses a TCP-plane headers object. Empty input, an empty object, or anything
// other than exactly one JSON object whose values are all strings yields nil (an empty map to
// readers), as the spec asks. It is hand-written because it runs for every TCP request.
func ParseHeaders(b []byte) map[string]string {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return nil
	}
	var h map[string]string
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil // empty, or not a single object: nil either way
	}
	for {
		k, next, ok := parseString(b, i)
		if !ok {
			return nil
		}
		i = skipSpace(b, next)
		if i == len(b) || b[i] != ':' {
			return nil
		}
		v, next, ok := parseString(b, skipSpace(b, i+1))
		if !ok {
			return nil
		}
		if h == nil {
			h = make(map[string]string, 4)
		}
		h[k] = v
		i = skipSpace(b, next)
		if i == len(b) {
			return nil
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			if skipSpace(b, i+1) != len(b) {
				return nil
			}
			return h
		default:
			return nil
		}
	}
}

// FindHeaders finds the header keys in the headers object b as ParseHeaders reads it: at[i]
// is where the value of keys[i] starts in b (for a repeated key, the last one), 0 when it is
// absent, and 0 for every key when b is not one JSON object of strings. HeaderValue decodes a
// value found. A server that reads a few known headers needs no map, and decodes only the
// values it uses. at must be as long as keys.
func FindHeaders(b []byte, keys []string, at []int) {
	clear(at)
	if !findHeaders(b, keys, at) {
		clear(at)
	}
}

// HeaderValue returns the value FindHeaders found at index at of b ("" for 0).
func HeaderValue(b []byte, at int) string {
	if at <= 0 {
		return ""
	}
	v, _, _ := parseString(b, at)
	return v
}

// HeaderValueOr is HeaderValue, but returns s itself, without a copy, when the value is
// written exactly as s: a worker reads request ids equal to the control id it already has.
func HeaderValueOr(b []byte, at int, s string) string {
	if at > 0 && s != "" && len(b) > at+len(s)+1 && b[at] == '"' && b[at+1+len(s)] == '"' && string(b[at+1:at+1+len(s)]) == s {
		return s
	}
	return HeaderValue(b, at)
}

// findHeaders records the keys' values in at and reports whether b is valid.
func findHeaders(b []byte, keys []string, at []int) bool {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return false // empty, or not a single object: no headers either way
	}
	for {
		kend, ok := skipString(b, i)
		if !ok {
			return false
		}
		kstart := i
		i = skipSpace(b, kend)
		if i == len(b) || b[i] != ':' {
			return false
		}
		vstart := skipSpace(b, i+1)
		vend, ok := skipString(b, vstart)
		if !ok {
			return false
		}
		markHeaderKey(b, kstart, kend, keys, at, vstart)
		i = skipSpace(b, vend)
		if i == len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// markHeaderKey sets at[j] = v for every keys[j] equal to the valid string literal
// b[start:end], decoded as ParseHeaders decodes keys. A plain ASCII key is compared in place;
// others are decoded first.
func markHeaderKey(b []byte, start, end int, keys []string, at []int, v int) {
	raw := b[start+1 : end-1]
	var key string
	plain := true
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if !plain {
		key, _, _ = parseString(b, start)
	}
	for j, k := range keys {
		if plain && string(raw) == k || !plain && key == k {
			at[j] = v
		}
	}
}

// AppendTCPReply appends a reply envelope: u32 length, then data (empty data is the ack).
// Data beyond the u32 range is cut there; replies are short texts.
func AppendTCPReply(dst, data []byte) []byte {
	if uint64(len(data)) > math.MaxUint32 {
		data = data[:math.MaxUint32]
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(data)))
	return append(dst, data...)
}

// ReadTCPReply reads one reply and returns its data (empty for an ack). The length is checked
// against max (max <= 0: no limit) before anything is allocated or read; the data is read into
// buf when it is large enough, so the result may alias buf. io.EOF means the peer closed before
// a reply began; other failures are *TCPError.
func ReadTCPReply(r io.Reader, max int, buf []byte) ([]byte, error) {
	buf = buf[:0]
	var hdr []byte
	if cap(buf) >= 4 {
		hdr = buf[:4]
	} else {
		hdr = make([]byte, 4)
	}
	if _, err := io.ReadFull(r, hdr); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, &TCPError{Code: TCPCodeIO, Err: err}
	}
	size := uint64(binary.BigEndian.Uint32(hdr))
	limit := uint64(math.MaxInt) // only bites on 32-bit platforms
	if max > 0 {
		limit = uint64(max)
	}
	if size > limit {
		return nil, &TCPError{Code: TCPCodeTooLarge, Size: size, Max: limit}
	}
	data, err := readGrowing(r, buf, int(size))
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, &TCPError{Code: TCPCodeIO, Err: err}
	}
	return data, nil
}

// readGrowing reads exactly n bytes into buf (reusing its capacity), growing it by doubling so
// that a declared length the peer does not send costs at most twice what it did send.
func readGrowing(r io.Reader, buf []byte, n int) ([]byte, error) {
	if n <= cap(buf) {
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf = buf[:0]
	for len(buf) < n {
		chunk := min(n-len(buf), max(len(buf), minBufSize))
		buf = slices.Grow(buf, chunk)
		off := len(buf)
		buf = buf[:off+chunk]
		if _, err := io.ReadFull(r, buf[off:]); err != nil {
			return nil, err
		}
	}
	return buf, nil
}
