//go:build measure

package fsm_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// TestHistory_MemoryPerMachine measures what status history adds per machine
// (issue 12; the budget is 1 KiB a machine in all). It needs a quiet heap, so
// it is built only with the measure tag (an opt-in measurement, not a
// skipped test):
//
//	go test -tags measure -run History_Memory -v ./fsm/
func TestHistory_MemoryPerMachine(t *testing.T) {
	const n = 100_000
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for _, outages := range []int{0, 1, 5, fsm.MaxHistorySegments} {
		h := newHarness(t, fsm.Options{MaxEvents: 1})
		names := make([]string, n)
		for i := range n {
			names[i] = fmt.Sprintf("m%06d", i)
			h.f.ApplyBytes(uint64(i+1), fsm.MustEncode(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: newMachine(names[i], nil, 0)}))
		}
		h.idx = n
		h.beat(t0, t0, names...)
		before := heap()
		at := t0
		for range outages {
			at = at.Add(5 * time.Minute)
			c := fsm.MarkOffline{At: at}
			for _, name := range names {
				c.Machines = append(c.Machines, fsm.OfflineMark{ID: machineID(name), LastSeen: h.machine(name).LastSeen})
			}
			h.ok(fsm.CmdMarkOffline, c)
			at = at.Add(time.Minute)
			h.beat(at, at, names...)
		}
		after := heap()
		t.Logf("%d machines, %d outages each: history adds %.0f bytes a machine", n, outages, float64(int64(after)-int64(before))/n)
		runtime.KeepAlive(h)
	}
}
