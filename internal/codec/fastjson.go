package codec

import (
	"bytes"
	"encoding/binary"
)

// A strict, reflection-free reader for the fast path of the per-request parsers. It accepts
// only input that encoding/json would decode to the same result: objects whose known members
// have string values and ASCII keys without escapes. Anything else — an error to describe, a
// null, a key encoding/json would match case-insensitively, deep nesting — makes it give up,
// and the caller falls back to encoding/json, which then decides and words any error. The fuzz
// target FuzzFastPathAgrees checks the two paths agree.

// maxFastDepth bounds nesting in skipped values; deeper input goes to encoding/json.
const maxFastDepth = 64

type fastScanner struct {
	b []byte
	i int
}

// open consumes the '{' that starts an object.
func (s *fastScanner) open() bool {
	s.i = skipSpace(s.b, s.i)
	if s.i < len(s.b) && s.b[s.i] == '{' {
		s.i++
		return true
	}
	return false
}

// member moves to the next member of the current object. It returns the member's raw key with
// the scanner at its value, or end once the closing '}' is consumed.
func (s *fastScanner) member(first bool) (key []byte, end, ok bool) {
	s.i = skipSpace(s.b, s.i)
	if s.i >= len(s.b) {
		return nil, false, false
	}
	if s.b[s.i] == '}' {
		s.i++
		return nil, true, true
	}
	if !first {
		if s.b[s.i] != ',' {
			return nil, false, false
		}
		s.i = skipSpace(s.b, s.i+1)
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	start := s.i + 1
	j := asciiRun(s.b, start)
	if j >= len(s.b) || s.b[j] != '"' {
		return nil, false, false
	}
	key = s.b[start:j]
	s.i = skipSpace(s.b, j+1)
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, false, false
	}
	s.i = skipSpace(s.b, s.i+1)
	return key, false, true
}

// uuid reads a string value that is a UUID written without escapes into dst; anything else
// gives up.
func (s *fastScanner) uuid(dst *UUID) bool {
	// The 36 characters parseUUID accepts are hex digits and '-', none of which ends or
	// escapes a string, so the value is exactly those 36 bytes between quotes.
	if rest := s.b[s.i:]; len(rest) >= 38 && rest[0] == '"' && rest[37] == '"' {
		if decodeUUID(dst, rest[1:37]) {
			s.i += 38
			return true
		}
	}
	return false
}

// decodeUUID is parseUUID eight digits at a time: it accepts exactly the same input, and
// stores the UUID in dst (two word stores, not a copy of an array built byte by byte, which
// costs more than the decoding).
func decodeUUID(dst *UUID, b []byte) bool {
	if len(b) != 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return false
	}
	w0, ok0 := hex8(binary.LittleEndian.Uint64(b[0:]))
	w1, ok1 := hex8(uint64(binary.LittleEndian.Uint32(b[9:])) | uint64(binary.LittleEndian.Uint32(b[14:]))<<32)
	w2, ok2 := hex8(uint64(binary.LittleEndian.Uint32(b[19:])) | uint64(binary.LittleEndian.Uint32(b[24:]))<<32)
	w3, ok3 := hex8(binary.LittleEndian.Uint64(b[28:]))
	if !ok0 || !ok1 || !ok2 || !ok3 {
		return false
	}
	binary.LittleEndian.PutUint64(dst[0:], uint64(w0)|uint64(w1)<<32)
	binary.LittleEndian.PutUint64(dst[8:], uint64(w2)|uint64(w3)<<32)
	return true
}

// hex8 decodes the eight hex digits (either case) in the little-endian word x, first digit in
// the lowest byte, to four bytes, first in the lowest byte of the result. Each test is on all
// eight bytes at once; no sum carries from one byte into the next.
func hex8(x uint64) (uint32, bool) {
	if x&swarHighs != 0 {
		return 0, false // not ASCII; below, every byte is at most 0x7f
	}
	// atLeast and atMost mark the bytes of the ASCII word y that are >= lo and <= hi.
	atLeast := func(y uint64, lo byte) uint64 { return (y + (0x80-uint64(lo))*swarOnes) & swarHighs }
	atMost := func(y uint64, hi byte) uint64 { return ^(y + (0x7f-uint64(hi))*swarOnes) & swarHighs }
	digit := atLeast(x, '0') & atMost(x, '9')
	lower := x | 0x20*swarOnes // 'A'-'F' (and nothing else outside 'a'-'f') becomes 'a'-'f'
	letter := atLeast(lower, 'a') & atMost(lower, 'f')
	if digit|letter != swarHighs {
		return 0, false
	}
	v := x&(0x0f*swarOnes) + (letter>>7)*9 // each byte's value: '0'-'9' 0-9, 'a'/'A' 1+9, …
	// Pair the digits, high nibble first, into the low byte of each 16-bit lane, then gather
	// the four lanes' bytes.
	v = (v&0x000f000f000f000f)<<4 | (v&0x0f000f000f000f00)>>8
	v = (v | v>>8) & 0x0000ffff0000ffff
	v = (v | v>>16) & 0x00000000ffffffff
	return uint32(v), true
}

