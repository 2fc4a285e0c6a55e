package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is a routing policy.
type Mode uint8

const (
	RoundRobin  Mode = iota // counter modulo the available instances (the default)
	Random                  // uniformly random among the available instances
	Direct                  // the instance the caller names
	LeastLoaded             // fewest requests in flight from this client
	PowerOfTwo              // two random choices, the less loaded of the two
)

var modeNames = [...]string{
	RoundRobin:  "round_robin",
	Random:      "random",
	Direct:      "direct",
	LeastLoaded: "least_loaded",
	PowerOfTwo:  "power_of_two",
}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Modes lists every mode, in declaration order.
func Modes() []Mode { return []Mode{RoundRobin, Random, Direct, LeastLoaded, PowerOfTwo} }

// ParseMode accepts a mode's name, with '-' or '_' as separator and in any case.
func ParseMode(s string) (Mode, error) {
	norm := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
	for i, n := range modeNames {
		if n == norm {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown router mode %q: must be one of %s", s, strings.Join(modeNames[:], ", "))
}

// Transport is one address an instance advertises, on a named plane ("http", "tcp", "nats").
type Transport struct {
	Plane   string
	Address string
}

// Instance is one member of a discovery snapshot. Transports[0] is its primary transport.
type Instance struct {
	ID         uint64
	Transports []Transport
	// ResponseMux is the response-mux version the instance speaks (0: classic call-home only).
	ResponseMux uint32
}

// Target is a picked instance with the transport to use for it.
type Target struct {
	ID          uint64
	Transport   Transport
	ResponseMux uint32
	state       *instanceState
}

// Begin counts a request in flight to t (for the load-aware modes) until the returned
// Flight's End.
func (t Target) Begin() Flight {
	if t.state != nil {
		t.state.inflight.Add(1)
	}
	return Flight{s: t.state}
}

// Flight is one request counted in flight to an instance, from Target.Begin. A value, not a
// closure, so that counting a request allocates nothing.
type Flight struct {
	s     *instanceState
	ended uint32 // set once, atomically, by End
}

// End stops counting the request. It is idempotent and safe for concurrent use; call it
// through one copy of the Flight.
func (f *Flight) End() {
	if f.s != nil && atomic.CompareAndSwapUint32(&f.ended, 0, 1) {
		f.s.inflight.Add(-1)
	}
}

// Options configure a Router.
type Options struct {
	Mode Mode
	// Planes is the requester's order of preference (DYN_REQUEST_PLANE). An instance is reached on
	// the first of these planes it offers, else on its primary transport.
	Planes []string
	// DownFor is how long an instance marked down is avoided (default 5 s, as Dynamo restores).
	DownFor time.Duration
	// Now and IntN replace the clock and the random source in tests.
	Now  func() time.Time
	IntN func(n int) int
}

// Router picks targets for one endpoint. Update installs each discovery snapshot; Pick may be
// called concurrently with anything and never blocks.
type Router struct {
	endpoint string // "ns/comp/ep", for error texts
	opts     Options

	picker atomic.Pointer[picker]
	rr     atomic.Uint64

	mu      sync.Mutex
	states  map[uint64]*instanceState
	changed chan struct{} // closed and replaced by every Update, for Wait
}

type instanceState struct {
	inflight  atomic.Int64
	downUntil atomic.Int64 // unix nanos; 0 = up
}

type picker struct {
	targets []Target // sorted by instance id, as the snapshot
}

// New returns a router for endpoint ("ns/comp/ep") with no instances yet.
func New(endpoint string, opts Options) *Router {
	if opts.DownFor <= 0 {
		opts.DownFor = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IntN == nil {
		opts.IntN = rand.IntN
	}
	r := &Router{endpoint: endpoint, opts: opts, states: map[uint64]*instanceState{}, changed: make(chan struct{})}
	r.picker.Store(&picker{})
	return r
}

// Mode returns the router's mode.
func (r *Router) Mode() Mode { return r.opts.Mode }

// Update installs a complete instance set (a discovery snapshot). Per-instance state survives
// for ids present in both the old and the new set.
func (r *Router) Update(instances []Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	states := make(map[uint64]*instanceState, len(instances))
	p := &picker{targets: make([]Target, 0, len(instances))}
	for _, in := range instances {
		tr, ok := r.choose(in.Transports)
		if !ok {
			continue
		}
		s := r.states[in.ID]
		if s == nil {
			s = &instanceState{}
		}
		states[in.ID] = s
		p.targets = append(p.targets, Target{ID: in.ID, Transport: tr, ResponseMux: in.ResponseMux, state: s})
	}
	r.states = states
	r.picker.Store(p)
	close(r.changed)
	r.changed = make(chan struct{})
}

// choose applies the plane preference to one instance's transports.
func (r *Router) choose(ts []Transport) (Transport, bool) {
	if len(ts) == 0 {
		return Transport{}, false
	}
	for _, want := range r.opts.Planes {
		for _, t := range ts {
			if t.Plane == want {
				return t, true
			}
		}
	}
	return ts[0], true
}

// Instances returns the current targets, sorted by id.
func (r *Router) Instances() []Target {
	return append([]Target(nil), r.picker.Load().targets...)
}

// Wait blocks until the router has at least one instance or ctx ends.
func (r *Router) Wait(ctx context.Context) error {
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if len(r.picker.Load().targets) > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// MarkDown makes Pick avoid the instance for the router's DownFor, unless nothing else is left.
func (r *Router) MarkDown(id uint64) {
	r.mu.Lock()
	s := r.states[id]
	r.mu.Unlock()
	if s != nil {
		s.downUntil.Store(r.opts.Now().Add(r.opts.DownFor).UnixNano())
	}
}

// IsDown reports whether the instance is currently marked down.
func (r *Router) IsDown(id uint64) bool {
	r.mu.Lock()
	s := r.states[id]
	r.mu.Unlock()
	return s != nil && s.downUntil.Load() > r.opts.Now().UnixNano()
}

// PickRequest parameterises one Pick.
type PickRequest struct {
	// InstanceID is the instance to use in Direct mode, or with Direct set in any mode.
	InstanceID uint64
	// Direct asks for InstanceID whatever the router's mode.
	Direct bool
	// Tried lists instances already tried for this request (a pre-ack retry); they are skipped.
	Tried []uint64
}

// Pick chooses a target. It prefers instances that are not marked down and not yet tried; when
// only instances marked down remain untried, it uses one of those rather than fail.
func (r *Router) Pick(req PickRequest) (Target, error) {
	p := r.picker.Load()
	if r.opts.Mode == Direct || req.Direct {
		for _, t := range p.targets {
			if t.ID == req.InstanceID {
				if contains(req.Tried, t.ID) {
					break
				}
				return t, nil
			}
		}
		return Target{}, &NotFoundError{Endpoint: r.endpoint, InstanceID: req.InstanceID, Direct: true}
	}
	if len(p.targets) == 0 {
		return Target{}, &NotFoundError{Endpoint: r.endpoint}
	}
	now := r.opts.Now().UnixNano()
	if i := r.pick(p.targets, func(t *Target) bool { return t.state.downUntil.Load() <= now && !contains(req.Tried, t.ID) }); i >= 0 {
		return p.targets[i], nil
	}
	if i := r.pick(p.targets, func(t *Target) bool { return !contains(req.Tried, t.ID) }); i >= 0 {
		return p.targets[i], nil
	}
	return Target{}, &NotFoundError{Endpoint: r.endpoint}
}

// pick applies the mode to the targets that ok accepts; -1 when there is none.
func (r *Router) pick(ts []Target, ok func(*Target) bool) int {
	n := len(ts)
	switch r.opts.Mode {
	case Random:
		return scan(ts, r.opts.IntN(n), ok)
	case LeastLoaded:
		best, bestLoad := -1, int64(0)
		start := int(r.rr.Add(1) % uint64(n)) // rotates ties
		for k := range n {
			i := (start + k) % n
			if !ok(&ts[i]) {
				continue
			}
			if l := ts[i].state.inflight.Load(); best < 0 || l < bestLoad {
				best, bestLoad = i, l
			}
		}
		return best
	case PowerOfTwo:
		a := scan(ts, r.opts.IntN(n), ok)
		if a < 0 || n == 1 {
			return a
		}
		b := scan(ts, (a+1+r.opts.IntN(n-1))%n, ok) // a different start, so b == a only if a is alone
		if b < 0 || ts[b].state.inflight.Load() >= ts[a].state.inflight.Load() {
			return a
		}
		return b
	default: // RoundRobin
		return scan(ts, int((r.rr.Add(1)-1)%uint64(n)), ok)
	}
}

// scan returns the first index from start (wrapping) that ok accepts, or -1.
func scan(ts []Target, start int, ok func(*Target) bool) int {
	n := len(ts)
	for k := range n {
		if i := (start + k) % n; ok(&ts[i]) {
			return i
		}
	}
	return -1
}

func contains(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// ErrNoInstances matches every NotFoundError with errors.Is.
var ErrNoInstances = errors.New("no instances")

// NotFoundError says that no instance (or not the requested one) serves the endpoint. Its text
// is Dynamo's.
type NotFoundError struct {
	Endpoint   string
	InstanceID uint64
	Direct     bool
}

func (e *NotFoundError) Error() string {
	if e.Direct {
		return fmt.Sprintf("instance_id=%d not found for endpoint %s", e.InstanceID, e.Endpoint)
	}
	return "no instances found for endpoint " + e.Endpoint
}

// Is makes errors.Is(err, ErrNoInstances) hold.
func (e *NotFoundError) Is(target error) bool { return target == ErrNoInstances }
