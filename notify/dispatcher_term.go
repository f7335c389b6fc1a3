package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// deliveryKey identifies one delivery: an event to one channel.
type deliveryKey struct{ eventID, channel string }

type taskState int

const (
	stateQueued   taskState = iota // ready, waiting for an in-flight slot
	stateWaiting                   // backing off until next
	stateInFlight                  // a goroutine is verifying leadership and sending
	stateFinished                  // final outcome known (or dropped); kept until the outbox no longer lists it
	stateDropped                   // removed from the outbox while queued; skipped by the queue
)

// task is the dispatcher's in-memory view of one delivery during a term.
// Only the loop goroutine touches it.
type task struct {
	key         deliveryKey
	d           Delivery
	channelType string
	attempts    int // attempts made, including those recorded before this term
	lastErr     string
	state       taskState
	next        time.Time // while waiting
	hidx        int       // index in the wait heap while waiting
	gone        bool      // removed from the outbox while in flight
	recordTries int       // failed attempts to record the final outcome
}

// outcome is what an attempt goroutine reports back to the loop.
type outcome struct {
	task      *task
	notLeader error // VerifyLeader failed: nothing was sent
	retryable bool
	timedOut  bool // our AttemptTimeout expired, not the term's context
	err       error
}

// term is the state of one Run: everything here dies with the leadership
// term, and only the loop goroutine touches it.
type term struct {
	*Dispatcher
	ctx context.Context

	tasks      map[deliveryKey]*task
	ready      map[string][]*task // per channel, FIFO
	readyChans []string           // channels with queued tasks, served round robin
	rr         int
	waiting    waitHeap
	holdUntil  time.Time // after a VerifyLeader failure, start nothing until then
	inflight   int
	perChan    map[string]int
	outcomes   chan outcome // capacity maxInFlight: senders never block
	wg         sync.WaitGroup

	rec recordBuffer
	// draining: Drain was asked; no new attempts. drainDone is closed once
	// the attempts in flight finished and were recorded.
	draining   bool
	drainDone  chan struct{}
	wakeAlarm  alarm
	flushAlarm alarm
}

func newTerm(d *Dispatcher, ctx context.Context) *term {
	return &term{
		Dispatcher: d,
		ctx:        ctx,
		tasks:      make(map[deliveryKey]*task),
		ready:      make(map[string][]*task),
		perChan:    make(map[string]int),
		outcomes:   make(chan outcome, d.maxInFlight),
		rec:        newRecordBuffer(),
		wakeAlarm:  alarm{clock: d.clock},
		flushAlarm: alarm{clock: d.clock},
	}
}

func (r *term) loop() error {
	r.logger.Debug("dispatcher started")
	r.reload()
	for {
		r.dispatch()
		r.maybeFlush()
		r.armAlarms()
		select {
		case <-r.ctx.Done():
			r.shutdown()
			return nil
		case <-r.kick:
			r.reload()
		case o := <-r.outcomes:
			r.handle(o)
			r.checkDrained()
		case done := <-r.drain:
			r.draining, r.drainDone = true, done
			r.checkDrained()
		case <-r.wakeAlarm.c():
			r.wakeAlarm.fired()
			r.promote()
		case <-r.flushAlarm.c():
			r.flushAlarm.fired()
		case fr := <-r.rec.done:
			r.flushed(fr)
		}
	}
}

// reload reads the outbox: new deliveries are queued, deliveries the outbox
// no longer lists (recorded final, or deleted with their machine or
// channel) are forgotten. Deliveries already known keep their in-memory
// state, which is ahead of the replica's by the outcomes not yet committed.
func (r *term) reload() {
	pending := r.outbox.PendingDeliveries()
	listed := make(map[deliveryKey]struct{}, len(pending))
	added := 0
	for _, dl := range pending {
		k := deliveryKey{dl.EventID, dl.Channel}
		listed[k] = struct{}{}
		if _, ok := r.tasks[k]; ok {
			continue
		}
		t := &task{key: k, d: dl, attempts: dl.Attempts, lastErr: dl.LastError, hidx: -1}
		r.tasks[k] = t
		r.enqueue(t)
		added++
	}
	for k, t := range r.tasks {
		if _, ok := listed[k]; ok {
			continue
		}
		delete(r.tasks, k)
		switch t.state {
		case stateQueued:
			t.state = stateDropped
		case stateWaiting:
			r.waiting.remove(t)
			t.state = stateDropped
		case stateInFlight:
			t.gone = true
		}
	}
	if added > 0 {
		r.logger.Debug("new deliveries", "count", added, "known", len(r.tasks))
	}
}

