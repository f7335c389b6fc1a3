package notify

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// backoff is the wait after the attempt-th failed attempt (1-based):
// exponential from initial, capped at maxWait, with equal jitter (half the
// step fixed, half random) so retries from a mass outage spread out yet the
// wait still grows every time. A receiver's Retry-After hint is a floor,
// not a cap: it may exceed maxWait (the age budget still applies).
func backoff(initial, maxWait time.Duration, attempt int, hint time.Duration, jitter func(time.Duration) time.Duration) time.Duration {
	step := initial
	for i := 1; i < attempt && step < maxWait; i++ {
		if step > maxWait/2 { // also keeps the doubling from overflowing
			step = maxWait
			break
		}
		step *= 2
	}
	step = min(step, maxWait)
	half := step / 2
	wait := half + jitter(step-half)
	return max(wait, hint)
}

// jitter returns a uniformly random duration in [0, n].
func jitter(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	return rand.N(n + 1)
}

// waitHeap orders backing-off tasks by their next attempt time. Tasks know
// their index so one can be removed when the outbox drops it.
type waitHeap struct{ items []*task }

func (h *waitHeap) min() *task {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

func (h *waitHeap) push(t *task) { heap.Push((*waitHeapImpl)(h), t) }

func (h *waitHeap) remove(t *task) {
	if t.hidx >= 0 && t.hidx < len(h.items) && h.items[t.hidx] == t {
		heap.Remove((*waitHeapImpl)(h), t.hidx)
	}
}

// waitHeapImpl is waitHeap as a container/heap.Interface, kept apart so
// the loop cannot call Push or Pop without the heap invariants.
type waitHeapImpl waitHeap

func (h *waitHeapImpl) Len() int           { return len(h.items) }
func (h *waitHeapImpl) Less(i, j int) bool { return h.items[i].next.Before(h.items[j].next) }
func (h *waitHeapImpl) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].hidx = i
	h.items[j].hidx = j
}

func (h *waitHeapImpl) Push(x any) {
	t := x.(*task)
	t.hidx = len(h.items)
	h.items = append(h.items, t)
}

func (h *waitHeapImpl) Pop() any {
	n := len(h.items) - 1
	t := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	t.hidx = -1
	return t
}
