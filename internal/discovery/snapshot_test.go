package discovery

import (
	"reflect"
	"testing"
)

func TestSnapshot(t *testing.T) {
	ep := EndpointID{"n", "c", "e"}
	rec := func(id uint64) Record {
		return NewRecord(ep, id, Transport{KindNATS, NATSSubject(ep, id)})
	}
	s := NewSnapshot(ep, 7, []Record{rec(30), rec(1), rec(0xffffffffffffffff), rec(2)})
	if got, want := s.IDs(), []uint64{1, 2, 30, 0xffffffffffffffff}; !reflect.DeepEqual(got, want) {
		t.Fatalf("IDs() = %v, want %v", got, want)
	}
	tests := []struct {
		id     uint64
		wantOK bool
	}{{1, true}, {30, true}, {0xffffffffffffffff, true}, {0, false}, {3, false}}
	for _, tt := range tests {
		r, ok := s.Instance(tt.id)
		if ok != tt.wantOK || ok && r.InstanceID != tt.id {
			t.Errorf("Instance(%d) = %v, %v", tt.id, r, ok)
		}
	}
	same := NewSnapshot(ep, 9, []Record{rec(2), rec(30), rec(1), rec(0xffffffffffffffff)})
	if !s.SameInstances(same) {
		t.Error("SameInstances false for the same set at another revision")
	}
	if s.SameInstances(NewSnapshot(ep, 7, []Record{rec(1)})) {
		t.Error("SameInstances true for different sets")
	}
	if empty := NewSnapshot(ep, 1, nil); len(empty.IDs()) != 0 || !empty.SameInstances(Snapshot{Endpoint: ep}) {
		t.Error("empty snapshot")
	}
}
