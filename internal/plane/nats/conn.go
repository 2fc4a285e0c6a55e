package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/reqplane/reqplane/internal/plane"
)

// Defaults shared by Server and Client.
const (
	// DefaultURL is where a one-machine fleet's NATS server listens (`reqplane nats`).
	DefaultURL = "nats://127.0.0.1:4222"
	// DefaultName is the connection name shown by the NATS server's monitoring.
	DefaultName = "reqplane"
	// DefaultConnectTimeout bounds each dial and handshake with a NATS server.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultReconnectWait is the pause between reconnection attempts. Connections try to
	// reconnect for as long as they are open: a worker must outlive a NATS restart.
	DefaultReconnectWait = 2 * time.Second
)

// Auth holds NATS credentials. The first method set wins, in field order: User (with
// Password), Token, NKeySeed, NKeySeedFile, CredentialsFile. Credentials may also travel in
// the URLs (nats://user:pass@host).
type Auth struct {
	User     string
	Password string
	Token    string
	// NKeySeed is a user nkey seed ("SU…"), as NATS_AUTH_NKEY carries it.
	NKeySeed string
	// NKeySeedFile is a file holding a user nkey seed.
	NKeySeedFile string
	// CredentialsFile is a .creds file (user JWT and seed).
	CredentialsFile string
}

// option returns the nats.go option for the first method set, nil when none is.
func (a Auth) option() (natsgo.Option, error) {
	switch {
	case a.User != "":
		return natsgo.UserInfo(a.User, a.Password), nil
	case a.Token != "":
		return natsgo.Token(a.Token), nil
	case a.NKeySeed != "":
		return nkeySeedOption(a.NKeySeed)
	case a.NKeySeedFile != "":
		opt, err := natsgo.NkeyOptionFromSeed(a.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("reading the nkey seed file %s: %w", a.NKeySeedFile, err)
		}
		return opt, nil
	case a.CredentialsFile != "":
		return natsgo.UserCredentials(a.CredentialsFile), nil
	}
	return nil, nil
}

// nkeySeedOption signs the server's nonce with an in-memory seed; nats.go only reads seeds
// from files.
func nkeySeedOption(seed string) (natsgo.Option, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("invalid nkey seed: %w", err)
	}
	pub, err := kp.PublicKey()
	kp.Wipe()
	if err != nil {
		return nil, fmt.Errorf("invalid nkey seed: %w", err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return nil, errors.New("invalid nkey seed: not a user seed")
	}
	sign := func(nonce []byte) ([]byte, error) {
		kp, err := nkeys.FromSeed([]byte(seed))
		if err != nil {
			return nil, err
		}
		defer kp.Wipe()
		return kp.Sign(nonce)
	}
	return natsgo.Nkey(pub, sign), nil
}

// connConfig is what Server and Client share to open their connection.
type connConfig struct {
	urls           []string
	auth           Auth
	name           string
	connectTimeout time.Duration
	reconnectWait  time.Duration
	drainTimeout   time.Duration
	log            *slog.Logger
}

// conn is an open nats.go connection and the signal that its callback goroutine has finished.
type conn struct {
	nc *natsgo.Conn
	// closed is closed by the ClosedHandler, the last callback nats.go runs for a connection.
	closed chan struct{}
}

// dialer dials with the context of the initial connect, so that canceling Start or Send
// interrupts a dial; reconnects dial with the connect timeout alone.
type dialer struct {
	d   net.Dialer
	mu  sync.Mutex
	ctx context.Context
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	return d.d.DialContext(ctx, network, address)
}

func (d *dialer) setContext(ctx context.Context) {
	d.mu.Lock()
	d.ctx = ctx
	d.mu.Unlock()
}

// connect opens a connection. Failures are *plane.Error with CodeConnect whose text names the
// URLs and says how to get a NATS server.
func connect(ctx context.Context, cfg connConfig) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, connectError(cfg.urls, err)
	}
	timeout := cfg.connectTimeout
	if dl, ok := ctx.Deadline(); ok {
		// The handshake after the dial is bounded by the timeout only.
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	d := &dialer{d: net.Dialer{Timeout: cfg.connectTimeout}, ctx: ctx}
	c := &conn{closed: make(chan struct{})}
	log := cfg.log
	opts := []natsgo.Option{
		natsgo.Name(cfg.name),
		natsgo.Timeout(timeout),
		natsgo.SetCustomDialer(d),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(cfg.reconnectWait),
		natsgo.DrainTimeout(cfg.drainTimeout),
		natsgo.DisconnectErrHandler(func(nc *natsgo.Conn, err error) {
			if err != nil {
				log.Warn("nats: disconnected", "url", nc.ConnectedUrlRedacted(), "error", err)
			} else {
				log.Info("nats: disconnected", "url", nc.ConnectedUrlRedacted())
			}
		}),
		natsgo.ReconnectHandler(func(nc *natsgo.Conn) {
			log.Info("nats: reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, sub *natsgo.Subscription, err error) {
			// Slow consumers (pending limits exceeded) land here: those requests are dropped
			// and their requesters time out waiting for the ack.
			if sub != nil {
				log.Error("nats: subscription error", "subject", sub.Subject, "error", err)
				return
			}
			log.Error("nats: connection error", "error", err)
		}),
		natsgo.ClosedHandler(func(*natsgo.Conn) { close(c.closed) }),
	}
	auth, err := cfg.auth.option()
	if err != nil {
		return nil, connectError(cfg.urls, err)
	}
	if auth != nil {
		opts = append(opts, auth)
	}
	nc, err := natsgo.Connect(strings.Join(cfg.urls, ","), opts...)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, connectError(cfg.urls, err)
	}
	d.setContext(context.Background())
	c.nc = nc
	return c, nil
}

func connectError(urls []string, err error) *plane.Error {
	return &plane.Error{
		Plane: plane.NameNATS,
		Code:  plane.CodeConnect,
		Text: fmt.Sprintf("cannot connect to NATS at %s: %v; start a NATS server with `reqplane nats`, or set NATS_SERVER to a running one",
			strings.Join(urls, ","), err),
		Err: err,
	}
}

// close closes the connection, draining its subscriptions first when drain is set, and waits
// until nats.go has run its last callback.
func (c *conn) close(drain bool) {
	if !drain || c.nc.Drain() != nil {
		// Drain fails on a connection that is closed or reconnecting; close it outright.
		c.nc.Close()
	}
	<-c.closed
}
