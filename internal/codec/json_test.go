package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendStringLikeSerde(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello", `"hello"`},
		{"empty", "", `""`},
		{"html chars are not escaped", `<a href="x">&amp;</a>`, `"<a href=\"x\">&amp;</a>"`},
		{"quote and backslash", `say "hi" \ bye`, `"say \"hi\" \\ bye"`},
		{"slash is not escaped", "a/b", `"a/b"`},
		{"short escapes", "\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"other controls lowercase hex", "\x00\x01\x0b\x1f", `"\u0000\u0001\u000b\u001f"`},
		{"DEL is not escaped", "\x7f", "\"\x7f\""},
		{"non-ASCII verbatim", "héllo 世界 🎉", `"héllo 世界 🎉"`},
		{"U+2028 and U+2029 verbatim", "a\u2028b\u2029c", "\"a\u2028b\u2029c\""},
		{"invalid UTF-8 becomes U+FFFD", "a\xffb\xc3", "\"a\uFFFDb\uFFFD\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendString([]byte("x"), tt.in)
			if string(got) != "x"+tt.want {
				t.Errorf("AppendString(%q) = %s, want %s", tt.in, got[1:], tt.want)
			}
			var back string
			if err := json.Unmarshal(got[1:], &back); err != nil {
				t.Fatalf("not valid JSON: %v", err)
			}
			if utf8.ValidString(tt.in) && back != tt.in {
				t.Errorf("round trip = %q", back)
			}
		})
	}
}