func (r *term) enqueue(t *task) {
	t.state = stateQueued
	ch := t.key.channel
	if len(r.ready[ch]) == 0 {
		r.readyChans = append(r.readyChans, ch)
	}
	r.ready[ch] = append(r.ready[ch], t)
}

// popReady returns the next live queued task of ch, or nil.
func (r *term) popReady(ch string) *task {
	q := r.ready[ch]
	defer func() {
		if len(q) == 0 {
			delete(r.ready, ch)
		} else {
			r.ready[ch] = q
		}
	}()
	for len(q) > 0 {
		t := q[0]
		q[0] = nil
		q = q[1:]
		if t.state == stateQueued {
			return t
		}
	}
	return nil
}

// dispatch starts attempts while slots are free, one task per channel per
// round so a busy channel cannot starve the others, and never more than
// maxPerChan per channel so a hanging channel holds only its own slots.
// checkDrained finishes a Drain once nothing is in flight: the outcomes
// are recorded before Drain returns.
func (r *term) checkDrained() {
	if !r.draining || r.drainDone == nil || r.inflight > 0 {
		return
	}
	r.finalFlush()
	close(r.drainDone)
	r.drainDone = nil
}

func (r *term) dispatch() {
	if r.draining || r.ctx.Err() != nil || r.clock.Now().Before(r.holdUntil) {
		return
	}
	for r.inflight < r.maxInFlight && len(r.readyChans) > 0 {
		progressed := false
		n := len(r.readyChans)
		r.rr++
		for i := 0; i < n && r.inflight < r.maxInFlight; i++ {
			ch := r.readyChans[(r.rr+i)%n]
			if r.perChan[ch] >= r.maxPerChan {
				continue
			}
			if t := r.popReady(ch); t != nil {
				r.begin(t)
				progressed = true
			}
		}
		kept := r.readyChans[:0]
		for _, ch := range r.readyChans {
			if len(r.ready[ch]) > 0 {
				kept = append(kept, ch)
			}
		}
		clear(r.readyChans[len(kept):])
		r.readyChans = kept
		if !progressed {
			return
		}
	}
}

// begin starts one attempt of t, or finishes t without one when its
// channel is gone or its budget is already spent.
func (r *term) begin(t *task) {
	n, channelType, ok := r.channels.Notifier(t.key.channel)
	if !ok {
		// The channel was deleted; the FSM drops its outbox entries too.
		// Keep the task as finished so the outbox read until then does not
		// queue it again.
		r.logger.Debug("dropping delivery for unknown channel", "event_id", t.key.eventID, "channel", t.key.channel)
		t.state = stateFinished
		return
	}
	t.channelType = channelType
	now := r.clock.Now()
	if t.attempts >= r.maxAttempts {
		r.fail(t, now, "retry budget exhausted")
		return
	}
	if r.tooOld(t, now) {
		r.fail(t, now, fmt.Sprintf("not delivered within %s", r.maxAge))
		return
	}
	t.state = stateInFlight
	r.inflight++
	r.perChan[t.key.channel]++
	r.wg.Add(1)
	go r.attempt(t, n, t.d)
}

// send delivers one outbox entry: a digest through the channel's
// DigestNotifier, anything else through Notify.
func send(ctx context.Context, n Notifier, d Delivery) (bool, error) {
	if d.Digest == nil {
		return n.Notify(ctx, d.Event)
	}
	dn, ok := n.(DigestNotifier)
	if !ok {
		return false, errors.New("this channel type cannot send digests")
	}
	return dn.NotifyDigest(ctx, *d.Digest)
}

// attempt runs on its own goroutine: confirm leadership, then send once.
func (r *term) attempt(t *task, n Notifier, d Delivery) {
	defer r.wg.Done()
	o := outcome{task: t}
	if err := r.leadership.VerifyLeader(r.ctx); err != nil {
		o.notLeader = err
		r.outcomes <- o
		return
	}
	if err := r.ctx.Err(); err != nil {
		// Leadership was lost while we verified it: send nothing.
		o.notLeader = err
		r.outcomes <- o
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
	o.retryable, o.err = send(ctx, n, d)
	o.timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded) && r.ctx.Err() == nil
	cancel()
	r.outcomes <- o
}

