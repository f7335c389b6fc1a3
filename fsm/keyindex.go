package fsm

import (
	"crypto/sha256"
	"sync"
)

// keyShards spreads the key index over independent locks, so heartbeats on
// many cores never queue behind one mutex (nor behind Apply's FSM lock).
const keyShards = 64

// keyIndex maps key hashes to machine ids.
type keyIndex struct {
	shards [keyShards]keyShard
}

type keyShard struct {
	mu sync.RWMutex
	m  map[KeyHash]string
	_  [32]byte // RWMutex 24 + map 8 + 32 = one 64-byte cache line per shard
}

func newKeyIndex() *keyIndex {
	k := &keyIndex{}
	k.reset()
	return k
}

func (k *keyIndex) reset() {
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		s.m = make(map[KeyHash]string)
		s.mu.Unlock()
	}
}

// replace installs exactly the keys of machines, one shard at a time, so a
// key valid before and after is never missing in between.
func (k *keyIndex) replace(machines []Machine) {
	var next [keyShards]map[KeyHash]string
	for i := range next {
		next[i] = make(map[KeyHash]string)
	}
	for i := range machines {
		h := machines[i].KeyHash
		next[h[0]%keyShards][h] = machines[i].ID
	}
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		s.m = next[i]
		s.mu.Unlock()
	}
}

func (k *keyIndex) shard(h KeyHash) *keyShard { return &k.shards[h[0]%keyShards] }

func (k *keyIndex) put(h KeyHash, id string) {
	s := k.shard(h)
	s.mu.Lock()
	s.m[h] = id
	s.mu.Unlock()
}

func (k *keyIndex) remove(h KeyHash, id string) {
	s := k.shard(h)
	s.mu.Lock()
	if s.m[h] == id {
		delete(s.m, h)
	}
	s.mu.Unlock()
}

func (k *keyIndex) get(h KeyHash) (string, bool) {
	s := k.shard(h)
	s.mu.RLock()
	id, ok := s.m[h]
	s.mu.RUnlock()
	return id, ok
}

// HashKey is the SHA-256 of an API key, the only form in which keys are kept.
func HashKey(key string) KeyHash { return sha256.Sum256([]byte(key)) }

// Authenticate returns the id of the machine whose key this is. Lookup is by
// SHA-256 of the presented key, so timing reveals nothing usable about
// stored keys. It never takes the FSM lock.
func (f *FSM) Authenticate(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	return f.keys.get(HashKey(key))
}