// goEncode is encoding/json's output with HTML escaping off and the trailing newline removed.
func goEncode(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// For valid UTF-8 without U+2028/2029, serde_json and encoding/json (HTML escaping off) agree
// byte for byte; this cross-checks the hand-written escaper on random strings.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("abc <>&\"\\/\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x7f é世🎉\u00a0\ufffd")
	for range 2000 {
		var sb strings.Builder
		for range rng.IntN(20) {
			sb.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		s := sb.String()
		if got, want := AppendString(nil, s), goEncode(t, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json = %s", s, got, want)
		}
	}
}

// The call-home info inside the request header is the info document encoded as a JSON string.
func TestRequestControlDoubleEncoding(t *testing.T) {
	infos := []CallHomeInfo{
		v6Info,
		{Address: "[fe80::1]:4000", Subject: `quote " back \ slash`, Context: "ctl\n\t\x01", StreamType: "response"},
		{Address: "<host>&", Subject: "üñí 世界 \u2028", Context: "c", StreamType: ""},
		{Address: "bad\xffutf8", Subject: "", Context: "", StreamType: "request"},
	}
	for _, info := range infos {
		id := "id-" + info.Context
		got := AppendRequestControl(nil, id, info)
		if info.Context == "" {
			info.Context = id
		}
		inner := AppendCallHomeInfo(nil, info)
		want := `{"id":` + string(AppendString(nil, id)) +
			`,"request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server","info":` +
			string(AppendString(nil, string(inner))) + `}}`
		if string(got) != want {
			t.Errorf("AppendRequestControl(%+v) =\n%s\nwant\n%s", info, got, want)
		}
		rc, err := ParseRequestControl(got)
		if err != nil {
			t.Fatal(err)
		}
		if rc.Info != string(inner) {
			t.Errorf("Info = %s, want %s", rc.Info, inner)
		}
	}
}

// TestParseString pins the string decoder on the cases its fast and slow paths split on: each
// escape, \u escapes and surrogates, invalid UTF-8 next to escapes, escapes at every offset in
// a word, and literals longer than its stack buffers. Every accepted case must also be what
// encoding/json decodes, and every rejected one rejected by it.
func TestParseString(t *testing.T) {
	long := strings.Repeat("0123456789", 40) // 400 bytes: past the 256-byte stack buffer
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"empty", `""`, "", true},
		{"plain", `"hello"`, "hello", true},
		{"every short escape", `"\"\\\/\b\f\n\r\t"`, "\"\\/\b\f\n\r\t", true},
		{"escaped info", `"{\"address\":\"10.0.0.5:41235\",\"context\":\"c\"}"`, `{"address":"10.0.0.5:41235","context":"c"}`, true},
		{"u escapes", `"\u0041\u00e9\u20AC\u0000"`, "Aé€\x00", true},
		{"surrogate pair", `"\ud83d\ude00"`, "😀", true},
		{"surrogate pair upper case", `"\uD83D\uDE00x"`, "😀x", true},
		{"lone high surrogate", `"\ud800"`, "\uFFFD", true},
		{"lone low surrogate", `"\udc00z"`, "\uFFFDz", true},
		{"high then BMP escape", `"\ud800\u0041"`, "\uFFFDA", true},
		{"high then high", `"\ud800\ud800\udc00"`, "\uFFFD𐀀", true},
		{"high then escaped backslash", `"\ud800\\u0041"`, "\uFFFD\\u0041", true},
		{"high then short escape", `"\ud800\n"`, "\uFFFD\n", true},
		{"non-ASCII verbatim", `"héllo 世界 🎉"`, "héllo 世界 🎉", true},
		{"non-ASCII and escapes", `"é\"世\\🎉\/"`, "é\"世\\🎉/", true},
		{"invalid UTF-8 alone", "\"a\xffb\"", "a\uFFFDb", true},
		{"invalid UTF-8 after escape", "\"\\\"\xff\"", "\"\uFFFD", true},
		{"truncated sequence before escape", "\"\xc3\\n\"", "\uFFFD\n", true},
		{"truncated sequence before quote", "\"\xe4\xb8\"", "\uFFFD\uFFFD", true},
		{"encoded U+FFFD kept", "\"\xef\xbf\xbd\\t\"", "\uFFFD\t", true},
		{"DEL verbatim", "\"\x7f\\\"\"", "\x7f\"", true},
		{"backslash run at end", `"x\\\\\\"`, `x\\\`, true},
		{"only escaped backslash", `"\\"`, `\`, true},
		{"long escaped", `"` + long + `\"` + long + `"`, long + `"` + long, true},
		{"long escaped, invalid UTF-8", "\"" + long + "\\n\xff" + long + "\"", long + "\n\uFFFD" + long, true},
		{"raw control character", "\"a\x01\"", "", false},
		{"raw newline after escape", "\"\\\"\n\"", "", false},
		{"unknown escape", `"\x41"`, "", false},
		{"short u escape", `"\u12"`, "", false},
		{"bad hex", `"\u12G4"`, "", false},
		{"bad hex after high surrogate", `"\ud800\u12G4"`, "", false},
		{"unterminated", `"abc`, "", false},
		{"unterminated after escape", `"abc\"`, "", false},
		{"ends in backslash", `"abc\`, "", false},
		{"long unterminated", `"` + long + `\"` + long, "", false},
		{"not a string", `abc`, "", false},
	}
	// An escape at every offset in an 8-byte word, and across the word boundary.
	for p := range 17 {
		pad := strings.Repeat("a", p)
		tests = append(tests, struct {
			name, in, want string
			ok             bool
		}{fmt.Sprintf("escapes at offset %d", p), `"` + pad + `\"` + pad + `\\\/x"`, pad + `"` + pad + `\/x`, true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			if tt.ok {
				in = append(in, `,"next"`...) // what follows a literal is not read
			}
			got, next, ok := parseString(in, 0)
			if ok != tt.ok || got != tt.want || ok && next != len(tt.in) {
				t.Fatalf("parseString(%q) = %q, %d, %v; want %q, %d, %v", tt.in, got, next, ok, tt.want, len(tt.in), tt.ok)
			}
			var j string
			if jerr := json.Unmarshal([]byte(tt.in), &j); (jerr == nil) != tt.ok || tt.ok && j != got {
				t.Fatalf("encoding/json: %q, %v", j, jerr)
			}
			// Reading from a string: the same value, a substring of it when nothing is decoded.
			sgot, snext, sok := parseStringIn(in, string(in), 0)
			if sgot != got || snext != next || sok != ok {
				t.Fatalf("parseStringIn = %q, %d, %v", sgot, snext, sok)
			}
			// Appended to a buffer with spare room, or none.
			for _, c := range []int{0, 5, 600} {
				if in[0] != '"' {
					break
				}
				dst := append(make([]byte, 0, 3+c), "pre"...)
				out, end, aok := appendStringBody(dst, in, 1)
				if aok != ok || ok && (string(out) != "pre"+got || end != next) {
					t.Fatalf("appendStringBody (room %d) = %q, %d, %v", c, out, end, aok)
				}
			}
		})
	}
}

// TestDecodeUUID checks the word-at-a-time UUID decoder against parseUUID with every byte value
// at every position of a valid UUID.
func TestDecodeUUID(t *testing.T) {
	for _, base := range []string{"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d", "ABCDEFab-cdef-0123-4567-89ABCDEFabcd"} {
		b := []byte(base)
		for i := range b {
			orig := b[i]
			for c := range 256 {
				b[i] = byte(c)
				var got UUID
				ok := decodeUUID(&got, b)
				want, wok := parseUUID(b)
				if ok != wok || ok && got != want {
					t.Fatalf("decodeUUID(%q) = %v %v, parseUUID %v %v", b, got, ok, want, wok)
				}
			}
			b[i] = orig
		}
	}
	var u UUID
	if decodeUUID(&u, []byte("3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0")) {
		t.Fatal("accepted 35 characters")
	}
}
