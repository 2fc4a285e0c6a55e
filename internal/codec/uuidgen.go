package codec

import (
	crand "crypto/rand"
	"math/rand/v2"
	"sync"
)

// UUIDGen draws random (version 4) UUIDs for request ids, subjects and stream ids. They come
// from a ChaCha8 generator seeded from crypto/rand: as unguessable (a guessed subject would let
// a stranger claim a response stream), without a getrandom call per id. It is safe for
// concurrent use.
type UUIDGen struct {
	mu  sync.Mutex
	rnd *rand.ChaCha8
}

// NewUUIDGen returns a generator seeded from crypto/rand, which cannot fail on the systems Go
// supports.
func NewUUIDGen() *UUIDGen {
	var seed [32]byte
	crand.Read(seed[:])
	return &UUIDGen{rnd: rand.NewChaCha8(seed)}
}

// New returns a fresh random UUID (RFC 4122 version 4).
func (g *UUIDGen) New() UUID {
	var u UUID
	g.mu.Lock()
	g.rnd.Read(u[:])
	g.mu.Unlock()
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}
