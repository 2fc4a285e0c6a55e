package reqplane

import (
	"fmt"
	"log/slog"

	"github.com/reqplane/reqplane/internal/config"
	"github.com/reqplane/reqplane/internal/plane"
	"github.com/reqplane/reqplane/internal/plane/http2"
	"github.com/reqplane/reqplane/internal/plane/nats"
	"github.com/reqplane/reqplane/internal/plane/tcp"
)

// newPlaneServer builds the ingress of the named plane from the configuration (not started).
// observe, when set, is told every request's outcome (ingress metrics).
func newPlaneServer(cfg *config.Config, name string, log *slog.Logger, observe plane.ObserveFunc) (plane.Server, error) {
	switch name {
	case plane.NameHTTP:
		h := cfg.HTTP
		root := h.RootPath
		if root == "" { // DYN_HTTP_RPC_ROOT_PATH="/": endpoints at the root
			root = "/"
		}
		return http2.NewServer(http2.Options{
			Host:           h.BindHost,
			Port:           h.Port,
			AdvertiseHost:  h.AdvertiseHost,
			RootPath:       root,
			MaxMessageSize: cfg.TCP.MaxMessageSize,
			Logger:         log,
			Observe:        observe,
		}), nil
	case plane.NameTCP:
		t := cfg.TCP
		return tcp.NewServer(tcp.Options{
			Host:           t.BindHost,
			Port:           t.Port,
			AdvertiseHost:  t.AdvertiseHost,
			MaxMessageSize: t.MaxMessageSize,
			Logger:         log,
			Observe:        observe,
		})
	case plane.NameNATS:
		return nats.NewServer(nats.Options{
			URLs:           []string(cfg.NATS.Servers),
			Auth:           natsAuth(cfg.NATS.Auth),
			Name:           "reqplane-worker",
			MaxMessageSize: cfg.TCP.MaxMessageSize,
			Logger:         log,
			Observe:        observe,
		}), nil
	}
	return nil, fmt.Errorf("reqplane: unknown request plane %q", name)
}

// newPlaneClient builds the egress of the named plane from the configuration.
func newPlaneClient(cfg *config.Config, name string, log *slog.Logger) (plane.Client, error) {
	switch name {
	case plane.NameHTTP:
		return http2.NewClient(http2.ClientOptions{
			RequestTimeout: cfg.HTTP.RequestTimeout,
			MaxMessageSize: cfg.TCP.MaxMessageSize,
		}), nil
	case plane.NameTCP:
		t := cfg.TCP
		return tcp.NewClient(tcp.ClientOptions{
			ConnectTimeout: t.ConnectTimeout,
			RequestTimeout: t.RequestTimeout,
			PoolSize:       t.PoolSize,
			MaxMessageSize: t.MaxMessageSize,
			Logger:         log,
		}), nil
	case plane.NameNATS:
		return nats.NewClient(nats.ClientOptions{
			URLs:           []string(cfg.NATS.Servers),
			Auth:           natsAuth(cfg.NATS.Auth),
			Name:           "reqplane-client",
			RequestTimeout: cfg.NATS.RequestTimeout,
			Logger:         log,
		}), nil
	}
	return nil, fmt.Errorf("reqplane: unknown request plane %q", name)
}

func natsAuth(a config.NATSAuth) nats.Auth {
	return nats.Auth{
		User:            a.Username,
		Password:        string(a.Password),
		Token:           string(a.Token),
		NKeySeed:        string(a.NKeySeed),
		CredentialsFile: a.CredentialsFile,
	}
}
