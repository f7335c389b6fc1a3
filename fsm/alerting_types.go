package fsm

import (
	"time"
)

// StatusPaused: detection stopped for the machine by an operator (docs/api.md
// "Machines"). It has no deadline, no events and no reminders.
const StatusPaused Status = "paused"

// EventFlapping is the one notice a channel gets when a machine starts
// flapping.
const EventFlapping = "machine.flapping"

// Delivery states of a transition a channel was not sent on its own
// (docs/api.md "Silences", "Digest"). They are final: reconciliation, not the
// dispatcher, decides whether the channel hears of the machine later.
const (
	DeliverySilenced   = "silenced"   // an active silence covered the machine
	DeliveryGrouped    = "grouped"    // sent inside digest Delivery.Digest
	DeliverySuppressed = "suppressed" // the machine was flapping
)

// Offline reasons (docs/api.md "Heartbeat signals").
const (
	ReasonSilence  = "silence"
	ReasonReported = "reported"
)

// Notice kinds: outbox entries that are not a transition's own delivery.
const (
	NoticeDigest    = "digest"    // several notifications in one message
	NoticeReminder  = "reminder"  // a machine still offline
	NoticeFlapping  = "flapping"  // a machine started flapping
	NoticeReconcile = "reconcile" // told state caught up after a suppression, event no longer in history
)

// NoticeCollecting is a digest still gathering transitions; it becomes
// pending when its window closes or it is full.
const NoticeCollecting = "collecting"

// Channel policy defaults and limits (docs/api.md "Channel policy").
const (
	DefaultGroupAfter  = 5
	DefaultGroupWindow = 30 * time.Second
	// MaxDigestEvents: a webhook digest carries at most 1000 events; a
	// fuller digest closes at once and the next transition opens another.
	MaxDigestEvents = 1000
	// MaxGroupAfter and MaxGroupBy bound what a channel may ask for, so the
	// per-channel storm state stays small.
	MaxGroupAfter = 10000
	MaxGroupBy    = 8
	// MinPolicyDuration and MaxPolicyDuration bound every duration of a
	// channel policy and the flap flags.
	MinPolicyDuration = time.Second
	MaxPolicyDuration = 30 * 24 * time.Hour
)

// Flap damping defaults (docs/api.md "Flapping").
const (
	DefaultFlapThreshold = 6
	DefaultFlapWindow    = 10 * time.Minute
)

// AlertingConfig is the cluster-wide alerting settings the leader stamps into
// every command that can make or release a notification, so Apply does not
// depend on a node's flags. Zero values mean the defaults (old log entries
// carry none).
type AlertingConfig struct {
	FlapThreshold int           `json:"flap_threshold,omitempty"`
	FlapWindow    time.Duration `json:"flap_window,omitempty"`
}

func (c AlertingConfig) flapThreshold() int {
	if c.FlapThreshold <= 0 {
		return DefaultFlapThreshold
	}
	return c.FlapThreshold
}

func (c AlertingConfig) flapWindow() time.Duration {
	if c.FlapWindow <= 0 {
		return DefaultFlapWindow
	}
	return c.FlapWindow
}

func (p ChannelPolicy) groupAfter() int {
	if p.GroupAfter <= 0 {
		return DefaultGroupAfter
	}
	return p.GroupAfter
}

func (p ChannelPolicy) groupWindow() time.Duration {
	if p.GroupWindow <= 0 {
		return DefaultGroupWindow
	}
	return p.GroupWindow
}

// MachineAlerting is the notification side's replicated state of one
// machine. It is never shown by the API as is and never copied into events.
type MachineAlerting struct {
	// Told holds the channels last told this machine is offline; a channel
	// not in it was last told online (or nothing, which means the same).
	Told map[string]*Told `json:"told,omitempty"`
	// Flips are the transition times within the flap window, newest last,
	// at most the flap threshold of them.
	Flips []time.Time `json:"flips,omitempty"`
	// Unsent: some channel's told state may differ from the truth because
	// of a suppression; reconciliation looks at it.
	Unsent bool `json:"unsent,omitempty"`
	// TransitionEvent is the event that made the current status, so
	// reconciliation can send it late instead of inventing another.
	TransitionEvent string `json:"transition_event,omitempty"`
}

// Told is one channel's knowledge that the machine is offline.
type Told struct {
	// At is when the channel was last told (the offline, or the latest
	// reminder); the next reminder is due repeat_interval after it.
	At        time.Time `json:"at"`
	Reminders int       `json:"reminders,omitempty"`
}

// Notice is an outbox entry beside transition deliveries: a digest, a
// reminder, a flapping notice or a late (reconciled) transition whose event
// left the history. It carries copies of the events it tells of, so history
// eviction cannot change what it sends.
type Notice struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Channel     string    `json:"channel"`
	ChannelType string    `json:"channel_type"`
	State       string    `json:"state"`
	CreatedAt   time.Time `json:"created_at"`
	// ClosesAt is when a collecting digest stops collecting.
	ClosesAt  time.Time `json:"closes_at,omitempty"`
	GroupBy   []string  `json:"group_by,omitempty"`
	Events    []Event   `json:"events"`
	Attempts  int       `json:"attempts,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// storm is a channel's recent transitions, for "more than group_after
// within group_window", and its collecting digest if any.
type storm struct {
	Channel string      `json:"channel"`
	Recent  []time.Time `json:"recent,omitempty"` // at most group_after+1, oldest first
	Open    string      `json:"open,omitempty"`   // id of the collecting digest
	// The Raft entry being applied and how many of Recent it added: the
	// storm rule counts the notifications before it plus all it brings,
	// once, not again for each of its own. Only meaningful within one
	// Apply, so not in snapshots.
	cmdIndex uint64
	cmdCount int
}
