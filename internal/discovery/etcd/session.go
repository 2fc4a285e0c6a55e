package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reqplane/reqplane/internal/discovery"
)

// DefaultTTL is the lease TTL when none is given (ETCD_LEASE_TTL's default).
const DefaultTTL = 10 * time.Second

// maxRevokeWait bounds Close's revoke: past the TTL the lease expires by itself anyway.
const maxRevokeWait = 5 * time.Second

var (
	// ErrKeyExists is returned by Register when the instance key is already there (the
	// If(Version(key)==0) compare failed): another writer holds the same id.
	ErrKeyExists = errors.New("instance key already exists")
	// ErrInstanceMismatch is returned by Register for a record whose instance id is not the
	// session's lease id.
	ErrInstanceMismatch = errors.New("record instance id is not the session's lease id")
	// ErrClosed is returned when using a closed Registrar or Watcher.
	ErrClosed = errors.New("closed")
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("already started")
)

// Session is one lease kept alive by the client: the lifetime of one instance id. Its model
// is etcd's concurrency.Session: Done is closed when the lease is lost, Close revokes it.
type Session struct {
	client *clientv3.Client
	id     clientv3.LeaseID
	ttl    time.Duration
	cancel context.CancelFunc // stops the keep-alive
	done   chan struct{}      // closed when the keep-alive stream ends

	closeOnce sync.Once
	closeErr  error
}

// NewSession grants a lease of ttl (DefaultTTL if zero; etcd rounds up to whole seconds and
// may raise a very short one to its minimum) and keeps it alive until Close or until it is
// lost. ctx bounds the grant only; the session outlives it.
func NewSession(ctx context.Context, client *clientv3.Client, ttl time.Duration) (*Session, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	secs := int64(math.Ceil(ttl.Seconds()))
	grant, err := client.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("granting a lease: %w", err)
	}
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// The client sends a keep-alive every TTL/3 and closes ch when the lease expires, is
	// revoked, or cannot be renewed before its deadline.
	ch, err := client.KeepAlive(kctx, grant.ID)
	if err != nil {
		cancel()
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), maxRevokeWait)
		_, _ = client.Revoke(rctx, grant.ID) // best effort: the lease expires anyway
		rcancel()
		return nil, fmt.Errorf("keeping lease %x alive: %w", grant.ID, err)
	}
	s := &Session{
		client: client,
		id:     grant.ID,
		ttl:    time.Duration(grant.TTL) * time.Second,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go s.drain(ch)
	return s, nil
}

func (s *Session) drain(ch <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(s.done)
	for range ch {
	}
}

// ID returns the lease id: the instance id of everything registered in this session.
func (s *Session) ID() uint64 { return uint64(s.id) }

// TTL returns the TTL etcd granted.
func (s *Session) TTL() time.Duration { return s.ttl }

// Done is closed when the lease is no longer kept alive: lost (expired, revoked elsewhere,
// etcd unreachable past the TTL) or closed. Keys registered in the session are then gone or
// about to go.
func (s *Session) Done() <-chan struct{} { return s.done }

// Register writes rec under its instance key, bound to the lease, only if the key does not
// exist yet (spec §4: txn If(Version(key)==0) Then(Put(key, val, WithLease))).
func (s *Session) Register(ctx context.Context, rec discovery.Record) error {
	if rec.InstanceID != s.ID() {
		return fmt.Errorf("%w: record %x, lease %x", ErrInstanceMismatch, rec.InstanceID, s.ID())
	}
	if err := rec.EndpointID().Validate(); err != nil {
		return err
	}
	val, err := discovery.MarshalRecord(rec)
	if err != nil {
		return err
	}
	key := rec.Key()
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.Version(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(s.id))).
		Commit()
	if err != nil {
		return fmt.Errorf("registering %s: %w", key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("registering %s: %w", key, ErrKeyExists)
	}
	return nil
}

// Close revokes the lease, so every key of the session disappears at once, and stops the
// keep-alive. A lease already gone is not an error. Close is idempotent and waits for the
// session's goroutine.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), min(s.ttl, maxRevokeWait))
		_, err := s.client.Revoke(ctx, s.id)
		cancel()
		s.cancel()
		<-s.done
		if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.closeErr = fmt.Errorf("revoking lease %x: %w", s.ID(), err)
		}
	})
	return s.closeErr
}
