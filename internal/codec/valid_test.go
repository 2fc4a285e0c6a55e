package codec

import (
	"encoding/json"
	"strings"
	"testing"
)

// nested returns v inside depth containers: arrays, or objects {"k":…} when obj is set.
func nested(depth int, obj bool, v string) string {
	open, closer := "[", "]"
	if obj {
		open, closer = `{"k":`, "}"
	}
	return strings.Repeat(open, depth) + v + strings.Repeat(closer, depth)
}

// alternating returns v inside depth containers, alternating arrays and objects.
func alternating(depth int, v string) string {
	var head, tail strings.Builder
	for d := range depth {
		if d%2 == 0 {
			head.WriteString(`[`)
		} else {
			head.WriteString(`{"k":`)
		}
	}
	for d := depth - 1; d >= 0; d-- {
		if d%2 == 0 {
			tail.WriteString(`]`)
		} else {
			tail.WriteString(`}`)
		}
	}
	return head.String() + v + tail.String()
}

func TestValidJSON(t *testing.T) {
	pad := strings.Repeat("x", 4<<10)
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"empty", ``, false},
		{"whitespace only", " \t\r\n", false},
		{"true", `true`, true},
		{"false", `false`, true},
		{"null", `null`, true},
		{"literal padded", " \n\tnull\r\n ", true},
		{"literal truncated", `tru`, false},
		{"literal misspelt", `nul1`, false},
		{"literal trailing letter", `falsey`, false},
		{"literal capitalised", `True`, false},
		{"zero", `0`, true},
		{"minus zero", `-0`, true},
		{"exponent", `1e5`, true},
		{"exponent signed", `1E+2`, true},
		{"exponent negative", `-12.5e-3`, true},
		{"fraction", `0.5`, true},
		{"dot without digits", `1.`, false},
		{"dot first", `.5`, false},
		{"leading zero", `01`, false},
		{"minus alone", `-`, false},
		{"minus minus", `--1`, false},
		{"plus sign", `+1`, false},
		{"exponent without digits", `1e`, false},
		{"exponent sign only", `1e+`, false},
		{"hex", `0x10`, false},
		{"number then number", `1 2`, false},
		{"big number", `123456789012345678901234567890e999`, true},
		{"string", `"hello"`, true},
		{"string empty", `""`, true},
		{"string escapes", `"\" \\ \/ \b \f \n \r \t"`, true},
		{"string unicode escape", `"\u00e9\u00E9"`, true},
		{"string lone surrogate", `"\ud800"`, true},
		{"string bad escape", `"\x41"`, false},
		{"string short unicode escape", `"\u00e"`, false},
		{"string bad hex", `"\u00g9"`, false},
		{"string escape at end", `"\`, false},
		{"string unterminated", `"abc`, false},
		{"string unterminated long", `"` + pad, false},
		{"string raw newline", "\"a\nb\"", false},
		{"string raw NUL", "\"a\x00b\"", false},
		{"string raw 0x1f", "\"\x1f\"", false},
		{"string DEL", "\"\x7f\"", true},
		{"string invalid UTF-8", "\"\xff\xfe\xc3\"", true},
		{"string UTF-8", `"é世🎉"`, true},
		{"string quote after word", `"abcdefgh"`, true},
		{"string long with escape late", `"` + pad + `\n` + pad + `"`, true},
		{"string long with control late", `"` + pad + "\x01" + `"`, false},
		{"object", `{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, true},
		{"object empty", `{}`, true},
		{"object spaced", " { \"a\" : 1 , \"b\" : { } } ", true},
		{"object trailing comma", `{"a":1,}`, false},
		{"object missing colon", `{"a" 1}`, false},
		{"object missing value", `{"a":}`, false},
		{"object key not string", `{a:1}`, false},
		{"object number key", `{1:1}`, false},
		{"object closed by bracket", `{"a":1]`, false},
		{"object unclosed", `{"a":1`, false},
		{"object key with escape", `{"\u0061":1}`, true},
		{"array", `[1,"a",[],{}]`, true},
		{"array empty", `[]`, true},
		{"array spaced", "[ 1 , 2 ]", true},
		{"array trailing comma", `[1,]`, false},
		{"array leading comma", `[,1]`, false},
		{"array closed by brace", `[1}`, false},
		{"array unclosed", `[1`, false},
		{"array of literal run-on", `[truefalse]`, false},
		{"trailing garbage", `{} x`, false},
		{"two values", `{}{}`, false},
		{"trailing comma at top", `1,`, false},
		{"stream item", `{"data":{"index":7,"pad":"` + pad + `"}}`, true},
		{"nested 300 arrays", nested(300, false, `1`), true},
		{"nested 300 objects", nested(300, true, `1`), true},
		{"nested 10000 arrays", nested(10000, false, ``), true},
		{"nested 10000 alternating", alternating(10000, `null`), true},
		{"nested 10001 arrays", nested(10001, false, ``), false},
		{"nested 10001 objects", nested(10001, true, `1`), false},
		{"nested 10001 unclosed", strings.Repeat("[", 10001), false},
		{"nested 400 mismatched deep", strings.Repeat("[", 400) + "}" + strings.Repeat("]", 399), false},
		{"nested 400 alternating, kinds kept across growth", alternating(400, `[]`), true},
		{"nested 400 alternating, swapped closers", strings.TrimSuffix(alternating(400, `1`), "}]") + "]}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := json.Valid([]byte(tt.in)); got != tt.want {
				t.Fatalf("json.Valid = %v: the table disagrees with encoding/json", got)
			}
			if got := ValidJSON([]byte(tt.in)); got != tt.want {
				t.Errorf("ValidJSON = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidJSONAllocs(t *testing.T) {
	inputs := map[string][]byte{
		"item":      []byte(`{"data":{"index":7,"pad":"` + strings.Repeat("x", 64) + `"}}`),
		"256 deep":  []byte(alternating(256, `1`)),
		"top-level": []byte(`"x"`),
	}
	for name, in := range inputs {
		if !ValidJSON(in) {
			t.Fatalf("%s: not valid", name)
		}
		if n := testing.AllocsPerRun(100, func() { ValidJSON(in) }); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}
