package fsm

import (
	"hash/maphash"
	"iter"
)

// mapShards splits the per-machine maps so that a snapshot can copy them one
// shard at a time, each under a short hold of the read lock (capture.go):
// at 2M machines a shard holds about 8k entries, well under a millisecond
// to copy. A power of two.
const mapShards = 256

// shardedMap is a map split into mapShards maps by a hash of the key. It
// has no lock of its own: the FSM's lock guards it.
type shardedMap[V any] struct {
	seed   maphash.Seed
	shards [mapShards]map[string]V
	n      int
}

// newShardedMap: maps made with the same seed put a key in the same shard
// index, so a snapshot copies a machine and its history in one step.
func newShardedMap[V any](seed maphash.Seed) *shardedMap[V] {
	s := &shardedMap[V]{seed: seed}
	for i := range s.shards {
		s.shards[i] = make(map[string]V)
	}
	return s
}

// shardOf is the shard a key lives in.
func (s *shardedMap[V]) shardOf(k string) int {
	return int(maphash.String(s.seed, k) & (mapShards - 1))
}

func (s *shardedMap[V]) get(k string) (V, bool) {
	v, ok := s.shards[s.shardOf(k)][k]
	return v, ok
}

func (s *shardedMap[V]) has(k string) bool {
	_, ok := s.shards[s.shardOf(k)][k]
	return ok
}

func (s *shardedMap[V]) put(k string, v V) {
	m := s.shards[s.shardOf(k)]
	if _, ok := m[k]; !ok {
		s.n++
	}
	m[k] = v
}

func (s *shardedMap[V]) del(k string) {
	m := s.shards[s.shardOf(k)]
	if _, ok := m[k]; ok {
		s.n--
		delete(m, k)
	}
}

func (s *shardedMap[V]) len() int { return s.n }

// all yields every entry, shard by shard; the map must not change meanwhile.
func (s *shardedMap[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for _, m := range s.shards {
			for k, v := range m {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}
