package codec

import (
	"bytes"
	"encoding/json"
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
