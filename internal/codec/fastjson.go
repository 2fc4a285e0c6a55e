package codec

import "bytes"

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
	j := start
	for ; j < len(s.b) && s.b[j] != '"'; j++ {
		if c := s.b[j]; c == '\\' || c < 0x20 || c >= 0x80 {
			return nil, false, false
		}
	}
	if j >= len(s.b) {
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

// strKnown is str for a value that is usually one of known: that one is returned as is,
// without allocating a copy.
func (s *fastScanner) strKnown(known ...string) (string, bool) {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		rest := s.b[s.i+1:]
		for _, k := range known {
			if len(rest) > len(k) && rest[len(k)] == '"' && string(rest[:len(k)]) == k {
				s.i += len(k) + 2
				return k, true
			}
		}
	}
	return s.str()
}

// plainStr reads a string value without escapes and returns its bytes, which alias the input;
// ok is false for anything else, escapes included.
func (s *fastScanner) plainStr() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// str reads a string value.
func (s *fastScanner) str() (string, bool) {
	v, next, ok := parseString(s.b, s.i)
	if ok {
		s.i = next
	}
	return v, ok
}

// skip passes over any valid value.
func (s *fastScanner) skip() bool {
	next, ok := skipValue(s.b, s.i, 0)
	if ok {
		s.i = next
	}
	return ok
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

// parseRequestControlFast decodes the common request header without reflection. ok=false means
// "ask encoding/json".
func parseRequestControlFast(b []byte) (c RequestControl, ok bool) {
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
		var dst *string
		switch string(key) {
		case "id":
			dst, seen = &c.ID, seen|1
		case "request_type":
			dst, seen = &c.RequestType, seen|2
		case "response_type":
			dst, seen = &c.ResponseType, seen|4
		case "payload_codec":
			dst = &c.PayloadCodec
		case "connection_info":
			if !parseConnectionInfoFast(&s, &c) {
				return RequestControl{}, false
			}
			seen |= 8
			continue
		default:
			if foldsToAny(key, "id", "request_type", "response_type", "connection_info", "payload_codec") || !s.skip() {
				return RequestControl{}, false
			}
			continue
		}
		if *dst, ok = s.strKnown(RequestTypeSingleIn, ResponseTypeManyOut); !ok {
			return RequestControl{}, false
		}
	}
	if seen != 15 || !s.end() {
		return RequestControl{}, false
	}
	return c, true
}

func parseConnectionInfoFast(s *fastScanner, c *RequestControl) bool {
	if !s.open() {
		return false
	}
	var seen uint8
	for first := true; ; first = false {
		key, end, ok := s.member(first)
		if !ok {
			return false
		}
		if end {
			return seen == 3
		}
		switch string(key) {
		case "transport":
			c.Transport, ok = s.strKnown(TransportTCPResponseMuxV1, TransportTCPServer)
			seen |= 1
		case "info":
			c.Info, ok = s.str()
			seen |= 2
		default:
			ok = !foldsToAny(key, "transport", "info") && s.skip()
		}
		if !ok {
			return false
		}
	}
}

// parseCallHomeFast decodes the call-home document without reflection; ok=false means "ask
// encoding/json".
func parseCallHomeFast(b []byte) (info CallHomeInfo, ok bool) {
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
		if *dst, ok = s.str(); !ok {
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
// "ask encoding/json" (which also words every error). A context written exactly as id is
// returned as id, without a copy.
func parseMuxCallHomeFast(b []byte, id string) (info MuxCallHomeInfo, ok bool) {
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
			info.Address, ok = s.str()
			seen |= 1
		case "frontend_server_id", "stream_id":
			var v []byte
			if v, ok = s.plainStr(); ok {
				dst := &info.FrontendServerID
				if string(key) == "stream_id" {
					dst = &info.StreamID
					seen |= 4
				} else {
					seen |= 2
				}
				*dst, ok = parseUUID(v)
			}
		case "context":
			if s.quoted(id) {
				info.Context, ok = id, true
			} else {
				info.Context, ok = s.str()
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
