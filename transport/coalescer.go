package transport

import (
	"hash/maphash"
	"sync"
	"time"
)

// coalescerShards spreads heartbeats over independent locks; a heartbeat
// holds one shard's mutex for a map write and nothing else.
const coalescerShards = 64

// Coalescer keeps the newest heartbeat per machine until the next flush.
// Repeated beats from one machine collapse into one entry, so a flush costs
// O(machines that beat), never O(heartbeats).
type Coalescer struct {
	seed   maphash.Seed
	shards [coalescerShards]coalescerShard
}

type coalescerShard struct {
	mu sync.Mutex
	m  map[string]time.Time
	_  [48]byte // pad to 64 bytes: no false sharing between shards
}

// NewCoalescer returns an empty coalescer.
func NewCoalescer() *Coalescer {
	c := &Coalescer{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]time.Time)
	}
	return c
}

// Record notes that machine id beat at receivedAt (this node's monotonic
// clock). Only the newest beat per machine is kept.
func (c *Coalescer) Record(id string, receivedAt time.Time) {
	s := &c.shards[maphash.String(c.seed, id)%coalescerShards]
	s.mu.Lock()
	if prev, ok := s.m[id]; !ok || receivedAt.After(prev) {
		s.m[id] = receivedAt
	}
	s.mu.Unlock()
}

// DrainInto moves every recorded beat into dst (keeping the newer of two)
// and leaves the coalescer empty.
func (c *Coalescer) DrainInto(dst map[string]time.Time) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		if len(s.m) == 0 {
			s.mu.Unlock()
			continue
		}
		m := s.m
		s.m = make(map[string]time.Time, len(m))
		s.mu.Unlock()
		for id, at := range m {
			if prev, ok := dst[id]; !ok || at.After(prev) {
				dst[id] = at
			}
		}
	}
}

// maxKeptShardRoom: a shard map that held more beats than this in one
// interval is replaced rather than cleared, so its memory goes back.
const maxKeptShardRoom = 4096

// DrainedBeat is one machine's newest beat, taken out of the coalescer.
type DrainedBeat struct {
	ID string
	At time.Time
}

// DrainAppend moves every recorded beat to dst, one per machine, and
// leaves the coalescer empty. It is DrainInto for a flusher with nothing
// pending (the usual case): no map to merge into, and each shard keeps its
// map's room for the next interval instead of allocating a new one
// (issue 14).
func (c *Coalescer) DrainAppend(dst []DrainedBeat) []DrainedBeat {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for id, at := range s.m {
			dst = append(dst, DrainedBeat{ID: id, At: at})
		}
		if len(s.m) > maxKeptShardRoom {
			s.m = make(map[string]time.Time) // a burst does not pin its room
		} else {
			clear(s.m)
		}
		s.mu.Unlock()
	}
	return dst
}

// Len is the number of machines waiting for the next flush.
func (c *Coalescer) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
