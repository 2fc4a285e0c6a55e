package etcd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reqplane/reqplane/internal/discovery"
)

// Entry is one instance key as List found it.
type Entry struct {
	Key         string
	Record      discovery.Record // valid when Err is nil
	Err         error            // why the key or value is not a usable record
	LeaseID     uint64           // 0 when the key has no lease
	TTL         time.Duration    // remaining lease time; negative when the lease is gone
	ModRevision int64
}

// List reads every instance under prefix (discovery.InstancesPrefix gives one) and the
// remaining TTL of each lease, once. Values of other record types are left out; malformed
// ones are returned with Err set. Entries are sorted by endpoint, then instance id.
func List(ctx context.Context, client *clientv3.Client, prefix string) ([]Entry, error) {
	if !strings.HasPrefix(prefix, discovery.InstancesRoot) || !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("%w: list prefix %q must be under %s and end in '/'", discovery.ErrInvalidKey, prefix, discovery.InstancesRoot)
	}
	resp, err := client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	entries := make([]Entry, 0, len(resp.Kvs))
	ttls := make(map[int64]time.Duration)
	for _, kv := range resp.Kvs {
		e := Entry{Key: string(kv.Key), LeaseID: uint64(kv.Lease), ModRevision: kv.ModRevision}
		rec, _, err := parseInstance(e.Key, kv.Value)
		if errors.Is(err, discovery.ErrNotEndpoint) {
			continue
		}
		e.Record, e.Err = rec, err
		if kv.Lease != 0 {
			ttl, ok := ttls[kv.Lease]
			if !ok {
				if ttl, err = leaseTTL(ctx, client, kv.Lease); err != nil {
					return nil, err
				}
				ttls[kv.Lease] = ttl
			}
			e.TTL = ttl
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, compareEntries)
	return entries, nil
}

func leaseTTL(ctx context.Context, client *clientv3.Client, id int64) (time.Duration, error) {
	resp, err := client.TimeToLive(ctx, clientv3.LeaseID(id))
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return -1, nil
	case err != nil:
		return 0, fmt.Errorf("reading the TTL of lease %x: %w", id, err)
	case resp.TTL < 0:
		return -1, nil
	}
	return time.Duration(resp.TTL) * time.Second, nil
}

// compareEntries orders by namespace, component, endpoint, then numeric instance id (keys
// whose id does not parse after the others), then the raw key.
func compareEntries(a, b Entry) int {
	pa, ia, oka := sortKey(a.Key)
	pb, ib, okb := sortKey(b.Key)
	return cmp.Or(
		slices.Compare(pa[:], pb[:]),
		compareBool(okb, oka), // valid ids first
		cmp.Compare(ia, ib),
		strings.Compare(a.Key, b.Key),
	)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func sortKey(key string) (names [3]string, id uint64, ok bool) {
	segs := strings.SplitN(strings.TrimPrefix(key, discovery.InstancesRoot), "/", 4)
	copy(names[:], segs)
	if len(segs) == 4 {
		var err error
		id, err = discovery.ParseInstanceID(segs[3])
		ok = err == nil
	}
	return names, id, ok
}
