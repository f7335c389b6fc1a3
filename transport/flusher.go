package transport

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// agedBeat is one machine's newest heartbeat as an age, the only form in
// which heartbeats travel between nodes: the leader turns ages into times
// with its own clock, so skew between nodes cannot cause a false alert.
type agedBeat struct {
	ID    string `json:"i"`
	AgeUS int64  `json:"a"` // microseconds since this node received it
}

type beatBatch struct {
	Node  string     `json:"node"`
	Beats []agedBeat `json:"beats"`
}

// flusher ships the coalescer's contents to the leader every interval.
// Beats that cannot be delivered (no leader, partition, error) stay pending
// and merge with newer ones; nothing is dropped.
type flusher struct {
	api     *API
	pending map[string]time.Time
	// drained is reused by flushes that start with nothing pending.
	drained []DrainedBeat
	// lastOK is when this node last knew its heartbeats reach the leader
	// (Unix nanos): a successful flush, or nothing to flush with a leader
	// known.
	lastOK atomic.Int64
	// pendingN mirrors len(pending) for metrics read off the flush goroutine.
	pendingN atomic.Int64
}

func newFlusher(api *API) *flusher {
	f := &flusher{api: api, pending: make(map[string]time.Time)}
	f.lastOK.Store(time.Now().UnixNano())
	return f
}

// healthyAt reports whether heartbeats accepted here will reach the leader.
// The caller passes its clock reading: the heartbeat path reads the clock
// once.
func (f *flusher) healthyAt(now time.Time) bool {
	return now.UnixNano()-f.lastOK.Load() <= int64(f.api.opts.IntakeUnhealthyAfter)
}

func (f *flusher) run(ctx context.Context) {
	t := time.NewTicker(f.api.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// One last try so beats taken just before shutdown are not lost.
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			f.flush(sctx)
			cancel()
			return
		case <-t.C:
			f.flush(ctx)
		}
	}
}

// maxKeptDrained bounds the drained slice kept between flushes.
const maxKeptDrained = 1 << 16

func (f *flusher) flush(ctx context.Context) {
	defer func() { f.pendingN.Store(int64(len(f.pending))) }()
	if len(f.pending) == 0 {
		// The usual case: the last flush delivered everything, so the
		// beats go out straight from the coalescer, with no map merge.
		f.drained = f.api.coalescer.DrainAppend(f.drained[:0])
	} else {
		// A failed flush kept beats: the coalescer's join them (the newer
		// of two wins) and they all go out again.
		f.api.coalescer.DrainInto(f.pending)
		f.drained = f.drained[:0]
		for id, at := range f.pending {
			f.drained = append(f.drained, DrainedBeat{ID: id, At: at})
		}
		clear(f.pending)
	}
	f.flushDrained(ctx)
	if cap(f.drained) > maxKeptDrained {
		f.drained = nil // a burst does not pin its room
	} else {
		clear(f.drained) // drop the ids for the collector
	}
}

// flushDrained delivers f.drained in chunks of MaxBatchBeats; what a
// failed chunk and the ones after it carry becomes pending.
func (f *flusher) flushDrained(ctx context.Context) {
	if len(f.drained) == 0 {
		if _, _, ok := f.api.opts.Consensus.Leader(); ok {
			f.lastOK.Store(time.Now().UnixNano())
		}
		return
	}
	start := time.Now()
	limit := f.api.opts.MaxBatchBeats
	batch := make([]agedBeat, 0, min(len(f.drained), limit))
	var err error
	for done := 0; done < len(f.drained) && err == nil; done += len(batch) {
		chunk := f.drained[done:min(done+limit, len(f.drained))]
		now := time.Now() // ages are taken when their chunk ships
		batch = batch[:0]
		for _, d := range chunk {
			batch = append(batch, agedBeat{ID: d.ID, AgeUS: max(now.Sub(d.At).Microseconds(), 0)})
		}
		if err = f.deliverBatch(ctx, batch); err != nil {
			for _, d := range f.drained[done:] {
				f.pending[d.ID] = d.At
			}
		}
	}
	if obs := f.api.opts.ObserveFlush; obs != nil {
		obs(len(f.drained), time.Since(start), err)
	}
	if err != nil {
		f.api.logger.Debug("heartbeat flush failed; keeping beats", "pending", len(f.pending), "error", err)
		return
	}
	f.lastOK.Store(time.Now().UnixNano())
}

// deliverBatch applies a batch on the leader or forwards it to the leader.
func (f *flusher) deliverBatch(ctx context.Context, batch []agedBeat) error {
	if f.api.opts.Consensus.IsLeader() {
		return f.api.applyBeats(ctx, batch)
	}
	return f.api.forwardBeats(ctx, batch)
}

// applyBeats, on the leader, turns ages into leader time and writes one Raft
// entry for the whole batch.
func (a *API) applyBeats(ctx context.Context, batch []agedBeat) error {
	if len(batch) > a.opts.MaxBatchBeats {
		return errors.New("heartbeat batch too large")
	}
	now := time.Now()
	cmd := fsm.HeartbeatBatch{
		At:               now.UTC(),
		DefaultThreshold: a.opts.OfflineThreshold,
		Beats:            make([]fsm.Beat, len(batch)),
		Alerting:         a.opts.Alerting,
	}
	for i, b := range batch {
		cmd.Beats[i] = fsm.Beat{ID: b.ID, SeenAt: now.Add(-time.Duration(b.AgeUS) * time.Microsecond).UnixNano()}
	}
	data, err := fsm.Encode(fsm.CmdHeartbeatBatch, cmd)
	if err != nil {
		return err
	}
	_, _, err = a.opts.Consensus.Apply(ctx, data)
	return err
}
