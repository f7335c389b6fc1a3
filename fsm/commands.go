package fsm

import (
	"encoding/json"
	"fmt"
	"time"
)

// CommandType is the first byte of every Raft log entry. The numbers are
// append-only: never renumber or reuse one, or old logs and snapshots stop
// decoding after an upgrade.
type CommandType uint8

// Command types. Append new ones at the end. Ranges are reserved so work on
// separate features cannot collide: 9–39 alerting (silences, pause, told
// state, digests, reminders, flapping, edits), 40–49 tokens and security,
// 50–59 agent facts and ecosystem, 60–69 channels, 70–79 people's pages.
const (
	CmdRegisterMachine  CommandType = 1
	CmdDeleteMachine    CommandType = 2
	CmdRotateKey        CommandType = 3
	CmdHeartbeatBatch   CommandType = 4
	CmdMarkOffline      CommandType = 5
	CmdCreateChannel    CommandType = 6
	CmdDeleteChannel    CommandType = 7
	CmdRecordDeliveries CommandType = 8
	CmdUpdateMachine    CommandType = 9
	CmdPauseMachine     CommandType = 10
	CmdResumeMachine    CommandType = 11
	CmdReportFailure    CommandType = 12
	CmdUpdateChannel    CommandType = 13
	CmdCreateSilence    CommandType = 14
	CmdExpireSilence    CommandType = 15
	CmdAlertingTick     CommandType = 16
)

// RegisterMachine adds a machine. Its ID, key hash and CreatedAt are chosen
// by the proposing node, never inside Apply.
type RegisterMachine struct {
	Machine Machine `json:"machine"`
}

// DeleteMachine removes a machine and drops its pending deliveries.
type DeleteMachine struct {
	Name string `json:"name"`
}

// RotateKey replaces a machine's key hash; the old key stops working.
type RotateKey struct {
	Name    string  `json:"name"`
	KeyHash KeyHash `json:"key_hash"`
}

// HeartbeatBatch carries heartbeats the leader turned into timestamps with
// its own clock. At is the leader's time of the proposal; DefaultThreshold is
// the leader's cluster default, stamped so Apply stays deterministic.
type HeartbeatBatch struct {
	At               time.Time      `json:"at"`
	DefaultThreshold time.Duration  `json:"default_threshold"`
	Beats            []Beat         `json:"beats"`
	Alerting         AlertingConfig `json:"alerting,omitzero"`
}

// Beat is one machine's newest heartbeat, as leader time (Unix nanoseconds).
type Beat struct {
	ID     string `json:"i"`
	SeenAt int64  `json:"t"`
}

// MarkOffline is the leader's proposal that machines passed their deadline.
// Each carries the last_seen the leader saw (a fencepost): Apply ignores a
// machine whose last_seen moved since.
type MarkOffline struct {
	At       time.Time      `json:"at"`
	Machines []OfflineMark  `json:"machines"`
	Alerting AlertingConfig `json:"alerting,omitzero"`
}

// OfflineMark is one machine in a MarkOffline proposal.
type OfflineMark struct {
	ID       string    `json:"id"`
	LastSeen time.Time `json:"last_seen"`
}

// CreateChannel adds a notification channel.
type CreateChannel struct {
	Channel Channel `json:"channel"`
}

// DeleteChannel removes a channel and drops its pending deliveries.
type DeleteChannel struct {
	Name string `json:"name"`
}

// RecordDeliveries commits the dispatcher's outcomes: attempts so far, or a
// final delivered/failed state.
type RecordDeliveries struct {
	At      time.Time        `json:"at"`
	Results []DeliveryResult `json:"results"`
}

// DeliveryResult is one delivery's outcome.
type DeliveryResult struct {
	EventID   string `json:"event_id"`
	Channel   string `json:"channel"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

// UpdateMachine changes what PATCH /v1/machines/{name} names; nil fields
// stay as they are. A changed threshold moves the deadline at once.
type UpdateMachine struct {
	Name             string             `json:"name"`
	Labels           *map[string]string `json:"labels,omitempty"`
	Description      *string            `json:"description,omitempty"`
	Hostname         *string            `json:"hostname,omitempty"`
	OfflineThreshold *time.Duration     `json:"offline_threshold,omitempty"`
	DefaultThreshold time.Duration      `json:"default_threshold"`
}

// PauseMachine stops detection for a machine: no deadline, no events, no
// reminders; what channels were told is forgotten.
type PauseMachine struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// ResumeMachine returns a paused machine to unknown until its next beat.
type ResumeMachine struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// ReportFailure puts a machine offline now because its agent said so.
type ReportFailure struct {
	ID       string         `json:"id"`
	Message  string         `json:"message,omitempty"`
	At       time.Time      `json:"at"`
	Alerting AlertingConfig `json:"alerting,omitzero"`
}

// UpdateChannel replaces a channel's settings (the proposer merged the
// PATCH into the current ones and validated the result). CreatedAt stays.
type UpdateChannel struct {
	Channel Channel `json:"channel"`
}

// CreateSilence adds a silence or maintenance window; At is the proposer's
// time, for the limit on live silences.
type CreateSilence struct {
	Silence Silence   `json:"silence"`
	At      time.Time `json:"at"`
}

// ExpireSilence ends a silence at At and reconciles at once.
type ExpireSilence struct {
	ID       string         `json:"id"`
	At       time.Time      `json:"at"`
	Alerting AlertingConfig `json:"alerting,omitzero"`
}

// AlertingTick is the leader's time-driven step: close digests whose window
// passed, release held notifications whose suppression ended, queue
// reminders that fell due. The leader proposes it only when one is due.
type AlertingTick struct {
	At       time.Time      `json:"at"`
	Alerting AlertingConfig `json:"alerting,omitzero"`
}

// Encode frames a command: type byte, then its JSON body.
func Encode(t CommandType, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", t, err)
	}
	out := make([]byte, 0, len(b)+1)
	out = append(out, byte(t))
	return append(out, b...), nil
}

// MustEncode is Encode for bodies that cannot fail to marshal (our own
// command structs); it panics only on a programming error.
func MustEncode(t CommandType, body any) []byte {
	b, err := Encode(t, body)
	if err != nil {
		panic(err)
	}
	return b
}

func decodeBody(data []byte, v any) error {
	var err error
	if c, ok := v.(*HeartbeatBatch); ok {
		err = decodeHeartbeatBatch(data, c) // the bulk of the log (issue 14)
	} else {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	return nil
}
