package discovery

import (
	"cmp"
	"slices"
)

// Snapshot is the complete set of an endpoint's instances as of one etcd revision. Watchers
// deliver snapshots, never deltas, so a consumer can rebuild its state from any one of them
// (the gRPC resolver model) and losing an intermediate one loses nothing.
type Snapshot struct {
	Endpoint  EndpointID
	Instances []Record // sorted by InstanceID, ids unique
	Revision  int64    // etcd revision the set was observed at
}

// NewSnapshot returns a snapshot of the given instances, sorted by instance id. The slice
// is taken over by the snapshot.
func NewSnapshot(ep EndpointID, rev int64, instances []Record) Snapshot {
	slices.SortFunc(instances, func(a, b Record) int { return cmp.Compare(a.InstanceID, b.InstanceID) })
	return Snapshot{Endpoint: ep, Instances: instances, Revision: rev}
}

// Instance returns the record of instance id, if the snapshot has it.
func (s Snapshot) Instance(id uint64) (Record, bool) {
	i, ok := slices.BinarySearchFunc(s.Instances, id, func(r Record, id uint64) int {
		return cmp.Compare(r.InstanceID, id)
	})
	if !ok {
		return Record{}, false
	}
	return s.Instances[i], true
}

// IDs returns the instance ids in ascending order.
func (s Snapshot) IDs() []uint64 {
	ids := make([]uint64, len(s.Instances))
	for i, r := range s.Instances {
		ids[i] = r.InstanceID
	}
	return ids
}

// SameInstances reports whether s and o hold equal records (revisions aside).
func (s Snapshot) SameInstances(o Snapshot) bool {
	return s.Endpoint == o.Endpoint && slices.EqualFunc(s.Instances, o.Instances, Record.Equal)
}
