package main

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lunasentri/lunasentri/fsm"
)

// applyStall is Apply's latency while a snapshot is taken and persisted
// (issue 14: taking a snapshot must not block Apply for more than 50 ms).
// Latency runs from a batch's arrival to the end of its Apply, so time
// spent waiting behind Snapshot() counts, as it does in Raft, which calls
// Snapshot on the goroutine that runs Apply.
type applyStall struct {
	BeatsPerSec   int     `json:"beats_per_s"`
	BeatsPerBatch int     `json:"beats_per_batch"`
	Baseline      dist    `json:"baseline"` // the same load, no snapshot
	During        dist    `json:"during"`   // from Snapshot() to the end of Persist
	TakeMs        float64 `json:"take_ms"`  // Snapshot() itself
	PersistMs     float64 `json:"persist_ms"`
}

type stallBatch struct {
	data    []byte
	arrived time.Time
}

// measureApplyStall feeds f heartbeat batches for all n machines once per
// 10 s (three batches per 100 ms, one per node's flush), measures Apply
// for a baseline window, then takes a snapshot on the applying goroutine
// and persists it into store while the batches keep coming.
func measureApplyStall(f *fsm.FSM, n int, store raft.SnapshotStore, baseline time.Duration) (applyStall, error) {
	const perSec = 30
	r := applyStall{BeatsPerSec: n / 10, BeatsPerBatch: max(1, n/10/perSec)}
	batches := make(chan stallBatch, 1024)
	stop := make(chan struct{})
	go func() { // the three nodes' flushers
		defer close(batches)
		t := time.NewTicker(time.Second / perSec)
		defer t.Stop()
		next := 0
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				// Leader time moves on by one tick per batch; every beat is
				// newer than the machine's last_seen, so each one changes it.
				c := fsm.HeartbeatBatch{DefaultThreshold: 2 * time.Minute, Beats: make([]fsm.Beat, r.BeatsPerBatch),
					At: scaleT0.Add(10*time.Second + time.Duration(next/r.BeatsPerBatch)*time.Second/perSec)}
				for j := range c.Beats {
					c.Beats[j] = fsm.Beat{ID: scaleID(next % n), SeenAt: c.At.UnixNano()}
					next++
				}
				select {
				case batches <- stallBatch{data: fsm.MustEncode(fsm.CmdHeartbeatBatch, c), arrived: time.Now()}:
				case <-stop:
					return
				}
			}
		}
	}()
	defer func() {
		close(stop)
		for range batches {
		}
	}()

	var base, during []time.Duration
	index := uint64(10)
	apply := func(b stallBatch) time.Duration {
		index++
		if res := f.ApplyBytes(index, b.data); res == nil || res.Err != nil {
			panic(fmt.Sprintf("heartbeat batch refused: %+v", res))
		}
		return time.Since(b.arrived)
	}
	t0 := time.Now()
	for b := range batches {
		base = append(base, apply(b))
		if time.Since(t0) >= baseline {
			break
		}
	}
	// The snapshot, taken where Raft takes it: between two Applies.
	ts := time.Now()
	snap, err := f.Snapshot()
	if err != nil {
		return r, err
	}
	r.TakeMs = ms(time.Since(ts))
	sink, err := store.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		return r, err
	}
	persisted := make(chan error, 1)
	go func() {
		t := time.Now()
		err := snap.Persist(sink)
		r.PersistMs = ms(time.Since(t))
		snap.Release()
		persisted <- err
	}()
	for {
		select {
		case err := <-persisted:
			r.Baseline, r.During = summarize(base), summarize(during)
			return r, err
		case b := <-batches:
			during = append(during, apply(b))
		}
	}
}
