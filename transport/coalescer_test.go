package transport_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/transport"
)

var base = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func drain(c *transport.Coalescer) map[string]time.Time {
	m := make(map[string]time.Time)
	c.DrainInto(m)
	return m
}

func TestCoalescer_LatestPerMachineWins(t *testing.T) {
	c := transport.NewCoalescer()
	c.Record("a", base.Add(2*time.Second))
	c.Record("a", base.Add(1*time.Second)) // older, arrives late: ignored
	c.Record("a", base.Add(3*time.Second))
	c.Record("b", base)
	c.Record("b", base) // equal: still one entry
	if got := c.Len(); got != 2 {
		t.Fatalf("Len = %d, want 2", got)
	}
	got := drain(c)
	want := map[string]time.Time{"a": base.Add(3 * time.Second), "b": base}
	if len(got) != len(want) {
		t.Fatalf("drained %v, want %v", got, want)
	}
	for id, at := range want {
		if !got[id].Equal(at) {
			t.Errorf("%s: %s, want %s", id, got[id], at)
		}
	}
	if c.Len() != 0 || len(drain(c)) != 0 {
		t.Errorf("coalescer not empty after DrainInto")
	}
}

// TestCoalescer_DrainAppendOnePerMachineAndEmpties: the flusher's usual
// drain (issue 14) gives each machine's newest beat once, leaves nothing
// behind, and the coalescer takes new beats after it, also past the size
// at which a shard's map is replaced.
func TestCoalescer_DrainAppendOnePerMachineAndEmpties(t *testing.T) {
	c := transport.NewCoalescer()
	for round := 0; round < 3; round++ {
		n := []int{10, 300_000, 50}[round]
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("m%d", i)
			c.Record(id, base.Add(time.Duration(round)*time.Hour))
			c.Record(id, base.Add(time.Duration(round)*time.Hour+time.Second))
		}
		got := c.DrainAppend(nil)
		if len(got) != n || c.Len() != 0 {
			t.Fatalf("round %d: drained %d (want %d), %d left", round, len(got), n, c.Len())
		}
		seen := map[string]bool{}
		for _, d := range got {
			if seen[d.ID] || !d.At.Equal(base.Add(time.Duration(round)*time.Hour+time.Second)) {
				t.Fatalf("round %d: %s twice or not its newest beat (%s)", round, d.ID, d.At)
			}
			seen[d.ID] = true
		}
	}
}

func TestCoalescer_DrainIntoMergesKeepingTheNewer(t *testing.T) {
	c := transport.NewCoalescer()
	c.Record("newer-in-coalescer", base.Add(5*time.Second))
	c.Record("older-in-coalescer", base.Add(1*time.Second))
	c.Record("only-in-coalescer", base)
	dst := map[string]time.Time{
		"newer-in-coalescer": base.Add(4 * time.Second),
		"older-in-coalescer": base.Add(2 * time.Second),
		"only-in-dst":        base.Add(7 * time.Second),
	}
	c.DrainInto(dst)
	want := map[string]time.Time{
		"newer-in-coalescer": base.Add(5 * time.Second),
		"older-in-coalescer": base.Add(2 * time.Second),
		"only-in-coalescer":  base,
		"only-in-dst":        base.Add(7 * time.Second),
	}
	if len(dst) != len(want) {
		t.Fatalf("dst = %v, want %v", dst, want)
	}
	for id, at := range want {
		if !dst[id].Equal(at) {
			t.Errorf("%s: %s, want %s", id, dst[id], at)
		}
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d after drain", c.Len())
	}
}

func TestCoalescer_LenCountsMachinesNotBeats(t *testing.T) {
	c := transport.NewCoalescer()
	if c.Len() != 0 {
		t.Fatalf("new coalescer Len = %d", c.Len())
	}
	for i := range 1000 {
		c.Record(fmt.Sprintf("m%d", i%250), base.Add(time.Duration(i)))
	}
	if got := c.Len(); got != 250 {
		t.Errorf("Len = %d, want 250", got)
	}
}

// Many goroutines record and one drains concurrently (run with -race): no
// beat is lost and each machine ends with its newest time.
func TestCoalescer_ConcurrentRecordAndDrain(t *testing.T) {
	const goroutines, machines, perG = 8, 200, 2000
	c := transport.NewCoalescer()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	merged := make(map[string]time.Time)
	var drains int
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-stop:
				c.DrainInto(merged)
				return
			default:
				c.DrainInto(merged)
				_ = c.Len()
				drains++
			}
		}
	}()
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				// Goroutine g's newest beat for a machine is at a known time.
				c.Record(fmt.Sprintf("m%d", (g*perG+i)%machines), base.Add(time.Duration(g*perG+i)))
			}
		})
	}
	wg.Wait()
	close(stop)
	<-drained
	if len(merged) != machines {
		t.Fatalf("%d machines drained, want %d", len(merged), machines)
	}
	// The newest beat of machine k is the largest j < goroutines*perG with
	// j % machines == k.
	total := goroutines * perG
	for k := range machines {
		last := total - machines + k
		if want := base.Add(time.Duration(last)); !merged[fmt.Sprintf("m%d", k)].Equal(want) {
			t.Errorf("m%d: %s, want %s", k, merged[fmt.Sprintf("m%d", k)], want)
		}
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d after final drain", c.Len())
	}
	t.Logf("%d concurrent drains", drains)
}
