package config

import (
	"errors"
	"testing"
)

func TestTracingDetection(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Tracing
	}{
		{"unset: off", nil, Tracing{Protocol: OTLPHTTPProtobuf}},
		{"empty counts as unset", map[string]string{EnvOTLPEndpoint: ""}, Tracing{Protocol: OTLPHTTPProtobuf}},
		{"general endpoint: signal path appended", map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4318/"},
			Tracing{Enabled: true, Endpoint: "http://127.0.0.1:4318/v1/traces", Protocol: OTLPHTTPProtobuf}},
		{"traces endpoint wins", map[string]string{
			EnvOTLPEndpoint: "http://127.0.0.1:4318", EnvOTLPTracesEndpoint: "http://127.0.0.1:9999/v1/traces"},
			Tracing{Enabled: true, Endpoint: "http://127.0.0.1:9999/v1/traces", Protocol: OTLPHTTPProtobuf}},
		{"grpc, any case", map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4317", EnvOTLPProtocol: "GRPC"},
			Tracing{Enabled: true, Endpoint: "http://127.0.0.1:4317", Protocol: OTLPGRPC}},
		{"traces protocol wins", map[string]string{
			EnvOTLPTracesEndpoint: "127.0.0.1:4317", EnvOTLPProtocol: "http/protobuf", EnvOTLPTracesProtocol: "grpc"},
			Tracing{Enabled: true, Endpoint: "127.0.0.1:4317", Protocol: OTLPGRPC}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Tracing != tt.want {
				t.Errorf("Tracing = %+v, want %+v", cfg.Tracing, tt.want)
			}
		})
	}
}

func TestTracingBadProtocol(t *testing.T) {
	for _, name := range []string{EnvOTLPProtocol, EnvOTLPTracesProtocol} {
		_, err := load(map[string]string{name: "http/json"})
		var ve *VarError
		if !errors.As(err, &ve) || ve.Name != name {
			t.Errorf("%s=http/json: err = %v, want a VarError naming it", name, err)
		}
	}
}

func TestTracingEndpointMasked(t *testing.T) {
	cfg, err := load(map[string]string{EnvOTLPEndpoint: "https://user:s3cret@collector:4318"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range cfg.Vars {
		if v.Name == EnvOTLPEndpoint && v.Value != "https://user:********@collector:4318" {
			t.Errorf("recorded %q, want the password masked", v.Value)
		}
	}
}
