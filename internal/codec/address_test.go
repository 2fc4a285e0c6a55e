package codec

import (
	"errors"
	"math"
	"testing"
)

func TestInstanceID(t *testing.T) {
	tests := []struct {
		id  uint64
		hex string
	}{
		{0, "0"},
		{0xab, "ab"},
		{7587888160958627365, "694d98147d54be25"},
		{math.MaxUint64, "ffffffffffffffff"},
	}
	for _, tt := range tests {
		if got := FormatInstanceID(tt.id); got != tt.hex {
			t.Errorf("FormatInstanceID(%d) = %q, want %q", tt.id, got, tt.hex)
		}
		if got, err := ParseInstanceID(tt.hex); err != nil || got != tt.id {
			t.Errorf("ParseInstanceID(%q) = %d, %v", tt.hex, got, err)
		}
	}
	for _, bad := range []string{"", "0x1f", "-1", "+1", "g", "1_0", "10000000000000000", "0000000000000000001", " 1"} {
		if _, err := ParseInstanceID(bad); !errors.Is(err, ErrInvalidInstanceID) {
			t.Errorf("ParseInstanceID(%q) err = %v", bad, err)
		}
	}
	if got, err := ParseInstanceID("00AB"); err != nil || got != 0xab {
		t.Errorf("ParseInstanceID(00AB) = %d, %v", got, err)
	}
}

func TestParseTCPAddress(t *testing.T) {
	tests := []struct {
		in             string
		hostport, path string
		ok             bool
	}{
		{"10.0.0.5:45123/694d98147d54be25/generate", "10.0.0.5:45123", "694d98147d54be25/generate", true},
		{"tcp://127.0.0.1:45123/694d98147d54be25/generate", "127.0.0.1:45123", "694d98147d54be25/generate", true},
		{"[::1]:45123/1/gen/with/slashes", "[::1]:45123", "1/gen/with/slashes", true},
		{"127.0.0.1:45123/x", "127.0.0.1:45123", "x", true},
		{"127.0.0.1:45123", "", "", false},
		{"127.0.0.1:45123/", "", "", false},
		{"localhost:45123/1/gen", "", "", false},
		{"127.0.0.1/1/gen", "", "", false},
		{"127.0.0.1:0/1/gen", "", "", false},
		{"127.0.0.1:70000/1/gen", "", "", false},
		{"::1:45123/1/gen", "", "", false},
		{"http://127.0.0.1:1/x", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		hp, path, err := ParseTCPAddress(tt.in)
		if tt.ok {
			if err != nil || hp != tt.hostport || path != tt.path {
				t.Errorf("ParseTCPAddress(%q) = %q, %q, %v", tt.in, hp, path, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("ParseTCPAddress(%q) err = %v", tt.in, err)
		}
	}
	long := "127.0.0.1:1/" + string(make([]byte, 1025))
	if _, _, err := ParseTCPAddress(long); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("1025-byte path accepted")
	}
}

func TestCallHomeDialAddress(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"10.0.0.5:41235", "10.0.0.5:41235", true},
		{"127.0.0.1:1", "127.0.0.1:1", true},
		{"[::1]:41235", "[::1]:41235", true},
		{"[fe80::1%eth0]:41235", "[fe80::1%eth0]:41235", true},
		{"fe80::1:41235", "[fe80::1]:41235", true}, // older Dynamo: unbracketed, split at the last ':'
		{"::1:41235", "[::1]:41235", true},
		{"localhost:41235", "localhost:41235", true},
		{"[10.0.0.5]:41235", "10.0.0.5:41235", true}, // brackets around an IPv4 host are dropped
		{"10.0.0.5", "", false},
		{"10.0.0.5:", "", false},
		{"10.0.0.5:0", "", false},
		{"10.0.0.5:65536", "", false},
		{"10.0.0.5:http", "", false},
		{":41235", "", false},
		{"1.2.3.4:5:6", "", false},
		{"0000::0%]:1", "", false}, // a zone with a bracket could not be bracketed back (fuzz)
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := CallHomeDialAddress(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("CallHomeDialAddress(%q) = %q, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("error does not wrap ErrInvalidAddress: %v", err)
		}
	}
	if got, err := (CallHomeInfo{Address: "fe80::1:41235"}).DialAddress(); err != nil || got != "[fe80::1]:41235" {
		t.Errorf("DialAddress = %q, %v", got, err)
	}
}