// handle applies an attempt's outcome.
func (r *term) handle(o outcome) {
	t := o.task
	r.inflight--
	r.perChan[t.key.channel]--
	if r.perChan[t.key.channel] == 0 {
		delete(r.perChan, t.key.channel)
	}
	now := r.clock.Now()
	if t.gone {
		// Deleted while we were sending; the FSM has nothing to record.
		return
	}
	// Once the term is over only a completed send matters: a cancelled
	// attempt is neither recorded nor charged to the budget.
	cancelled := r.ctx.Err() != nil
	if cancelled && (o.notLeader != nil || o.err != nil) {
		return
	}
	if o.notLeader != nil {
		// Nothing was sent and no attempt is counted. Pause every send for
		// a moment: leadership is probably being lost and Run is about to
		// be cancelled, or this was a blip.
		r.logger.Warn("leadership not confirmed; not sending", "event_id", t.key.eventID, "channel", t.key.channel, "error", o.notLeader)
		r.holdUntil = now.Add(r.initial)
		r.wait(t, r.holdUntil)
		return
	}
	t.attempts++
	if o.err == nil {
		t.lastErr = ""
		r.finish(t, now, StateDelivered)
		r.count(t, OutcomeDelivered)
		if r.observeDelay != nil && !t.d.FirstQueued.IsZero() {
			r.observeDelay(t.channelType, now.Sub(t.d.FirstQueued))
		}
		return
	}
	t.lastErr = o.err.Error()
	if !o.retryable && !o.timedOut {
		r.logger.Warn("delivery failed permanently", "event_id", t.key.eventID, "channel", t.key.channel, "attempt", t.attempts, "error", o.err)
		r.fail(t, now, "")
		return
	}
	if t.attempts >= r.maxAttempts {
		r.logger.Warn("delivery failed: retry budget exhausted", "event_id", t.key.eventID, "channel", t.key.channel, "attempts", t.attempts, "error", o.err)
		r.fail(t, now, "")
		return
	}
	hint, _ := RetryAfter(o.err)
	wait := backoff(r.initial, r.maxBackoff, t.attempts, hint, jitter)
	next := now.Add(wait)
	if r.tooOld(t, next) {
		r.logger.Warn("delivery failed: next attempt would exceed max age", "event_id", t.key.eventID, "channel", t.key.channel, "attempts", t.attempts, "error", o.err)
		r.fail(t, now, "")
		return
	}
	r.logger.Debug("delivery will be retried", "event_id", t.key.eventID, "channel", t.key.channel, "attempt", t.attempts, "backoff", wait, "error", o.err)
	r.count(t, OutcomeRetried)
	// Record progress so GET /v1/events shows it and a new leader
	// continues the budget instead of starting over.
	r.record(Result{EventID: t.key.eventID, Channel: t.key.channel, State: StatePending, Attempts: t.attempts, LastError: t.lastErr, At: now})
	r.wait(t, next)
}

// tooOld reports whether at is past t's age budget.
func (r *term) tooOld(t *task, at time.Time) bool {
	return !t.d.FirstQueued.IsZero() && at.Sub(t.d.FirstQueued) > r.maxAge
}

// fail finishes t as failed; reason is used only if no attempt left an
// error to report.
func (r *term) fail(t *task, now time.Time, reason string) {
	if t.lastErr == "" {
		t.lastErr = reason
	}
	r.finish(t, now, StateFailed)
	r.count(t, OutcomeFailed)
}

func (r *term) finish(t *task, now time.Time, state State) {
	t.state = stateFinished
	r.record(Result{EventID: t.key.eventID, Channel: t.key.channel, State: state, Attempts: t.attempts, LastError: t.lastErr, At: now})
}

func (r *term) count(t *task, outcome string) {
	if r.onOutcome != nil {
		r.onOutcome(t.channelType, outcome)
	}
}

func (r *term) wait(t *task, next time.Time) {
	t.state = stateWaiting
	t.next = next
	r.waiting.push(t)
}

// promote queues every waiting task whose time has come.
func (r *term) promote() {
	now := r.clock.Now()
	for {
		t := r.waiting.min()
		if t == nil || t.next.After(now) {
			return
		}
		r.waiting.remove(t)
		r.enqueue(t)
	}
}

func (r *term) armAlarms() {
	var wake time.Time
	if t := r.waiting.min(); t != nil {
		wake = t.next
	}
	r.wakeAlarm.set(wake)
	r.flushAlarm.set(r.flushDue())
}

// shutdown runs once ctx is cancelled: in-flight sends were cancelled with
// it; wait for them, keep what was really delivered, record it if this
// node still can, and leave nothing running.
func (r *term) shutdown() {
	r.wakeAlarm.stop()
	r.flushAlarm.stop()
	r.wg.Wait()
	close(r.outcomes)
	for o := range r.outcomes {
		t := o.task
		// Only a send that completed counts; a cancelled attempt is
		// neither recorded nor charged to the budget.
		if o.notLeader == nil && o.err == nil && !t.gone {
			t.attempts++
			r.finish(t, r.clock.Now(), StateDelivered)
			r.count(t, OutcomeDelivered)
		}
	}
	r.finalFlush()
	r.logger.Debug("dispatcher stopped")
}
