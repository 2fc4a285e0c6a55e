package discovery

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// Spec vector V11.
const (
	v11ID   = uint64(0x694d98147d54be25)
	v11Key  = "v1/instances/dynamo/backend/generate/694d98147d54be25"
	v11NATS = `{"type":"Endpoint","component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":7587888160958627365,"transport":{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"}}`
	v11All  = `{"type":"Endpoint","component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":7587888160958627365,"transport":{"http":"http://10.0.0.5:8081/v1/dynamo/generate"},"transports":[{"http":"http://10.0.0.5:8081/v1/dynamo/generate"},{"tcp":"10.0.0.5:45123/694d98147d54be25/generate"},{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"}]}`
	v11Old  = `{
  "component": "backend",
  "endpoint": "generate",
  "namespace": "dynamo",
  "instance_id": 7587888160958627365,
  "transport": {
    "nats_tcp": "dynamo_backend.generate-694d98147d54be25"
  }
}`
)

var v11EP = EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "generate"}

func v11Planes() (nats, http, tcp Transport) {
	return Transport{Kind: KindNATS, Address: NATSSubject(v11EP, v11ID)},
		Transport{Kind: KindHTTP, Address: HTTPURL("10.0.0.5", 8081, "/v1/dynamo", "generate")},
		Transport{Kind: KindTCP, Address: TCPAddress("10.0.0.5", 45123, v11ID, "generate")}
}

func TestV11Vectors(t *testing.T) {
	if v11ID != 7587888160958627365 {
		t.Fatalf("lease id constant %d", v11ID)
	}
	nats, http, tcp := v11Planes()
	tests := []struct {
		name   string
		rec    Record
		wire   string // what MarshalRecord must write
		inputs []string
	}{
		{
			name:   "nats only",
			rec:    NewRecord(v11EP, v11ID, nats),
			wire:   v11NATS,
			inputs: []string{v11NATS, v11Old},
		},
		{
			name:   "three planes",
			rec:    NewRecord(v11EP, v11ID, http, tcp, nats),
			wire:   v11All,
			inputs: []string{v11All},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalRecord(tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.wire {
				t.Errorf("MarshalRecord\n got %s\nwant %s", got, tt.wire)
			}
			if tt.rec.Key() != v11Key {
				t.Errorf("Key = %q, want %q", tt.rec.Key(), v11Key)
			}
			for _, in := range tt.inputs {
				r, err := ParseRecord([]byte(in))
				if err != nil {
					t.Fatalf("ParseRecord(%s): %v", in, err)
				}
				if !reflect.DeepEqual(r, tt.rec) {
					t.Errorf("ParseRecord(%s)\n got %+v\nwant %+v", in, r, tt.rec)
				}
				again, _ := MarshalRecord(r)
				if string(again) != tt.wire {
					t.Errorf("re-encoded %s, want %s", again, tt.wire)
				}
			}
		})
	}
}

