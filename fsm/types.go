package fsm

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Status is a machine's liveness as the cluster agreed on it.
type Status string

// Machine statuses (docs/api.md). A machine is unknown until its first heartbeat;
// unknown → online makes no event.
const (
	StatusUnknown Status = "unknown"
	StatusOnline  Status = "online"
	StatusOffline Status = "offline"
)

// Event types (docs/api.md).
const (
	EventOffline = "machine.offline"
	EventOnline  = "machine.online"
)

// Delivery states (docs/api.md).
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Channel types.
const (
	ChannelWebhook      = "webhook"
	ChannelTelegram     = "telegram"
	ChannelAlertmanager = "alertmanager"
	ChannelSlack        = "slack"
	ChannelPagerDuty    = "pagerduty"
	ChannelNtfy         = "ntfy"
	ChannelEmail        = "email"
)

// KeyHash is the SHA-256 of a machine's API key. The key itself is never
// stored or replicated.
type KeyHash [32]byte

// MarshalText encodes the hash as hex (the zero hash as ""), a third of the
// size of a JSON array of numbers in commands and snapshots.
func (h KeyHash) MarshalText() ([]byte, error) {
	if h == (KeyHash{}) {
		return []byte{}, nil
	}
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h[:])
	return out, nil
}

// UnmarshalJSON accepts the hex form and the array of 32 numbers that the
// first snapshots and log entries used.
func (h *KeyHash) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		var arr [32]byte
		var nums []int
		if err := json.Unmarshal(b, &nums); err != nil || len(nums) != len(arr) {
			return fmt.Errorf("key hash: want 32 bytes")
		}
		for i, n := range nums {
			if n < 0 || n > 255 {
				return fmt.Errorf("key hash: byte %d out of range", i)
			}
			arr[i] = byte(n)
		}
		*h = arr
		return nil
	}
	// The common case: a plain 64-character hex string, decoded in place
	// (restoring a million machines spends real time here).
	if len(b) == 2+hex.EncodedLen(len(h)) && b[0] == '"' && b[len(b)-1] == '"' {
		if _, err := hex.Decode(h[:], b[1:len(b)-1]); err != nil {
			return fmt.Errorf("key hash: %w", err)
		}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("key hash: %w", err)
	}
	if s == "" {
		*h = KeyHash{}
		return nil
	}
	if hex.DecodedLen(len(s)) != len(h) {
		return fmt.Errorf("key hash: want 64 hex characters")
	}
	_, err := hex.Decode(h[:], []byte(s))
	return err
}

// Machine is one monitored machine as replicated by Raft.
type Machine struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Hostname    string            `json:"hostname"`
	Description string            `json:"description"`
	Labels      map[string]string `json:"labels,omitempty"` // nil when none
	// OfflineThreshold overrides the cluster default when non-zero.
	OfflineThreshold time.Duration `json:"offline_threshold"`
	KeyHash          KeyHash       `json:"key_hash"`
	Status           Status        `json:"status"`
	// LastSeen is the leader's time of the newest heartbeat; zero before the
	// first one. While offline it is the fencepost the offline was decided on.
	LastSeen        time.Time `json:"last_seen"`
	StatusChangedAt time.Time `json:"status_changed_at"`
	CreatedAt       time.Time `json:"created_at"`

	// Alerting (issue 10). Reason and Message say why the machine is
	// offline (ReasonSilence, ReasonReported); empty otherwise.
	Reason   string           `json:"reason,omitempty"`
	Message  string           `json:"message,omitempty"`
	Flapping bool             `json:"flapping,omitempty"`
	Alerting *MachineAlerting `json:"alerting,omitempty"` // nil in events
	// Issue 13: what the machine's agent last reported; nil until it
	// reports anything. Replaced whole on change, never mutated.
	Agent *AgentFacts `json:"agent,omitempty"`
}

// Threshold is the machine's offline threshold given the cluster default.
func (m *Machine) Threshold(clusterDefault time.Duration) time.Duration {
	if m.OfflineThreshold > 0 {
		return m.OfflineThreshold
	}
	return clusterDefault
}

