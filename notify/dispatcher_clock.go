package notify

import "time"

// Clock is the dispatcher's view of time. Tests inject a fake one; nil in
// DispatcherOptions means the real clock. (AttemptTimeout is a context
// deadline and always runs on real time.)
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of time.Timer the dispatcher uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// alarm is a timer armed for an absolute time, re-armed only when that
// time changes, so the loop can call set after every event cheaply.
type alarm struct {
	clock Clock
	t     Timer
	at    time.Time
}

// set arms the alarm for at; a zero at disarms it.
func (a *alarm) set(at time.Time) {
	if a.t != nil && at.Equal(a.at) {
		return
	}
	a.stop()
	if at.IsZero() {
		return
	}
	a.at = at
	a.t = a.clock.NewTimer(max(at.Sub(a.clock.Now()), 0))
}

// c is the channel to select on; nil (never ready) while disarmed.
func (a *alarm) c() <-chan time.Time {
	if a.t == nil {
		return nil
	}
	return a.t.C()
}

// fired records that the timer's value was received.
func (a *alarm) fired() { a.t, a.at = nil, time.Time{} }

func (a *alarm) stop() {
	if a.t != nil {
		a.t.Stop()
	}
	a.t, a.at = nil, time.Time{}
}
