package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestParseRequestControl(t *testing.T) {
	info := `{"address":"10.0.0.5:41235","subject":"s","context":"id1","stream_type":"response"}`
	infoJSON := string(AppendString(nil, info))
	tests := []struct {
		name    string
		in      string
		want    RequestControl
		wantErr string
	}{
		{
			name: "reqplane's own bytes",
			in:   string(AppendRequestControl(nil, "id1", CallHomeInfo{Address: "10.0.0.5:41235", Subject: "s"})),
			want: RequestControl{ID: "id1", RequestType: "single_in", ResponseType: "many_out", Transport: "tcp_server", Info: info},
		},
		{
			name: "2026 fields tolerated and surfaced",
			in: `{"id":"id1","request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server","info":` + infoJSON +
				`},"payload_codec":"json","metadata":{"a":[1,2,{"b":null}]},"frontend_send_ts_ns":18446744073709551615,"request_stream_connection_info":null}`,
			want: RequestControl{ID: "id1", RequestType: "single_in", ResponseType: "many_out", Transport: "tcp_server", Info: info, PayloadCodec: "json"},
		},
		{
			name: "pretty-printed, reordered",
			in: "{\n  \"connection_info\": {\n    \"info\": " + infoJSON + ",\n    \"transport\": \"tcp_server\"\n  },\n" +
				"  \"response_type\": \"many_out\",\n  \"request_type\": \"single_in\",\n  \"id\": \"id1\"\n}\n",
			want: RequestControl{ID: "id1", RequestType: "single_in", ResponseType: "many_out", Transport: "tcp_server", Info: info},
		},
		{name: "not JSON", in: `nope`, wantErr: "Two Part Codec Error: Invalid message: control header: invalid character 'o' in literal null (expecting 'u')"},
		{name: "empty", in: ``, wantErr: "Two Part Codec Error: Invalid message: control header: unexpected end of JSON input"},
		{name: "missing id", in: `{"request_type":"single_in"}`, wantErr: "Two Part Codec Error: Invalid message: control header: missing field `id`"},
		{name: "missing connection_info", in: `{"id":"a","request_type":"single_in","response_type":"many_out"}`, wantErr: "Two Part Codec Error: Invalid message: control header: missing field `connection_info`"},
		{name: "missing info", in: `{"id":"a","request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server"}}`, wantErr: "Two Part Codec Error: Invalid message: control header: missing field `info`"},
		{name: "wrong type", in: `{"id":5}`, wantErr: "Two Part Codec Error: Invalid message: control header: json: cannot unmarshal number into Go struct field wireRequestControl.id of type string"},
		{name: "trailing garbage", in: `{"id":"a"} x`, wantErr: "Two Part Codec Error: Invalid message: control header: invalid character 'x' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequestControl([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				var ce *ControlError
				if !errors.Is(err, ErrInvalidMessage) || !errors.Is(err, ErrMalformed) || !errors.As(err, &ce) ||
					"Two Part Codec Error: Invalid message: control header: "+ce.Detail != tt.wantErr {
					t.Errorf("error chain wrong: %#v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	base := func() RequestControl {
		rc, err := ParseRequestControl(AppendRequestControl(nil, "id1", CallHomeInfo{Address: "127.0.0.1:4000", Subject: "s"}))
		if err != nil {
			t.Fatal(err)
		}
		return rc
	}
	withInfo := func(info string) RequestControl { rc := base(); rc.Info = info; return rc }
	const prefix = "Two Part Codec Error: Invalid message: control header: "
	tests := []struct {
		name     string
		rc       RequestControl
		kind     error // nil = valid
		text     string
		wantInfo bool
	}{
		{name: "valid", rc: base(), wantInfo: true},
		{name: "json payload codec", rc: func() RequestControl { r := base(); r.PayloadCodec = "json"; return r }(), wantInfo: true},
		{name: "old Dynamo unbracketed IPv6", rc: withInfo(`{"address":"fe80::1:41235","subject":"s","context":"id1","stream_type":"response"}`), wantInfo: true},
		{
			name: "transport", rc: func() RequestControl { r := base(); r.Transport = "quic_response_v1"; return r }(), kind: ErrInvalidControl,
			text: "Invalid transport; TcpClient requires the transport to be `tcp_server`; however quic_response_v1 was passed",
		},
		{name: "info not JSON", rc: withInfo(`{`), kind: ErrInvalidControl, text: "Failed parse ConnectionInfo: unexpected end of JSON input"},
		{name: "info missing field", rc: withInfo(`{"address":"127.0.0.1:1","subject":"s","context":"id1"}`), kind: ErrInvalidControl, text: "Failed parse ConnectionInfo: missing field `stream_type`"},
		{
			name: "stream type", rc: withInfo(`{"address":"127.0.0.1:1","subject":"s","context":"id1","stream_type":"request"}`), kind: ErrInvalidControl,
			text: "Invalid stream type; TcpClient requires the stream type to be `response`; however \"request\" was passed",
		},
		{
			name: "context", rc: withInfo(`{"address":"127.0.0.1:1","subject":"s","context":"other","stream_type":"response"}`), kind: ErrInvalidControl,
			text: "Invalid context; TcpClient requires the context to be \"id1\"; however \"other\" was passed",
		},
		{
			name: "empty id", rc: func() RequestControl {
				r := withInfo(`{"address":"127.0.0.1:1","subject":"s","context":"","stream_type":"response"}`)
				r.ID = ""
				return r
			}(), kind: ErrInvalidControl, text: "Invalid id; the request id must not be empty",
		},
		{name: "empty address", rc: withInfo(`{"address":"","subject":"s","context":"id1","stream_type":"response"}`), kind: ErrInvalidControl, text: "Invalid address; invalid address \"\": missing port"},
		{name: "address without port", rc: withInfo(`{"address":"10.0.0.5","subject":"s","context":"id1","stream_type":"response"}`), kind: ErrInvalidControl, text: "Invalid address; invalid address \"10.0.0.5\": missing port"},
		{
			name: "many_in", rc: func() RequestControl { r := base(); r.RequestType = "many_in"; return r }(), kind: ErrUnsupported, wantInfo: true,
			text: "Unsupported request type; reqplane serves `single_in` requests; however \"many_in\" was passed",
		},
		{
			name: "single_out", rc: func() RequestControl { r := base(); r.ResponseType = "single_out"; return r }(), kind: ErrUnsupported, wantInfo: true,
			text: "Unsupported response type; reqplane serves `many_out` responses; however \"single_out\" was passed",
		},
		{
			name: "msgpack", rc: func() RequestControl { r := base(); r.PayloadCodec = "msgpack"; return r }(), kind: ErrUnsupported, wantInfo: true,
			text: "Unsupported payload codec; reqplane serves `json` payloads; however \"msgpack\" was passed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := tt.rc.Validate()
			if tt.wantInfo != (info != CallHomeInfo{}) {
				t.Errorf("info = %+v", info)
			}
			if tt.kind == nil {
				if err != nil {
					t.Fatal(err)
				}
				if info.Context != tt.rc.ID || info.StreamType != StreamTypeResponse {
					t.Errorf("info = %+v", info)
				}
				return
			}
			if err == nil || err.Error() != prefix+tt.text {
				t.Fatalf("err = %v\nwant %s", err, prefix+tt.text)
			}
			var ce *ControlError
			if !errors.Is(err, tt.kind) || !errors.Is(err, ErrInvalidMessage) || !errors.As(err, &ce) || ce.Detail != tt.text {
				t.Errorf("error chain wrong: %#v", err)
			}
		})
	}
}

func TestHandshake(t *testing.T) {
	for _, h := range []Handshake{{Subject: "s", StreamType: "response"}, {Subject: `q"<>&\u`, StreamType: "request"}} {
		got, err := ParseHandshake(AppendHandshake(nil, h))
		if err != nil || got != h {
			t.Errorf("round trip %+v = %+v, %v", h, got, err)
		}
	}
	if got := string(AppendHandshake(nil, Handshake{Subject: "s"})); got != `{"subject":"s","stream_type":"response"}` {
		t.Errorf("default stream type: %s", got)
	}
	tests := []struct {
		in   string
		want Handshake
		err  string
	}{
		{in: "{ \"stream_type\" : \"response\",\n \"subject\": \"x\", \"extra\": [1] }", want: Handshake{Subject: "x", StreamType: "response"}},
		{in: `{"stream_type":"response"}`, err: "missing field `subject`"},
		{in: `{"subject":"x"}`, err: "missing field `stream_type`"},
		{in: `"stop"`, err: "json: cannot unmarshal string into Go value of type codec.wireHandshake"},
	}
	for _, tt := range tests {
		got, err := ParseHandshake([]byte(tt.in))
		if tt.err != "" {
			if err == nil || err.Error() != tt.err || !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseHandshake(%s) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseHandshake(%s) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestPrologue(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *string
		err  bool
	}{
		{name: "ok", in: `{"error":null}`},
		{name: "absent error", in: `{}`},
		{name: "pretty", in: "{\n  \"error\": null\n}"},
		{name: "error", in: `{"error":"Generate Error: boom"}`, want: ptr("Generate Error: boom")},
		{name: "2026 typed_error ignored", in: `{"error":"Generate Error: x","typed_error":{"code":3,"message":"x","details":[1.5e300]}}`, want: ptr("Generate Error: x")},
		{name: "typed_error with null error", in: `{"error":null,"typed_error":null}`},
		{name: "wrong type", in: `{"error":5}`, err: true},
		{name: "not an object", in: `[]`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePrologue([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(p.Error, tt.want) {
				t.Fatalf("got %v, %v", p.Error, err)
			}
		})
	}
	// Round trip, including characters serde does not escape.
	for _, s := range []string{"", "Generate Error: <b>&\"x\"\n", "世界\u2028"} {
		p, err := ParsePrologue(AppendPrologue(nil, &s))
		if err != nil || p.Error == nil || *p.Error != s {
			t.Errorf("round trip %q = %v, %v", s, p.Error, err)
		}
	}
}

func TestControl(t *testing.T) {
	for _, c := range []Control{ControlStop, ControlKill, ControlSentinel} {
		b := c.Bytes()
		if got, err := ParseControl(b); err != nil || got != c {
			t.Errorf("ParseControl(%s) = %v, %v", b, got, err)
		}
		if string(AppendControl([]byte("x"), c)) != "x"+string(b) || string(b) != `"`+c.String()+`"` {
			t.Errorf("encoding of %v: %s", c, b)
		}
	}
	if n := []int{len(ControlStop.Bytes()), len(ControlKill.Bytes()), len(ControlSentinel.Bytes())}; n[0] != 6 || n[1] != 6 || n[2] != 10 {
		t.Errorf("sizes %v, want 6 6 10", n)
	}
	tests := []struct {
		in   string
		want Control
		err  string
	}{
		{in: " \"stop\"\n", want: ControlStop},
		{in: `"\u006bill"`, want: ControlKill},
		{in: `"heartbeat"`, err: "unknown variant `heartbeat`, expected one of `stop`, `kill`, `sentinel`"},
		{in: `"Stop"`, err: "unknown variant `Stop`, expected one of `stop`, `kill`, `sentinel`"},
		{in: `{"stop":null}`, err: "json: cannot unmarshal object into Go value of type string"},
		{in: ``, err: "unexpected end of JSON input"},
	}
	for _, tt := range tests {
		got, err := ParseControl([]byte(tt.in))
		if tt.err != "" {
			if err == nil || err.Error() != tt.err || !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseControl(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseControl(%q) = %v, %v", tt.in, got, err)
		}
	}
	if s := Control(0).String(); s != "Control(0)" {
		t.Errorf("Control(0) = %q", s)
	}
}

func TestStreamItem(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want StreamItem
		err  bool
	}{
		{name: "item", in: `{"data":{"data":{"text":"hello"}},"complete_final":false}`, want: StreamItem{Data: []byte(`{"data":{"text":"hello"}}`)}},
		{name: "scalar data", in: `{"data":1,"complete_final":false}`, want: StreamItem{Data: []byte(`1`)}},
		{name: "end", in: `{"complete_final":true}`, want: StreamItem{CompleteFinal: true}},
		{name: "null data is absent", in: `{"data":null,"complete_final":false}`, want: StreamItem{}},
		{name: "null data, spaced", in: `{"data": null ,"complete_final":false}`, want: StreamItem{}},
		{name: "absent complete_final", in: `{"data":"x"}`, want: StreamItem{Data: []byte(`"x"`)}},
		{name: "final with data", in: `{"data":[1],"complete_final":true}`, want: StreamItem{Data: []byte(`[1]`), CompleteFinal: true}},
		{name: "unknown field between", in: `{"data":1,"x":{"y":2},"complete_final":false}`, want: StreamItem{Data: []byte(`1`)}},
		{name: "pretty", in: "{\n \"complete_final\": true,\n \"data\": {\"a\": 1}\n}", want: StreamItem{Data: []byte(`{"a": 1}`), CompleteFinal: true}},
		{name: "fast path rejects invalid middle", in: `{"data":{,"complete_final":false}`, err: true},
		{name: "not JSON", in: `x`, err: true},
		{name: "wrong type", in: `{"complete_final":"yes"}`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStreamItem([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got.Data, tt.want.Data) || (got.Data == nil) != (tt.want.Data == nil) || got.CompleteFinal != tt.want.CompleteFinal {
				t.Fatalf("got {%s %v}, %v; want {%s %v}", got.Data, got.CompleteFinal, err, tt.want.Data, tt.want.CompleteFinal)
			}
		})
	}
	if got := string(AppendStreamItem(nil, nil)); got != `{"complete_final":false}` {
		t.Errorf("empty item = %s", got)
	}
	// Round trip through the writer.
	for _, d := range []string{`{}`, `"<&>"`, `[1,2,{"a":null}]`, `12345678901234567890`} {
		it, err := ParseStreamItem(AppendStreamItem(nil, []byte(d)))
		if err != nil || string(it.Data) != d || it.CompleteFinal {
			t.Errorf("round trip %s = %s, %v", d, it.Data, err)
		}
	}
}

func TestAnnotated(t *testing.T) {
	tests := []struct {
		name string
		a    Annotated
		json string
	}{
		{name: "empty", a: Annotated{}, json: `{}`},
		{name: "data", a: Annotated{Data: json.RawMessage(`{"text":"hello","index":0}`)}, json: `{"data":{"text":"hello","index":0}}`},
		{name: "in-band error", a: Annotated{Event: ptr("error"), Comment: []string{"msg <&>"}}, json: `{"event":"error","comment":["msg <&>"]}`},
		{
			name: "all fields", a: Annotated{Data: json.RawMessage(`[1]`), ID: ptr("i\"d"), Event: ptr("ev"), Comment: []string{"a", "b\n"}, ErrorCode: ptr[uint16](65535)},
			json: `{"data":[1],"id":"i\"d","event":"ev","comment":["a","b\n"],"error_code":65535}`,
		},
		{name: "empty comment list", a: Annotated{Comment: []string{}}, json: `{"comment":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendAnnotated(nil, tt.a)
			if string(got) != tt.json {
				t.Fatalf("AppendAnnotated = %s, want %s", got, tt.json)
			}
			back, err := ParseAnnotated(got)
			if err != nil || !reflect.DeepEqual(back, tt.a) {
				t.Fatalf("ParseAnnotated = %+v, %v", back, err)
			}
		})
	}
	parse := []struct {
		in   string
		want Annotated
		err  bool
	}{
		{in: `{"data":null,"id":null,"comment":null}`, want: Annotated{}},
		{in: "{\n  \"data\": {\"a\": 1},\n  \"error\": {\"message\": \"x\"},\n  \"unknown\": 1\n}", want: Annotated{Data: json.RawMessage(`{"a": 1}`)}},
		{in: `{"error_code":65536}`, err: true},
		{in: `{"comment":"x"}`, err: true},
		{in: `[]`, err: true},
	}
	for _, tt := range parse {
		got, err := ParseAnnotated([]byte(tt.in))
		if tt.err {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseAnnotated(%s) err = %v", tt.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAnnotated(%s) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestControlErrorUnwrap(t *testing.T) {
	_, err := ParseHandshake([]byte(`{"subject":1,"stream_type":"response"}`))
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || !errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupported) {
		t.Errorf("chain: %#v", err)
	}
	var ce *ControlError
	if !errors.As(err, &ce) || ce.Object != "CallHomeHandshake" || !strings.Contains(ce.Error(), "cannot unmarshal") {
		t.Errorf("ControlError: %#v", ce)
	}
}
