package transport

import (
	"context"
	"sync/atomic"
	"time"
)

// freezeGuard notices that this process was paused (SIGSTOP, a VM pause, a
// very long GC stop): heartbeat requests that waited in its sockets while
// it slept are read the moment it wakes and would look fresh, although the
// agents gave up on them long ago and the machines may have died since.
// A watchdog ticks every freezeTick; a gap much longer than that means the
// process did not run. For a short while after waking, heartbeats get 503
// (agents retry elsewhere or at their next beat) instead of counting.
type freezeGuard struct {
	start time.Time
	// lastTick and blockedUntil are monotonic offsets from start, in
	// nanoseconds; the heartbeat path reads them with one atomic load each.
	lastTick     atomic.Int64
	blockedUntil atomic.Int64
}

const (
	freezeTick  = 100 * time.Millisecond
	freezeGap   = time.Second // a tick this late means we were paused
	freezeBlock = time.Second // how long after waking beats are refused
)

func newFreezeGuard() *freezeGuard {
	return &freezeGuard{start: time.Now()}
}

func (g *freezeGuard) now() int64 { return int64(time.Since(g.start)) }

// run ticks until ctx ends.
func (g *freezeGuard) run(ctx context.Context) {
	t := time.NewTicker(freezeTick)
	defer t.Stop()
	g.lastTick.Store(g.now())
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := g.now()
			if gap := now - g.lastTick.Load(); gap > int64(freezeGap) {
				g.blockedUntil.Store(now + int64(freezeBlock))
			}
			g.lastTick.Store(now)
		}
	}
}

// suspectAt reports whether a heartbeat read now may have waited out a
// pause: the watchdog has not run for freezeGap (we may just have woken,
// before it could), or it saw a pause moments ago.
//
// The caller passes its clock reading: the heartbeat path reads the clock
// once.
func (g *freezeGuard) suspectAt(t time.Time) bool {
	last := g.lastTick.Load()
	if last == 0 {
		return false // watchdog not started (tests without RunFlusher)
	}
	now := int64(t.Sub(g.start))
	return now-last > int64(freezeGap) || now < g.blockedUntil.Load()
}
