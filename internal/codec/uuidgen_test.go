package codec

import (
	"sync"
	"testing"
)

// TestUUIDGen checks that the ids are version-4 UUIDs in the RFC 4122 variant whose string form
// parses back, and distinct under concurrent use.
func TestUUIDGen(t *testing.T) {
	g := NewUUIDGen()
	const workers, each = 4, 500
	var mu sync.Mutex
	seen := make(map[UUID]bool, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				u := g.New()
				mu.Lock()
				dup := seen[u]
				seen[u] = true
				mu.Unlock()
				if dup {
					t.Errorf("duplicate id %s", u)
				}
				if u[6]>>4 != 4 || u[8]>>6 != 0b10 {
					t.Errorf("%s: version %d, variant bits %b", u, u[6]>>4, u[8]>>6)
				}
				if p, err := ParseUUID(u.String()); err != nil || p != u {
					t.Errorf("%s: parsed back as %s, %v", u, p, err)
				}
			}
		})
	}
	wg.Wait()
	if other := NewUUIDGen().New(); seen[other] {
		t.Error("two generators drew the same id: not seeded independently")
	}
}
