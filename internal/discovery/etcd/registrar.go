package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reqplane/reqplane/internal/discovery"
)

// DefaultAttemptTimeout bounds the etcd calls of one registration attempt.
const DefaultAttemptTimeout = 5 * time.Second

var (
	// ErrNoRecords is returned when a Binder has nothing to register.
	ErrNoRecords = errors.New("binder returned no records")
	// ErrNotRegistered is returned by Register while the Registrar holds no live lease.
	ErrNotRegistered = errors.New("not registered")
)

// State is where a Registrar stands. Only StateRegistered means the instance is findable.
type State int32

const (
	StateIdle          State = iota // not started
	StateRegistered                 // records written under a live lease
	StateReregistering              // the lease was lost; registering under a new one
	StateLost                       // the lease was lost and re-registering failed; retrying with backoff
	StateClosed                     // closed; the lease was revoked
)

var stateNames = [...]string{"idle", "registered", "reregistering", "lost", "closed"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// Binder is called with each new instance id (lease id) before anything is written under it.
// The worker (re)binds its request planes to the id, which appears in NATS subjects and TCP
// paths, and returns the records to advertise, each with InstanceID == instanceID. On a
// re-registration the previous id is dead: the worker stops serving it. An error makes the
// attempt fail; the Registrar revokes the new lease and retries later.
type Binder func(ctx context.Context, instanceID uint64) ([]discovery.Record, error)

// RegistrarOptions tune a Registrar. The zero value is usable.
type RegistrarOptions struct {
	TTL            time.Duration // lease TTL; default DefaultTTL
	Logger         *slog.Logger  // nil: discard
	Backoff        Backoff       // between re-registration attempts; zero: DefaultBackoff
	AttemptTimeout time.Duration // bounds the etcd calls of one attempt; default DefaultAttemptTimeout
}

// Registrar keeps a worker's endpoints registered for the life of the process: one lease,
// one key per record, and a fresh lease (with a Binder call) whenever the lease is lost.
type Registrar struct {
	client *clientv3.Client
	opts   RegistrarOptions
	log    *slog.Logger

	changes chan struct{} // one slot: "State changed", coalesced

	mu      sync.Mutex
	state   State
	started bool
	session *Session           // the live lease while registered
	cancel  context.CancelFunc // stops the keeper
	done    chan struct{}      // closed when the keeper has returned

	closeOnce sync.Once
	closeErr  error
}

// NewRegistrar returns a Registrar that will register through client. It does no I/O.
func NewRegistrar(client *clientv3.Client, opts RegistrarOptions) *Registrar {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	opts.Backoff = opts.Backoff.withDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registrar{client: client, opts: opts, log: log, changes: make(chan struct{}, 1)}
}

// Start grants the first lease, calls bind with its id and registers the records, all before
// returning; a failure leaves nothing registered and Start may be called again. Then a keeper
// goroutine watches the lease until Close. ctx bounds this first registration; the keeper's
// later calls to bind get a context that Close cancels.
func (r *Registrar) Start(ctx context.Context, bind Binder) error {
	r.mu.Lock()
	switch {
	case r.state == StateClosed:
		r.mu.Unlock()
		return ErrClosed
	case r.started:
		r.mu.Unlock()
		return ErrStarted
	}
	r.started = true
	r.mu.Unlock()

	s, err := r.register(ctx, bind)

	r.mu.Lock()
	if err != nil {
		r.started = false
		r.mu.Unlock()
		return err
	}
	if r.state == StateClosed { // Close ran meanwhile and found nothing to revoke
		r.mu.Unlock()
		_ = s.Close() // ErrClosed is what the caller needs to know
		return ErrClosed
	}
	r.session = s
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel, r.done = cancel, make(chan struct{})
	r.setStateLocked(StateRegistered)
	r.mu.Unlock()
	r.log.Info("discovery: registered", "instance", discovery.FormatInstanceID(s.ID()), "ttl", s.TTL())
	go r.keep(kctx, bind, s)
	return nil
}

// Register adds one record under the current lease, for an endpoint served after Start; its
// InstanceID must be InstanceID(). The Binder must return it too from then on, so that it is
// registered again after a lease loss. It fails with ErrNotRegistered while the lease is lost.
func (r *Registrar) Register(ctx context.Context, rec discovery.Record) error {
	r.mu.Lock()
	s, state := r.session, r.state
	r.mu.Unlock()
	switch {
	case state == StateClosed:
		return ErrClosed
	case state != StateRegistered || s == nil:
		return ErrNotRegistered
	}
	return s.Register(ctx, rec)
}

// InstanceID returns the current instance id, or 0 while not registered.
func (r *Registrar) InstanceID() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != StateRegistered || r.session == nil {
		return 0
	}
	return r.session.ID()
}

