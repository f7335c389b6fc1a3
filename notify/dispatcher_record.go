package notify

import (
	"context"
	"time"
)

// recordBuffer batches outcomes into RecordDeliveries calls: a Raft entry
// per delivery is too much when ten thousand machines go down at once, but
// a delivered notification must be committed promptly, because until it is
// a new leader would send it again. One call is in flight at a time; a newer
// outcome for the same delivery replaces an older one still buffered.
type recordBuffer struct {
	buf       []Result
	idx       map[deliveryKey]int // position in buf
	firstAt   time.Time           // when buf last became non-empty
	notBefore time.Time           // after a failed call, wait before the next
	flushing  bool
	done      chan flushResult // capacity 1: the flush goroutine never blocks
}

type flushResult struct {
	batch []Result
	err   error
}

func newRecordBuffer() recordBuffer {
	return recordBuffer{idx: make(map[deliveryKey]int), done: make(chan flushResult, 1)}
}

// record buffers res for the next RecordDeliveries call.
func (r *term) record(res Result) {
	b := &r.rec
	k := deliveryKey{res.EventID, res.Channel}
	if i, ok := b.idx[k]; ok {
		b.buf[i] = res
		return
	}
	if len(b.buf) == 0 {
		b.firstAt = r.clock.Now()
	}
	b.idx[k] = len(b.buf)
	b.buf = append(b.buf, res)
}

// flushDue is when the buffer should be flushed; zero if not at all now.
func (r *term) flushDue() time.Time {
	b := &r.rec
	if b.flushing || len(b.buf) == 0 {
		return time.Time{}
	}
	due := b.firstAt.Add(r.flushEvery)
	if len(b.buf) >= r.maxRecord {
		due = b.firstAt
	}
	if b.notBefore.After(due) {
		due = b.notBefore
	}
	return due
}

// maybeFlush starts a RecordDeliveries call if one is due.
func (r *term) maybeFlush() {
	due := r.flushDue()
	if due.IsZero() || r.clock.Now().Before(due) {
		return
	}
	batch := r.takeBatch()
	r.rec.flushing = true
	done := r.rec.done
	go func() {
		err := r.recorder.RecordDeliveries(r.ctx, batch)
		done <- flushResult{batch: batch, err: err}
	}()
}

// takeBatch removes up to maxRecord outcomes from the front of the buffer.
func (r *term) takeBatch() []Result {
	b := &r.rec
	n := min(len(b.buf), r.maxRecord)
	batch := make([]Result, n)
	copy(batch, b.buf[:n])
	rest := b.buf[n:]
	b.buf = make([]Result, len(rest), max(len(rest), 16))
	copy(b.buf, rest)
	clear(b.idx)
	for i, res := range b.buf {
		b.idx[deliveryKey{res.EventID, res.Channel}] = i
	}
	return batch
}

// flushed handles the end of a RecordDeliveries call. On failure, progress
// (pending) outcomes are dropped: a later outcome carries the attempts
// again. Final outcomes are offered again, at most maxRecordTries times in
// all, then given up: the delivery stays finished in this term's memory, so
// this leader does not send it again, and stays pending in the replicated
// outbox, so the next leader does (same event ID; receivers drop the
// duplicate). A Recorder that keeps failing while this node is still leader
// therefore costs three calls per outcome, never a loop of sends.
func (r *term) flushed(fr flushResult) {
	r.rec.flushing = false
	if fr.err == nil {
		r.logger.Trace("recorded delivery outcomes", "count", len(fr.batch))
		return
	}
	now := r.clock.Now()
	r.rec.notBefore = now.Add(r.initial)
	if r.ctx.Err() == nil {
		r.logger.Warn("recording delivery outcomes failed", "count", len(fr.batch), "error", fr.err)
	}
	for _, res := range fr.batch {
		if res.State == StatePending {
			continue
		}
		k := deliveryKey{res.EventID, res.Channel}
		t, ok := r.tasks[k]
		if !ok || t.state != stateFinished {
			continue
		}
		t.recordTries++
		if t.recordTries >= maxRecordTries {
			r.logger.Error("giving up recording delivery outcome; the next leader will send it again",
				"event_id", res.EventID, "channel", res.Channel, "state", string(res.State))
			continue
		}
		if _, newer := r.rec.idx[k]; !newer {
			r.record(res)
		}
	}
}

// finalFlush runs after ctx is cancelled. Sends that completed are worth
// recording if this node can still commit (a graceful shutdown of the
// leader): it saves the next leader a duplicate send. It is bounded by
// finalFlushTimeout so it cannot hold up a leadership change; if it fails,
// the next leader sends those again with the same event IDs.
func (r *term) finalFlush() {
	if r.rec.flushing {
		r.flushed(<-r.rec.done)
	}
	if len(r.rec.buf) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), finalFlushTimeout)
	defer cancel()
	for len(r.rec.buf) > 0 {
		batch := r.takeBatch()
		if err := r.recorder.RecordDeliveries(ctx, batch); err != nil {
			r.logger.Info("could not record delivery outcomes after losing leadership; the next leader resends them",
				"count", len(batch)+len(r.rec.buf), "error", err)
			return
		}
	}
}
