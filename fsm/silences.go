package fsm

import (
	"fmt"
	"slices"
	"time"

	"github.com/robfig/cron/v3"
)

// Silence states (docs/api.md "Silences and maintenance windows").
const (
	SilencePending = "pending"
	SilenceActive  = "active"
	SilenceExpired = "expired"
)

// Limits on silences.
const (
	MaxSilences        = 10000 // not yet expired
	MaxExpiredSilences = 1000  // kept as history, oldest dropped first
	MaxSilenceMachines = 1000
	MaxSilenceDuration = 366 * 24 * time.Hour
)

// cronParser reads the five-field cron expressions of maintenance windows.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Silence mutes notifications (never recording) for the machines it
// selects, once (StartsAt..EndsAt) or as a recurring maintenance window
// (Schedule + Duration in Timezone, optionally bounded by StartsAt/EndsAt).
type Silence struct {
	ID        string            `json:"id"`
	Matchers  map[string]string `json:"matchers,omitempty"`
	Machines  []string          `json:"machines,omitempty"`
	StartsAt  time.Time         `json:"starts_at"`
	EndsAt    time.Time         `json:"ends_at"` // zero: a window with no end
	Schedule  string            `json:"schedule,omitempty"`
	Timezone  string            `json:"timezone,omitempty"`
	Duration  time.Duration     `json:"duration,omitempty"`
	Comment   string            `json:"comment"`
	CreatedBy string            `json:"created_by,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	// ExpiredAt is set when an operator expired the silence early.
	ExpiredAt time.Time `json:"expired_at,omitempty"`

	sched    cron.Schedule
	machines map[string]struct{}
}

// CompileSilence checks a silence and prepares it for evaluation. Proposers
// call it to reject bad input with a clear message; Apply calls it again so
// a bad command can never enter the state.
func CompileSilence(s *Silence) error {
	if len(s.Matchers) == 0 && len(s.Machines) == 0 {
		return fmt.Errorf("a silence needs at least one matcher or machine")
	}
	if len(s.Machines) > MaxSilenceMachines {
		return fmt.Errorf("a silence names at most %d machines", MaxSilenceMachines)
	}
	if s.StartsAt.IsZero() {
		return fmt.Errorf("starts_at is required")
	}
	if !s.EndsAt.IsZero() && !s.EndsAt.After(s.StartsAt) {
		return fmt.Errorf("ends_at must be after starts_at")
	}
	s.machines = make(map[string]struct{}, len(s.Machines))
	for _, n := range s.Machines {
		s.machines[n] = struct{}{}
	}
	if s.Schedule == "" {
		if s.Timezone != "" {
			return fmt.Errorf("timezone belongs to a recurring window (schedule)")
		}
		if s.EndsAt.IsZero() {
			return fmt.Errorf("a one-off silence needs ends_at or duration")
		}
		if s.EndsAt.Sub(s.StartsAt) > MaxSilenceDuration {
			return fmt.Errorf("a silence lasts at most %s", MaxSilenceDuration)
		}
		return nil
	}
	if s.Duration < time.Second || s.Duration > MaxSilenceDuration {
		return fmt.Errorf("a maintenance window needs a duration from 1s to %s", MaxSilenceDuration)
	}
	tz := s.Timezone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return fmt.Errorf("unknown timezone %q", s.Timezone)
	}
	sched, err := cronParser.Parse(s.Schedule)
	if err != nil {
		return fmt.Errorf("schedule %q is not a five-field cron expression: %v", s.Schedule, err)
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		spec.Location = loc
	}
	s.sched = sched
	return nil
}

// ActiveAt reports whether the silence mutes at t.
func (s *Silence) ActiveAt(t time.Time) bool {
	if t.Before(s.StartsAt) || s.endedAt(t) {
		return false
	}
	if s.sched == nil {
		return true
	}
	// The window that could cover t started in (t-duration, t]; Next gives
	// the first start after t-duration.
	start := s.sched.Next(t.Add(-s.Duration))
	return !start.IsZero() && !start.After(t)
}

func (s *Silence) endedAt(t time.Time) bool {
	if !s.ExpiredAt.IsZero() && !t.Before(s.ExpiredAt) {
		return true
	}
	return !s.EndsAt.IsZero() && !t.Before(s.EndsAt)
}

// StateAt is pending, active or expired at t.
func (s *Silence) StateAt(t time.Time) string {
	switch {
	case s.endedAt(t):
		return SilenceExpired
	case s.ActiveAt(t):
		return SilenceActive
	default:
		return SilencePending
	}
}

// NextChange is the first time after t at which ActiveAt may change; zero
// when it never will.
func (s *Silence) NextChange(t time.Time) time.Time {
	if s.endedAt(t) {
		return time.Time{}
	}
	var next time.Time
	consider := func(c time.Time) {
		if !c.IsZero() && c.After(t) && (next.IsZero() || c.Before(next)) {
			next = c
		}
	}
	consider(s.StartsAt)
	consider(s.EndsAt)
	consider(s.ExpiredAt)
	if s.sched != nil {
		if start := s.sched.Next(t.Add(-s.Duration)); !start.IsZero() {
			if start.After(t) {
				consider(start)
			} else {
				consider(start.Add(s.Duration))
			}
		}
	}
	return next
}

// Covers reports whether the silence selects machine m (by name, or every
// matcher among its labels).
func (s *Silence) Covers(m *Machine) bool {
	if _, ok := s.machines[m.Name]; ok {
		return true
	}
	if len(s.Matchers) == 0 {
		return false
	}
	for k, v := range s.Matchers {
		if lv, ok := m.Labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// silencedAt reports whether an active silence covers m at t. The caller
// holds the lock. Silences are few next to machines; a linear pass is fine.
func (f *FSM) silencedAt(m *Machine, t time.Time) bool {
	for _, id := range f.silenceOrder {
		s := f.silences[id]
		if s.ActiveAt(t) && s.Covers(m) {
			return true
		}
	}
	return false
}

func (f *FSM) createSilence(c CreateSilence, fx *effects) *ApplyResult {
	s := c.Silence
	if s.ID == "" {
		return &ApplyResult{Err: fmt.Errorf("%w: silence id is required", ErrBadCommand)}
	}
	if _, ok := f.silences[s.ID]; ok {
		return &ApplyResult{Err: fmt.Errorf("%w: silence %s exists", ErrBadCommand, s.ID)}
	}
	if err := CompileSilence(&s); err != nil {
		return &ApplyResult{Err: fmt.Errorf("%w: %v", ErrBadCommand, err)}
	}
	live := 0
	for _, id := range f.silenceOrder {
		if !f.silences[id].endedAt(c.At) {
			live++
		}
	}
	if live >= MaxSilences {
		return &ApplyResult{Err: fmt.Errorf("%w: at most %d silences", ErrLimit, MaxSilences)}
	}
	f.insertSilence(&s)
	f.trimSilences(c.At)
	out := s
	return &ApplyResult{Silence: &out}
}

func (f *FSM) insertSilence(s *Silence) {
	f.silences[s.ID] = s
	f.silenceOrder = append(f.silenceOrder, s.ID)
}

// trimSilences drops the oldest expired silences beyond MaxExpiredSilences.
func (f *FSM) trimSilences(at time.Time) {
	expired := 0
	for _, id := range f.silenceOrder {
		if f.silences[id].endedAt(at) {
			expired++
		}
	}
	if expired <= MaxExpiredSilences {
		return
	}
	drop := expired - MaxExpiredSilences
	f.silenceOrder = slices.DeleteFunc(f.silenceOrder, func(id string) bool {
		if drop > 0 && f.silences[id].endedAt(at) {
			delete(f.silences, id)
			drop--
			return true
		}
		return false
	})
}

// expireSilence ends a silence now and reconciles at once: an outage that
// began under it and is still going is sent now.
func (f *FSM) expireSilence(index uint64, c ExpireSilence, fx *effects) *ApplyResult {
	s, ok := f.silences[c.ID]
	if !ok {
		return &ApplyResult{Err: ErrSilenceNotFound}
	}
	at := c.At.UTC()
	if !s.endedAt(at) {
		s.ExpiredAt = at
	}
	out := *s
	f.reconcile(index, at, c.Alerting, fx)
	return &ApplyResult{Silence: &out}
}