// str reads a string value.
func (s *fastScanner) str() (string, bool) { return s.strIn("") }

// strIn reads a string value from input whose bytes are also the string src (or src ""): a
// value that decodes to itself, as values do as a rule, is returned as a substring of src,
// without a copy. (src is a parameter, not a field: escape analysis does not tell fields
// apart, and src leaks to the result where b must not.)
func (s *fastScanner) strIn(src string) (string, bool) {
	v, next, ok := parseStringIn(s.b, src, s.i)
	if ok {
		s.i = next
	}
	return v, ok
}

// arenaText is a string value read by appendStr: one of the known constants, else the span
// [off, end) of the buffer it was appended to.
type arenaText struct {
	known    string
	off, end int
}

// text returns t's value once the buffer t was read into has become the string arena.
func (t arenaText) text(arena string) string {
	if t.known != "" {
		return t.known
	}
	return arena[t.off:t.end]
}

// appendStr reads a string value, appending its decoded text to arena. A value written exactly
// as known (when not "") is returned as that constant instead and takes no room. A parse that keeps
// several strings from a reused input buffer, which must be copied, reads them all into one
// arena and then copies that once: one allocation for all of them.
func (s *fastScanner) appendStr(arena []byte, known string) ([]byte, arenaText, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return arena, arenaText{}, false
	}
	if known != "" && s.quoted(known) {
		return arena, arenaText{known: known}, true
	}
	off := len(arena)
	arena, next, ok := appendStringBody(arena, s.b, s.i+1)
	if !ok {
		return arena, arenaText{}, false
	}
	s.i = next
	return arena, arenaText{off: off, end: len(arena)}, true
}

// skip passes over any valid value.
func (s *fastScanner) skip() bool {
	next, ok := skipValue(s.b, s.i, 0)
	if ok {
		s.i = next
	}
	return ok
}

// lit consumes v if the input goes on with exactly v.
func (s *fastScanner) lit(v string) bool {
	if len(s.b)-s.i >= len(v) && string(s.b[s.i:s.i+len(v)]) == v {
		s.i += len(v)
		return true
	}
	return false
}

// quoted reads the string value v if it is written exactly as "v".
func (s *fastScanner) quoted(v string) bool {
	rest := s.b[s.i:]
	if len(rest) >= len(v)+2 && rest[0] == '"' && string(rest[1:len(v)+1]) == v && rest[len(v)+1] == '"' {
		s.i += len(v) + 2
		return true
	}
	return false
}

// null reads a null value.
func (s *fastScanner) null() bool {
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (s *fastScanner) end() bool { return skipSpace(s.b, s.i) == len(s.b) }

// foldsToAny reports whether an unknown key would still be matched to one of known by
// encoding/json, which compares field names case-insensitively (bytes.EqualFold).
func foldsToAny(key []byte, known ...string) bool {
	for _, k := range known {
		if bytes.EqualFold(key, []byte(k)) {
			return true
		}
	}
	return false
}

// skipValue validates the JSON value at b[i] and returns the index after it.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxFastDepth {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			if c == '{' {
				var ok bool
				if i, ok = skipString(b, i); !ok {
					return 0, false
				}
				i = skipSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipSpace(b, i+1)
			}
			var ok bool
			if i, ok = skipValue(b, i, depth+1); !ok {
				return 0, false
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case closer:
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || ('0' <= c && c <= '9'):
		return skipNumber(b, i)
	default:
		return 0, false
	}
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if bytes.HasPrefix(b[i:], []byte(lit)) {
		return i + len(lit), true
	}
	return 0, false
}

// skipString validates a string literal: escapes must be valid and control characters escaped.
// Like encoding/json's syntax check, it does not validate UTF-8.
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	return scanString(b, i+1)
}

// skipNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i, i > start
	}
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, false
	}
	if b[i] == '0' {
		i++
	} else {
		var ok bool
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	if i < len(b) && b[i] == '.' {
		var ok bool
		if i, ok = digits(i + 1); !ok {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		var ok bool
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	return i, true
}

// Each per-request parser below has two fast paths. The canonical one reads the object laid out
// as reqplane writes it and as Dynamo (serde) does: the same members in the same order, no
// spaces. That is a few literal comparisons between the values, and it is what every request
// is. The scan reads members in any order and spacing and skips unknown ones (2026 Dynamo adds
// some). Either gives up on anything else, for encoding/json to decide and word the error. What
// the canonical path accepts, the scan accepts with the same result (FuzzFastPathAgrees checks).

// parseRequestControlFast decodes the common request header without reflection. ok=false means
// "ask encoding/json". Every string it returns that is not a known constant is part of one
// allocation.
func parseRequestControlFast(b []byte) (RequestControl, bool) {
	if c, ok := parseRequestControlCanonical(b); ok {
		return c, true
	}
	return parseRequestControlScan(b)
}

// parseRequestControlCanonical reads a single_in/many_out request header laid out as
// AppendRequestControl and AppendMuxRequestControl write it.
func parseRequestControlCanonical(b []byte) (RequestControl, bool) {
	const types = `,"request_type":"single_in","response_type":"many_out","connection_info":{"transport":`
	var stack [512]byte // see parseRequestControlScan
	s := fastScanner{b: b}
	if !s.lit(`{"id":`) {
		return RequestControl{}, false
	}
	a, id, ok := s.appendStr(stack[:0], "")
	if !ok || !s.lit(types) {
		return RequestControl{}, false
	}
	transport := TransportTCPResponseMuxV1
	if !s.quoted(transport) {
		if transport = TransportTCPServer; !s.quoted(transport) {
			return RequestControl{}, false
		}
	}
	if !s.lit(`,"info":`) {
		return RequestControl{}, false
	}
	var info arenaText
	if a, info, ok = s.appendStr(a, ""); !ok || !s.lit(`}}`) || !s.end() {
		return RequestControl{}, false
	}
	arena := string(a)
	return RequestControl{
		ID:           id.text(arena),
		RequestType:  RequestTypeSingleIn,
		ResponseType: ResponseTypeManyOut,
		Transport:    transport,
		Info:         info.text(arena),
	}, true
}

// parseRequestControlScan reads a request header member by member.
func parseRequestControlScan(b []byte) (c RequestControl, ok bool) {
	// A header's strings (the id and the info, usually) fit the stack buffer; they are copied
	// to the heap once, together, at the end.
	var stack [512]byte
	a := stack[:0]
	var id, reqType, respType, codec, transport, info arenaText
	s := fastScanner{b: b}
	if !s.open() {
		return RequestControl{}, false
	}
	var seen uint8
	for first := true; ; first = false {
		key, end, ok := s.member(first)
		if !ok {
			return RequestControl{}, false
		}
		if end {
			break
		}
		switch string(key) {
		case "id":
			a, id, ok = s.appendStr(a, "")
			seen |= 1
		case "request_type":
			a, reqType, ok = s.appendStr(a, RequestTypeSingleIn)
			seen |= 2
		case "response_type":
			a, respType, ok = s.appendStr(a, ResponseTypeManyOut)
			seen |= 4
		case "payload_codec":
			a, codec, ok = s.appendStr(a, PayloadCodecJSON)
		case "connection_info":
			a, ok = parseConnectionInfoScan(&s, a, &transport, &info)
			seen |= 8
		default:
			ok = !foldsToAny(key, "id", "request_type", "response_type", "connection_info", "payload_codec") && s.skip()
		}
		if !ok {
			return RequestControl{}, false
		}
	}
	if seen != 15 || !s.end() {
		return RequestControl{}, false
	}
	arena := string(a)
	return RequestControl{
		ID:           id.text(arena),
		RequestType:  reqType.text(arena),
		ResponseType: respType.text(arena),
		Transport:    transport.text(arena),
		Info:         info.text(arena),
		PayloadCodec: codec.text(arena),
	}, true
}

// parseConnectionInfoScan reads connection_info's strings into arena (see appendStr).
func parseConnectionInfoScan(s *fastScanner, arena []byte, transport, info *arenaText) ([]byte, bool) {
	if !s.open() {
		return arena, false
	}
	var seen uint8
	for first := true; ; first = false {
		key, end, ok := s.member(first)
		if !ok {
			return arena, false
		}
		if end {
			return arena, seen == 3
		}
		switch string(key) {
		case "transport":
			// The one a requester offers; the other is known too, and needs no room either.
			if s.quoted(TransportTCPServer) {
				*transport = arenaText{known: TransportTCPServer}
			} else {
				arena, *transport, ok = s.appendStr(arena, TransportTCPResponseMuxV1)
			}
			seen |= 1
		case "info":
			arena, *info, ok = s.appendStr(arena, "")
			seen |= 2
		default:
			ok = !foldsToAny(key, "transport", "info") && s.skip()
		}
		if !ok {
			return arena, false
		}
	}
}

// parseCallHomeFast decodes the call-home document without reflection; ok=false means "ask
// encoding/json". src is "" or b's bytes as a string, which the values then share.
func parseCallHomeFast(b []byte, src string) (CallHomeInfo, bool) {
	if info, ok := parseCallHomeCanonical(b, src); ok {
		return info, true
	}
	return parseCallHomeScan(b, src)
}

// parseCallHomeCanonical reads the call-home document laid out as AppendCallHomeInfo writes it.
func parseCallHomeCanonical(b []byte, src string) (info CallHomeInfo, ok bool) {
	s := fastScanner{b: b}
	if !s.lit(`{"address":`) {
		return CallHomeInfo{}, false
	}
	if info.Address, ok = s.strIn(src); !ok || !s.lit(`,"subject":`) {
		return CallHomeInfo{}, false
	}
	if info.Subject, ok = s.strIn(src); !ok || !s.lit(`,"context":`) {
		return CallHomeInfo{}, false
	}
	if info.Context, ok = s.strIn(src); !ok || !s.lit(`,"stream_type":`) {
		return CallHomeInfo{}, false
	}
	if info.StreamType, ok = s.strIn(src); !ok || !s.lit(`}`) || !s.end() {
		return CallHomeInfo{}, false
	}
	return info, true
}

// parseCallHomeScan reads the call-home document member by member.
func parseCallHomeScan(b []byte, src string) (info CallHomeInfo, ok bool) {
	s := fastScanner{b: b}
	if !s.open() {
		return CallHomeInfo{}, false
	}
	var seen uint8
	for first := true; ; first = false {
		key, end, ok := s.member(first)
		if !ok {
			return CallHomeInfo{}, false
		}
		if end {
			break
		}
		var dst *string
		switch string(key) {
		case "address":
			dst, seen = &info.Address, seen|1
		case "subject":
			dst, seen = &info.Subject, seen|2
		case "context":
			dst, seen = &info.Context, seen|4
		case "stream_type":
			dst, seen = &info.StreamType, seen|8
		default:
			if foldsToAny(key, "address", "subject", "context", "stream_type") || !s.skip() {
				return CallHomeInfo{}, false
			}
			continue
		}
		if *dst, ok = s.strIn(src); !ok {
			return CallHomeInfo{}, false
		}
	}
	if seen != 15 || !s.end() {
		return CallHomeInfo{}, false
	}
	return info, true
}

// u32 reads a non-negative integer without sign, fraction, exponent or leading zeros that fits
// a uint32; anything else gives up (encoding/json decides).
func (s *fastScanner) u32() (uint32, bool) {
	start, v := s.i, uint64(0)
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		v = v*10 + uint64(s.b[s.i]-'0')
		if v > 1<<32-1 {
			return 0, false
		}
		s.i++
	}
	n := s.i - start
	if n == 0 || n > 1 && s.b[start] == '0' {
		return 0, false
	}
	if s.i < len(s.b) {
		if c := s.b[s.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return uint32(v), true
}

// parseMuxCallHomeFast decodes the mux call-home document without reflection; ok=false means
// "ask encoding/json" (which also words every error). src is "" or b's bytes as a string,
// which the values then share. A context written exactly as id is returned as id, without a
// copy.
func parseMuxCallHomeFast(b []byte, src, id string) (MuxCallHomeInfo, bool) {
	if info, ok := parseMuxCallHomeCanonical(b, src, id); ok {
		return info, true
	}
	return parseMuxCallHomeScan(b, src, id)
}

// parseMuxCallHomeCanonical reads the mux call-home document laid out as AppendMuxCallHomeInfo
// writes it.
func parseMuxCallHomeCanonical(b []byte, src, id string) (info MuxCallHomeInfo, ok bool) {
	s := fastScanner{b: b}
	if !s.lit(`{"address":`) {
		return MuxCallHomeInfo{}, false
	}
	if info.Address, ok = s.strIn(src); !ok || !s.lit(`,"frontend_server_id":`) || !s.uuid(&info.FrontendServerID) ||
		!s.lit(`,"stream_id":`) || !s.uuid(&info.StreamID) || !s.lit(`,"context":`) {
		return MuxCallHomeInfo{}, false
	}
	if s.quoted(id) {
		info.Context = id
	} else if info.Context, ok = s.strIn(src); !ok {
		return MuxCallHomeInfo{}, false
	}
	if !s.lit(`,"version":`) {
		return MuxCallHomeInfo{}, false
	}
	if info.Version, ok = s.u32(); !ok || !s.lit(`}`) || !s.end() {
		return MuxCallHomeInfo{}, false
	}
	return info, true
}

// parseMuxCallHomeScan reads the mux call-home document member by member.
func parseMuxCallHomeScan(b []byte, src, id string) (info MuxCallHomeInfo, ok bool) {
	s := fastScanner{b: b}
	if !s.open() {
		return MuxCallHomeInfo{}, false
	}
	var seen uint8
	for first := true; ; first = false {
		key, end, ok := s.member(first)
		if !ok {
			return MuxCallHomeInfo{}, false
		}
		if end {
			break
		}
		switch string(key) {
		case "address":
			info.Address, ok = s.strIn(src)
			seen |= 1
		case "frontend_server_id":
			ok = s.uuid(&info.FrontendServerID)
			seen |= 2
		case "stream_id":
			ok = s.uuid(&info.StreamID)
			seen |= 4
		case "context":
			if s.quoted(id) {
				info.Context, ok = id, true
			} else {
				info.Context, ok = s.strIn(src)
			}
			seen |= 8
		case "version":
			info.Version, ok = s.u32()
			seen |= 16
		default:
			ok = !foldsToAny(key, "address", "frontend_server_id", "stream_id", "context", "version") && s.skip()
		}
		if !ok {
			return MuxCallHomeInfo{}, false
		}
	}
	if seen != 31 || !s.end() {
		return MuxCallHomeInfo{}, false
	}
	return info, true
}

// parseHandshakeFast decodes the call-home handshake without reflection; ok=false means "ask
// encoding/json" (which also words every error).
func parseHandshakeFast(b []byte) (h Handshake, ok bool) {
	s := fastScanner{b: b}
	if !s.open() {
		return Handshake{}, false
	}
	var seen uint8
	for first := true; ; first = false {
		key, end, ok := s.member(first)
		if !ok {
			return Handshake{}, false
		}
		if end {
			break
		}
		switch string(key) {
		case "subject":
			h.Subject, ok = s.str()
			seen |= 1
		case "stream_type":
			// The value every peer sends needs no allocation.
			if h.StreamType, ok = StreamTypeResponse, s.quoted(StreamTypeResponse); !ok {
				h.StreamType, ok = s.str()
			}
			seen |= 2
		default:
			ok = !foldsToAny(key, "subject", "stream_type") && s.skip()
		}
		if !ok {
			return Handshake{}, false
		}
	}
	if seen != 3 || !s.end() {
		return Handshake{}, false
	}
	return h, true
}

// parsePrologueFast decodes a prologue without reflection: error a string or null, other members
// (2026's typed_error) skipped. ok=false means "ask encoding/json".
func parsePrologueFast(b []byte) (p Prologue, ok bool) {
	s := fastScanner{b: b}
	if !s.open() {
		return Prologue{}, false
	}
	// As in encoding/json, the last "error" member wins and null or absence means success.
	var text string
	var failed bool
	for first := true; ; first = false {
		key, end, ok := s.member(first)
		if !ok {
			return Prologue{}, false
		}
		if end {
			break
		}
		if string(key) == "error" {
			if failed = !s.null(); failed {
				text, ok = s.str()
			}
		} else {
			ok = !foldsToAny(key, "error") && s.skip()
		}
		if !ok {
			return Prologue{}, false
		}
	}
	if !s.end() {
		return Prologue{}, false
	}
	if failed {
		e := text // moved to the heap only when there is an error to report
		p.Error = &e
	}
	return p, true
}

// parseControlFast recognises the three control messages as peers write them, optionally
// surrounded by JSON whitespace; escaped spellings and errors are encoding/json's.
func parseControlFast(b []byte) (Control, bool) {
	if len(b) > 0 && (isSpace(b[0]) || isSpace(b[len(b)-1])) {
		i, j := skipSpace(b, 0), len(b)
		for j > i && isSpace(b[j-1]) {
			j--
		}
		b = b[i:j]
	}
	switch string(b) {
	case `"stop"`:
		return ControlStop, true
	case `"kill"`:
		return ControlKill, true
	case `"sentinel"`:
		return ControlSentinel, true
	}
	return 0, false
}
