package notify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Event types carried by notifications. They are part of the external
// contract (API.md): webhook "event" field and X-LunaSentri-Event header.
const (
	EventOffline = "machine.offline"
	EventOnline  = "machine.online"
	// EventTest marks a test message sent by POST /v1/channels/{name}/test.
	EventTest = "test"
)

// Event is one notification to deliver: a machine transition (or a test).
type Event struct {
	// ID is the deterministic event id. Receivers deduplicate on it; it is
	// the same on every retry and after any failover.
	ID         string
	Type       string // EventOffline, EventOnline or EventTest
	OccurredAt time.Time
	Machine    Machine
	// DownFor is how long the machine was offline; set on EventOnline only.
	DownFor time.Duration
}

// Machine is the machine as it was when the transition happened.
type Machine struct {
	ID          string
	Name        string
	Hostname    string
	Description string
	Status      string
	LastSeen    *time.Time
	Labels      map[string]string
}

// Notifier delivers one event to one channel. Like Alertmanager's notifiers,
// it says whether a failure is worth retrying: network errors, timeouts,
// 408, 429 and 5xx are; other 4xx answers and bad configuration are not.
type Notifier interface {
	Notify(ctx context.Context, ev Event) (retryable bool, err error)
}

// RetryAfterError is returned by a Notifier when the receiver asked to be
// left alone for a while (Telegram's parameters.retry_after, HTTP
// Retry-After). The dispatcher waits at least After before the next attempt.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter reports the wait a receiver asked for, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}