// Channel is a notification channel. Secret is replicated so that any leader
// can sign; it is never returned by the API.
type Channel struct {
	Name      string            `json:"name"`
	Type      string            `json:"type"`
	URL       string            `json:"url,omitempty"`
	Secret    string            `json:"secret,omitempty"`
	ChatID    string            `json:"chat_id,omitempty"`
	Match     map[string]string `json:"match"`
	CreatedAt time.Time         `json:"created_at"`

	// Settings of the further channel types (docs/api.md "More channel types").
	URLs       []string          `json:"urls,omitempty"`        // alertmanager (HA)
	Labels     map[string]string `json:"labels,omitempty"`      // alertmanager extra labels
	Username   string            `json:"username,omitempty"`    // alertmanager basic auth
	Password   string            `json:"password,omitempty"`    // alertmanager basic auth (secret)
	RoutingKey string            `json:"routing_key,omitempty"` // pagerduty (secret)
	Topic      string            `json:"topic,omitempty"`       // ntfy
	Token      string            `json:"token,omitempty"`       // ntfy (secret)
	To         []string          `json:"to,omitempty"`          // email
	From       string            `json:"from,omitempty"`        // email

	Policy ChannelPolicy `json:"policy"`
}

// ChannelPolicy is how a channel wants to be told (docs/api.md "Channel policy").
// Zero values mean the defaults.
type ChannelPolicy struct {
	RepeatInterval time.Duration `json:"repeat_interval,omitempty"` // 0: no reminders
	GroupAfter     int           `json:"group_after,omitempty"`     // 0: DefaultGroupAfter
	GroupWindow    time.Duration `json:"group_window,omitempty"`    // 0: DefaultGroupWindow
	GroupBy        []string      `json:"group_by,omitempty"`
}

// Matches reports whether the channel wants events for a machine with these
// labels: every match pair must be among the labels.
func (c *Channel) Matches(labels map[string]string) bool {
	for k, v := range c.Match {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// Event is one transition with its deliveries (the outbox).
type Event struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	// Machine is a copy of the machine as it was at the transition (no key).
	Machine Machine `json:"machine"`
	// DownFor is how long the machine was offline (online events only).
	DownFor    time.Duration `json:"down_for"`
	Deliveries []Delivery    `json:"deliveries"`
	// Reason and Message of an offline (docs/api.md "Heartbeat signals");
	// Reminder is N for a reminder's body (never in the history).
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	Reminder int    `json:"reminder,omitempty"`
}

// Pending reports whether any delivery of the event is still pending.
func (e *Event) Pending() bool {
	for i := range e.Deliveries {
		if e.Deliveries[i].State == DeliveryPending {
			return true
		}
	}
	return false
}

// Delivery is one event's notification through one channel.
type Delivery struct {
	Channel     string    `json:"channel"`
	ChannelType string    `json:"channel_type"`
	State       string    `json:"state"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Digest is the digest that carried this transition (state grouped).
	Digest string `json:"digest,omitempty"`
}

// Counters are cluster-wide totals kept in replicated state, so every node
// reports the same numbers and they survive restarts and restores.
type Counters struct {
	TransitionsOffline uint64 `json:"transitions_offline"`
	TransitionsOnline  uint64 `json:"transitions_online"`
	DeliveriesDropped  uint64 `json:"deliveries_dropped"`

	// Alerting (issue 10).
	SuppressedSilenced uint64 `json:"suppressed_silenced,omitempty"`
	SuppressedFlapping uint64 `json:"suppressed_flapping,omitempty"`
	FlappingStarted    uint64 `json:"flapping_started,omitempty"`
	DigestsClosed      uint64 `json:"digests_closed,omitempty"`
	DigestsDelivered   uint64 `json:"digests_delivered,omitempty"`
	RemindersQueued    uint64 `json:"reminders_queued,omitempty"`
	RemindersDelivered uint64 `json:"reminders_delivered,omitempty"`
	Reconciled         uint64 `json:"reconciled,omitempty"`
}

// Stats is a cheap summary for metrics and status.
type Stats struct {
	Counters
	Machines          map[Status]int
	Channels          int
	Events            int
	PendingDeliveries int
	// PendingNotices: digests, reminders and notices waiting to be sent;
	// ActiveSilences: silences muting right now (at the time asked).
	PendingNotices int
	ActiveSilences int
}
