package notify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Event types carried by notifications. They are part of the external
// contract (docs/api.md): webhook "event" field and X-LunaSentri-Event header.
const (
	EventOffline = "machine.offline"
	EventOnline  = "machine.online"
	// EventTest marks a test message sent by POST /v1/channels/{name}/test.
	EventTest = "test"
	// EventFlapping is the one notice a channel gets when a machine starts
	// flapping (docs/api.md "Flapping").
	EventFlapping = "machine.flapping"
	// EventDigest is the type of a digest (docs/api.md "Digest").
	EventDigest = "machine.digest"
)

// Offline reasons (docs/api.md "Heartbeat signals").
const (
	ReasonSilence  = "silence"  // no beat within the threshold
	ReasonReported = "reported" // the agent reported a failure
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
	// Reason is why an offline happened (ReasonSilence, ReasonReported);
	// empty for other types. Message is what a reported failure said.
	Reason  string
	Message string
	// Reminder is N for the Nth reminder of a machine still offline; 0 for
	// the transition itself. A reminder's ID is its own delivery id.
	Reminder int
}

// Digest is several events sent to one channel as one message, because the
// channel was in a storm (docs/api.md "Digest"). Which events go into which digest
// is decided by the leader and replicated before the send, so ID and Events
// are the same after any failover.
type Digest struct {
	ID         string
	OccurredAt time.Time
	// GroupBy is the channel's group_by: label names whose values break
	// down the counts.
	GroupBy []string
	Events  []Event // each exactly as it would be sent alone
}

// DigestGroup is one group_by breakdown row: the label values and counts.
type DigestGroup struct {
	Labels  map[string]string
	Offline int
	Online  int
}

// Counts are the digest's totals by transition (reminders of an offline
// count as offline).
func (d Digest) Counts() (offline, online int) {
	for _, ev := range d.Events {
		switch ev.Type {
		case EventOffline:
			offline++
		case EventOnline:
			online++
		}
	}
	return offline, online
}

// Groups breaks the events down by the GroupBy labels' values, in order of
// first appearance; nil when GroupBy is empty.
func (d Digest) Groups() []DigestGroup {
	if len(d.GroupBy) == 0 {
		return nil
	}
	var out []DigestGroup
	index := map[string]int{}
	for _, ev := range d.Events {
		labels := make(map[string]string, len(d.GroupBy))
		key := ""
		for _, name := range d.GroupBy {
			v := ev.Machine.Labels[name]
			labels[name] = v
			key += name + "\x00" + v + "\x00"
		}
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, DigestGroup{Labels: labels})
		}
		switch ev.Type {
		case EventOffline:
			out[i].Offline++
		case EventOnline:
			out[i].Online++
		}
	}
	return out
}

// DigestNotifier is what every channel type implements beside Notifier: one
// delivery of a whole digest. Retryability as for Notify.
type DigestNotifier interface {
	NotifyDigest(ctx context.Context, d Digest) (retryable bool, err error)
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

	Agent *Agent // issue 13: nil until the agent reported facts
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
