package discovery

import (
	"errors"
	"math"
	"testing"
)

func TestEndpointIDValidate(t *testing.T) {
	tests := []struct {
		name      string
		ep        EndpointID
		wantErr   bool
		wantField string
	}{
		{"plain", EndpointID{"dynamo", "backend", "generate"}, false, ""},
		{"digits dash underscore", EndpointID{"ns-1", "comp_2", "ep-3_x"}, false, ""},
		{"empty namespace", EndpointID{"", "c", "e"}, true, "namespace"},
		{"empty component", EndpointID{"n", "", "e"}, true, "component"},
		{"empty endpoint", EndpointID{"n", "c", ""}, true, "endpoint"},
		{"slash", EndpointID{"n", "c/d", "e"}, true, "component"},
		{"upper case", EndpointID{"n", "Backend", "e"}, true, "component"},
		{"dot breaks subjects", EndpointID{"n", "c", "e.x"}, true, "endpoint"},
		{"space", EndpointID{"n s", "c", "e"}, true, "namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ep.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			var ne *NameError
			if !errors.As(err, &ne) || ne.Field != tt.wantField || !errors.Is(err, ErrInvalidName) {
				t.Errorf("Validate() = %v, want a NameError on %s", err, tt.wantField)
			}
		})
	}
}

func TestEndpointIDKeys(t *testing.T) {
	ep := EndpointID{"dynamo", "backend", "generate"}
	if got := ep.String(); got != "dynamo/backend/generate" {
		t.Errorf("String() = %q", got)
	}
	if got := ep.Prefix(); got != "v1/instances/dynamo/backend/generate/" {
		t.Errorf("Prefix() = %q", got)
	}
	tests := []struct {
		id   uint64
		want string
	}{
		{0, "v1/instances/dynamo/backend/generate/0"},
		{0xabc, "v1/instances/dynamo/backend/generate/abc"},
		{0x694d98147d54be25, "v1/instances/dynamo/backend/generate/694d98147d54be25"},
		{math.MaxUint64, "v1/instances/dynamo/backend/generate/ffffffffffffffff"},
	}
	for _, tt := range tests {
		if got := ep.Key(tt.id); got != tt.want {
			t.Errorf("Key(%x) = %q, want %q", tt.id, got, tt.want)
		}
		gotEP, gotID, err := ParseKey(tt.want)
		if err != nil || gotEP != ep || gotID != tt.id {
			t.Errorf("ParseKey(%q) = %v, %x, %v", tt.want, gotEP, gotID, err)
		}
	}
}

func TestParseEndpointID(t *testing.T) {
	tests := []struct {
		in      string
		want    EndpointID
		wantErr bool
	}{
		{"dynamo/backend/generate", EndpointID{"dynamo", "backend", "generate"}, false},
		{"dynamo/VllmWorker/generate", EndpointID{"dynamo", "VllmWorker", "generate"}, false},
		{"dynamo/backend", EndpointID{}, true},
		{"dynamo/backend/generate/x", EndpointID{}, true},
		{"dynamo//generate", EndpointID{}, true},
		{"", EndpointID{}, true},
	}
	for _, tt := range tests {
		got, err := ParseEndpointID(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseEndpointID(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ParseEndpointID(%q) error %v is not ErrInvalidName", tt.in, err)
		}
	}
}

func TestParseKeyRejects(t *testing.T) {
	for _, key := range []string{
		"v1/instances/dynamo/backend/generate/",
		"v1/instances/dynamo/backend/generate/ABC",
		"v1/instances/dynamo/backend/generate/0abc",
		"v1/instances/dynamo/backend/generate/0x1",
		"v1/instances/dynamo/backend/generate/+1",
		"v1/instances/dynamo/backend/generate/10000000000000000",
		"v1/instances/dynamo/backend/generate/abc/def",
		"v1/instances/dynamo/backend/abc",
		"v1/instances/dynamo//generate/abc",
		"instances/dynamo/backend/generate:abc",
		"v1/mdc/dynamo/backend/generate/abc",
	} {
		if ep, id, err := ParseKey(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseKey(%q) = %v, %x, %v; want ErrInvalidKey", key, ep, id, err)
		}
	}
}

func TestInstancesPrefix(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"", "v1/instances/", false},
		{"dynamo", "v1/instances/dynamo/", false},
		{"dynamo/backend", "v1/instances/dynamo/backend/", false},
		{"dynamo/backend/gen", "v1/instances/dynamo/backend/gen/", false},
		{"dynamo/backend/gen/x", "", true},
		{"dynamo/", "", true},
		{"/backend", "", true},
	}
	for _, tt := range tests {
		got, err := InstancesPrefix(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("InstancesPrefix(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestAddresses(t *testing.T) {
	ep := EndpointID{"dynamo", "backend", "generate"}
	id := uint64(0x694d98147d54be25)
	tests := []struct {
		name, got, want string
	}{
		{"nats", NATSSubject(ep, id), "dynamo_backend.generate-694d98147d54be25"},
		{"http", HTTPURL("10.0.0.5", 8081, "/v1/dynamo", "generate"), "http://10.0.0.5:8081/v1/dynamo/generate"},
		{"http ipv6", HTTPURL("::1", 8081, "/v1/dynamo", "generate"), "http://[::1]:8081/v1/dynamo/generate"},
		{"http root slashes", HTTPURL("127.0.0.1", 1, "v1/rpc/", "generate"), "http://127.0.0.1:1/v1/rpc/generate"},
		{"http empty root", HTTPURL("127.0.0.1", 1, "", "generate"), "http://127.0.0.1:1/generate"},
		{"tcp", TCPAddress("10.0.0.5", 45123, id, "generate"), "10.0.0.5:45123/694d98147d54be25/generate"},
		{"tcp ipv6", TCPAddress("::1", 45123, 1, "generate"), "[::1]:45123/1/generate"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}
