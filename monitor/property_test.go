package monitor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// model is a brute-force FSM: it knows every machine and, on each tick,
// scans them all to find the ones that should go offline.
type model struct {
	online    map[string]bool
	lastSeen  map[string]time.Time
	threshold map[string]time.Duration
	termStart time.Time
	grace     time.Duration // 0: per machine default
}

func (md *model) deadline(id string) time.Time {
	th := md.threshold[id]
	g := md.grace
	if g == 0 {
		g = max(th/2, 5*time.Second)
	}
	d := md.lastSeen[id].Add(th)
	if f := md.termStart.Add(g); f.After(d) {
		return f
	}
	return d
}

func (md *model) due(now time.Time) []string {
	var ids []string
	for id, on := range md.online {
		if on && !md.deadline(id).After(now) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestMonitor_MatchesBruteForceScan(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			var grace time.Duration
			if seed%2 == 1 {
				grace = time.Duration(rng.IntN(20)+1) * sec
			}
			bubble(t, func(t *testing.T) { checkAgainstModel(t, rng, grace, seed%4 >= 2) })
		})
	}
}

// checkAgainstModel drives the monitor with random heartbeats (some with a
// new threshold, moving the deadline earlier or later), threshold raises for
// the same last_seen, deletes and ticks, and compares every tick with the
// brute-force model. With batched set, each step's heartbeats arrive through
// one MachinesSeen call instead of one MachineSeen each.
func checkAgainstModel(t *testing.T, rng *rand.Rand, grace time.Duration, batched bool) {
	h := newHarness(t, Options{FailoverGrace: grace, CheckInterval: 500 * time.Millisecond})
	md := &model{
		online:    map[string]bool{},
		lastSeen:  map[string]time.Time{},
		threshold: map[string]time.Duration{},
		termStart: t0,
		grace:     grace,
	}
	const n = 300
	for i := range n {
		id := fmt.Sprintf("m%03d", i)
		md.threshold[id] = time.Duration(rng.IntN(40)+1) * sec
		md.lastSeen[id] = t0.Add(-time.Duration(rng.IntN(120)) * sec)
		md.online[id] = rng.IntN(10) != 0
		if md.online[id] {
			h.src.machines = append(h.src.machines, Machine{ID: id, LastSeen: md.lastSeen[id], Threshold: md.threshold[id]})
		}
	}
	// The fake FSM: accept an offline only if the fencepost still matches.
	var tickIDs []string
	h.prop.setHook(func(_ context.Context, batch []Expired) error {
		for _, e := range batch {
			tickIDs = append(tickIDs, e.ID)
			if md.online[e.ID] && md.lastSeen[e.ID].Equal(e.LastSeen) {
				md.online[e.ID] = false
				h.m.MachineGone(e.ID)
			}
		}
		return nil
	})
	h.start()

	for range 400 {
		now := time.Now()
		// Some heartbeats (with a small age), some recoveries, threshold
		// changes, a delete.
		var batch []Seen
		seen := func(id string, ls time.Time) {
			if batched {
				batch = append(batch, Seen{ID: id, LastSeen: ls, Threshold: md.threshold[id]})
			} else {
				h.m.MachineSeen(id, ls, md.threshold[id])
			}
		}
		for range rng.IntN(20) {
			id := fmt.Sprintf("m%03d", rng.IntN(n))
			if md.threshold[id] == 0 {
				continue // deleted
			}
			if rng.IntN(10) == 0 && md.online[id] {
				// Same last_seen, larger threshold: the later deadline wins.
				md.threshold[id] += time.Duration(rng.IntN(20)+1) * sec
				seen(id, md.lastSeen[id])
				continue
			}
			ls := now.Add(-time.Duration(rng.IntN(3000)) * time.Millisecond)
			if !ls.After(md.lastSeen[id]) {
				continue
			}
			if rng.IntN(4) == 0 {
				// A new threshold: the deadline may move earlier or later.
				md.threshold[id] = time.Duration(rng.IntN(40)+1) * sec
			}
			md.lastSeen[id] = ls
			md.online[id] = true
			seen(id, ls)
		}
		if batched {
			h.m.MachinesSeen(batch)
		}
		checkHeap(t, h.m)
		if rng.IntN(20) == 0 {
			id := fmt.Sprintf("m%03d", rng.IntN(n))
			delete(md.online, id)
			delete(md.threshold, id)
			h.m.MachineGone(id)
		}
		next := now.Add(500 * time.Millisecond)
		want := md.due(next)
		tickIDs = nil
		h.step(500 * time.Millisecond)
		got := slices.Clone(tickIDs)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("at %v: proposed %v, brute force says %v", next.Sub(t0), got, want)
		}
		online := 0
		for _, on := range md.online {
			if on {
				online++
			}
		}
		if tr := h.m.Tracked(); tr != online {
			t.Fatalf("at %v: tracked %d, online %d", next.Sub(t0), tr, online)
		}
	}
}