// State returns the current state.
func (r *Registrar) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Changes receives a value after the state changes (coalesced: read State for the latest).
// Health reporting uses it to turn "notready" while the lease is lost.
func (r *Registrar) Changes() <-chan struct{} { return r.changes }

// Close revokes the lease, so every record disappears from watchers at once, and stops the
// keeper, waiting for it. Call it first when shutting a worker down (spec: revoke first).
// It is idempotent; later calls return the first call's result.
func (r *Registrar) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.setStateLocked(StateClosed)
		cancel, done := r.cancel, r.done
		r.mu.Unlock()
		if cancel != nil {
			cancel()
			<-done
		}
		r.mu.Lock()
		s := r.session
		r.session = nil
		r.mu.Unlock()
		if s != nil {
			r.closeErr = s.Close()
			r.log.Info("discovery: deregistered", "instance", discovery.FormatInstanceID(s.ID()))
		}
	})
	return r.closeErr
}

// setStateLocked records a new state and signals Changes. Closed is final.
func (r *Registrar) setStateLocked(s State) {
	if r.state == s || r.state == StateClosed {
		return
	}
	r.state = s
	select {
	case r.changes <- struct{}{}:
	default:
	}
}

func (r *Registrar) setState(s State) {
	r.mu.Lock()
	r.setStateLocked(s)
	r.mu.Unlock()
}

// register runs one attempt: a new lease, bind, one key per record. On failure it revokes
// the lease, so nothing half-registered stays behind.
func (r *Registrar) register(ctx context.Context, bind Binder) (*Session, error) {
	gctx, cancel := context.WithTimeout(ctx, r.opts.AttemptTimeout)
	s, err := NewSession(gctx, r.client, r.opts.TTL)
	cancel()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Session, error) {
		_ = s.Close() // the attempt's own error is the one to report
		return nil, err
	}
	recs, err := bind(ctx, s.ID())
	if err != nil {
		return fail(fmt.Errorf("binding instance %x: %w", s.ID(), err))
	}
	if len(recs) == 0 {
		return fail(ErrNoRecords)
	}
	wctx, cancel := context.WithTimeout(ctx, r.opts.AttemptTimeout)
	defer cancel()
	for _, rec := range recs {
		if err := s.Register(wctx, rec); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// keep waits for the lease to be lost and re-registers under a fresh one, until ctx ends.
func (r *Registrar) keep(ctx context.Context, bind Binder, s *Session) {
	defer close(r.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.Done():
		}
		if ctx.Err() != nil {
			return
		}
		old := discovery.FormatInstanceID(s.ID())
		r.mu.Lock()
		r.session = nil
		r.setStateLocked(StateReregistering)
		r.mu.Unlock()
		r.log.Warn("discovery: lease lost; the instance is no longer registered, re-registering under a new lease",
			"instance", old)
		// If only the keep-alive failed (etcd unreachable from here), the lease may still live
		// on the server: revoke it so the old keys vanish now rather than at expiry.
		_ = s.Close() // usually "lease not found": the lease is dead either way
		if s = r.reregister(ctx, bind); s == nil {
			return
		}
		r.log.Info("discovery: re-registered under a new lease", "old_instance", old,
			"instance", discovery.FormatInstanceID(s.ID()))
	}
}

// reregister retries register with backoff until it succeeds (the new session) or ctx ends (nil).
func (r *Registrar) reregister(ctx context.Context, bind Binder) *Session {
	for attempt := 0; ; attempt++ {
		s, err := r.register(ctx, bind)
		if err == nil {
			r.mu.Lock()
			r.session = s // Close, which waits for the keeper, revokes it
			r.setStateLocked(StateRegistered)
			r.mu.Unlock()
			return s
		}
		if ctx.Err() != nil {
			return nil
		}
		d := r.opts.Backoff.Delay(attempt)
		r.setState(StateLost)
		r.log.Warn("discovery: re-registration failed; retrying", "err", err, "attempt", attempt+1, "retry_in", d)
		if sleep(ctx, d) != nil {
			return nil
		}
	}
}