func TestTransportsCandidates(t *testing.T) {
	nats, http, tcp := v11Planes()
	tests := []struct {
		name string
		rec  Record
		want []Transport
	}{
		{"one plane", NewRecord(v11EP, 1, nats), []Transport{nats}},
		{"three planes", NewRecord(v11EP, 1, http, tcp, nats), []Transport{http, tcp, nats}},
		{"no planes", NewRecord(v11EP, 1), []Transport{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rec.Transports(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Transports() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseRecordAccepts(t *testing.T) {
	nats, http, _ := v11Planes()
	tests := []struct {
		name string
		in   string
		want Record
	}{
		{
			name: "u64 max id",
			in:   `{"type":"Endpoint","component":"c","endpoint":"e","namespace":"n","instance_id":18446744073709551615,"transport":{"tcp":"127.0.0.1:1/ffffffffffffffff/e"}}`,
			want: Record{Namespace: "n", Component: "c", Endpoint: "e", InstanceID: math.MaxUint64, Transport: Transport{KindTCP, "127.0.0.1:1/ffffffffffffffff/e"}},
		},
		{
			name: "unknown fields anywhere",
			in:   `{"zz":1,"type":"Endpoint","component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":7587888160958627365,"transport":{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"},"extra":{"a":[1,2]},"device_type":null}`,
			want: NewRecord(v11EP, v11ID, nats),
		},
		{
			name: "fields in another order",
			in:   `{"transport":{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"},"instance_id":7587888160958627365,"namespace":"dynamo","endpoint":"generate","component":"backend","type":"Endpoint"}`,
			want: NewRecord(v11EP, v11ID, nats),
		},
		{
			name: "transports null",
			in:   `{"component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":7587888160958627365,"transport":{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"},"transports":null}`,
			want: NewRecord(v11EP, v11ID, nats),
		},
		{
			name: "transports repeating transport",
			in:   `{"component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":7587888160958627365,"transport":{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"},"transports":[{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"}]}`,
			want: NewRecord(v11EP, v11ID, nats),
		},
		{
			name: "transports differing from transport kept",
			in:   `{"component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":7587888160958627365,"transport":{"nats_tcp":"dynamo_backend.generate-694d98147d54be25"},"transports":[{"http":"http://10.0.0.5:8081/v1/dynamo/generate"}]}`,
			want: Record{Namespace: "dynamo", Component: "backend", Endpoint: "generate", InstanceID: v11ID, Transport: nats, Planes: []Transport{http}},
		},
		{
			name: "unknown transport kind kept",
			in:   `{"component":"c","endpoint":"e","namespace":"n","instance_id":0,"transport":{"quic":"127.0.0.1:9"}}`,
			want: Record{Namespace: "n", Component: "c", Endpoint: "e", Transport: Transport{"quic", "127.0.0.1:9"}},
		},
		{
			name: "html characters and escapes",
			in:   `{"component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":{"http":"http://h:1/a<b>&c\u2028\n"}}`,
			want: Record{Namespace: "n", Component: "c", Endpoint: "e", InstanceID: 1, Transport: Transport{KindHTTP, "http://h:1/a<b>&c\u2028\n"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecord([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRecordRejects(t *testing.T) {
	const good = `"component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":{"tcp":"x"}`
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"other type", `{"type":"Model","name":"llama"}`, ErrNotEndpoint},
		{"other type with endpoint fields", `{"type":"Other",` + good + `}`, ErrNotEndpoint},
		{"type not a string", `{"type":3,` + good + `}`, ErrMalformedRecord},
		{"type lowercase", `{"type":"endpoint",` + good + `}`, ErrNotEndpoint},
		{"empty", ``, ErrMalformedRecord},
		{"garbage", `\x00not json`, ErrMalformedRecord},
		{"truncated", `{"type":"Endpoint","component":"c"`, ErrMalformedRecord},
		{"trailing data", `{` + good + `}{}`, ErrMalformedRecord},
		{"null", `null`, ErrMalformedRecord},
		{"array", `[]`, ErrMalformedRecord},
		{"empty object", `{}`, ErrMalformedRecord},
		{"missing transport", `{"component":"c","endpoint":"e","namespace":"n","instance_id":1}`, ErrMalformedRecord},
		{"missing instance_id", `{"component":"c","endpoint":"e","namespace":"n","transport":{"tcp":"x"}}`, ErrMalformedRecord},
		{"null component", `{"component":null,"endpoint":"e","namespace":"n","instance_id":1,"transport":{"tcp":"x"}}`, ErrMalformedRecord},
		{"null instance_id", `{"component":"c","endpoint":"e","namespace":"n","instance_id":null,"transport":{"tcp":"x"}}`, ErrMalformedRecord},
		{"id above u64", `{"component":"c","endpoint":"e","namespace":"n","instance_id":18446744073709551616,"transport":{"tcp":"x"}}`, ErrMalformedRecord},
		{"negative id", `{"component":"c","endpoint":"e","namespace":"n","instance_id":-1,"transport":{"tcp":"x"}}`, ErrMalformedRecord},
		{"float id", `{"component":"c","endpoint":"e","namespace":"n","instance_id":1.5,"transport":{"tcp":"x"}}`, ErrMalformedRecord},
		{"string id", `{"component":"c","endpoint":"e","namespace":"n","instance_id":"1","transport":{"tcp":"x"}}`, ErrMalformedRecord},
		{"transport string", `{"component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":"tcp"}`, ErrMalformedRecord},
		{"transport two members", `{"component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":{"tcp":"x","http":"y"}}`, ErrMalformedRecord},
		{"transport empty", `{"component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":{}}`, ErrMalformedRecord},
		{"transport number address", `{"component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":{"tcp":5}}`, ErrMalformedRecord},
		{"transport empty kind", `{"component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":{"":"x"}}`, ErrMalformedRecord},
		{"transports not a list", `{` + good + `,"transports":{"tcp":"x"}}`, ErrMalformedRecord},
		{"transports bad element", `{` + good + `,"transports":[{"tcp":"x"},7]}`, ErrMalformedRecord},
		{"field name case differs", `{"Component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":{"tcp":"x"}}`, ErrMalformedRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRecord([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseRecord(%s) error = %v, want %v", tt.in, err, tt.want)
			}
			other := ErrNotEndpoint
			if tt.want == ErrNotEndpoint {
				other = ErrMalformedRecord
			}
			if errors.Is(err, other) {
				t.Errorf("error %v also matches %v", err, other)
			}
		})
	}
}

func TestMarshalRecord(t *testing.T) {
	ep := EndpointID{"n", "c", "e"}
	tests := []struct {
		name    string
		rec     Record
		want    string
		wantErr bool
	}{
		{
			name: "no html escaping, serde control escapes",
			rec:  NewRecord(ep, 255, Transport{KindHTTP, "http://h:1/<a>&\"\\\b\f\n\r\t\x01\x1f\x7f\u2028"}),
			want: `{"type":"Endpoint","component":"c","endpoint":"e","namespace":"n","instance_id":255,"transport":{"http":"http://h:1/<a>&\"\\\b\f\n\r\t\u0001\u001f` + "\x7f\u2028" + `"}}`,
		},
		{
			name: "invalid utf-8 replaced",
			rec:  NewRecord(ep, 0, Transport{KindTCP, "a\xffb"}),
			want: `{"type":"Endpoint","component":"c","endpoint":"e","namespace":"n","instance_id":0,"transport":{"tcp":"a` + "\uFFFD" + `b"}}`,
		},
		{
			name: "single plane list differing from transport is written",
			rec:  Record{Namespace: "n", Component: "c", Endpoint: "e", InstanceID: 1, Transport: Transport{KindTCP, "a"}, Planes: []Transport{{KindHTTP, "b"}}},
			want: `{"type":"Endpoint","component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":{"tcp":"a"},"transports":[{"http":"b"}]}`,
		},
		{
			name: "single plane list equal to transport is omitted",
			rec:  Record{Namespace: "n", Component: "c", Endpoint: "e", InstanceID: 1, Transport: Transport{KindTCP, "a"}, Planes: []Transport{{KindTCP, "a"}}},
			want: `{"type":"Endpoint","component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":{"tcp":"a"}}`,
		},
		{name: "no transport", rec: NewRecord(ep, 1), wantErr: true},
		{name: "plane without kind", rec: NewRecord(ep, 1, Transport{KindTCP, "a"}, Transport{}), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalRecord(tt.rec)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("MarshalRecord = %s, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if _, err := ParseRecord(got); err != nil {
				t.Errorf("ParseRecord of own output: %v", err)
			}
		})
	}
}

func TestTransportJSON(t *testing.T) {
	b, err := Transport{KindNATS, "a&b"}.MarshalJSON()
	if err != nil || string(b) != `{"nats_tcp":"a&b"}` {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
	if _, err := (Transport{}).MarshalJSON(); err == nil {
		t.Error("MarshalJSON of a transport without kind succeeded")
	}
	var tr Transport
	if err := tr.UnmarshalJSON([]byte(` { "tcp" : "1.2.3.4:5/a/b" } `)); err != nil || tr != (Transport{KindTCP, "1.2.3.4:5/a/b"}) {
		t.Fatalf("UnmarshalJSON = %+v, %v", tr, err)
	}
	for _, k := range []TransportKind{KindNATS, KindHTTP, KindTCP} {
		if !k.Known() {
			t.Errorf("%s not known", k)
		}
	}
	if TransportKind("quic").Known() {
		t.Error("quic known")
	}
}

// FuzzParseRecord checks that ParseRecord never panics and that whatever it accepts
// re-encodes to a value that parses back to the same record and the same bytes.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{v11NATS, v11All, v11Old, `{"type":"Model"}`, `{}`, `null`, "garbage"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			if !errors.Is(err, ErrNotEndpoint) && !errors.Is(err, ErrMalformedRecord) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		b, err := MarshalRecord(r)
		if err != nil {
			t.Fatalf("MarshalRecord(%+v): %v", r, err)
		}
		r2, err := ParseRecord(b)
		if err != nil {
			t.Fatalf("ParseRecord(%s): %v", b, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the record\n first %+v\nsecond %+v", r, r2)
		}
		b2, _ := MarshalRecord(r2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("re-encoding is unstable: %s vs %s", b, b2)
		}
		if strings.Contains(string(b), "\n") {
			t.Fatalf("encoding is not compact: %q", b)
		}
	})
}

// A worker that speaks the response mux says so after the Dynamo fields; readers of either kind
// of record agree.
func TestRecordResponseMux(t *testing.T) {
	ep := EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "generate"}
	r := NewRecord(ep, 0x694d98147d54be25, Transport{Kind: KindTCP, Address: "10.0.0.5:45123/694d98147d54be25/generate"})
	r.ResponseMux = 1
	b, err := MarshalRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"Endpoint","component":"backend","endpoint":"generate","namespace":"dynamo","instance_id":7587888160958627365,"transport":{"tcp":"10.0.0.5:45123/694d98147d54be25/generate"},"response_mux":1}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	got, err := ParseRecord(b)
	if err != nil || !got.Equal(r) {
		t.Fatalf("parsed %+v, %v", got, err)
	}
	if _, err := ParseRecord([]byte(`{"component":"c","endpoint":"e","namespace":"n","instance_id":1,"transport":{"tcp":"x"},"response_mux":"yes"}`)); !errors.Is(err, ErrMalformedRecord) {
		t.Fatalf("bad response_mux: %v", err)
	}
}
