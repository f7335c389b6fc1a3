package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lunasentri/lunasentri/notify"
)

// payload is the JSON body of docs/api.md's "Webhook delivery". Field order is
// the documented order; receivers and external tests read it as written.
type payload struct {
	Event      string `json:"event"`
	ID         string `json:"id"`
	OccurredAt string `json:"occurred_at"`
	Test       bool   `json:"test,omitempty"`
	// Reason and Message (offline events, docs/api.md "Heartbeat signals") and
	// Reminder (docs/api.md "Channel policy") are top-level beside event and id.
	Reason   string         `json:"reason,omitempty"`
	Message  string         `json:"message,omitempty"`
	Reminder int            `json:"reminder,omitempty"`
	Machine  machinePayload `json:"machine"`
}

type machinePayload struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Hostname    string            `json:"hostname"`
	Description string            `json:"description"`
	Status      string            `json:"status"`
	LastSeen    *string           `json:"last_seen"` // null before the first heartbeat
	Labels      map[string]string `json:"labels"`    // {} never null
	// Issue 13: what the agent last reported; absent until it reports.
	Agent *agentPayload `json:"agent,omitempty"`
}

// agentPayload is the machine's "agent" object, as GET /v1/machines shows it.
type agentPayload struct {
	Hostname     string          `json:"hostname"`
	AgentVersion string          `json:"agent_version"`
	Info         json.RawMessage `json:"info"` // {} when none
	ReportedAt   string          `json:"reported_at"`
}

// formatTime renders a time the way the HTTP API does (time.Time's JSON
// form: RFC 3339 with sub-second digits only when present), in UTC, so a
// receiver can match a webhook's occurred_at against GET /v1/events.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// encode builds the body for ev. Errors are permanent: the event itself is
// unusable and no retry can fix it.
func encode(ev notify.Event, now time.Time) ([]byte, payload, error) {
	p := payload{Event: ev.Type, ID: ev.ID}
	switch ev.Type {
	case notify.EventDigest:
		return encodedDigest(ev)
	case notify.EventOffline, notify.EventOnline, notify.EventFlapping:
		if ev.ID == "" {
			return nil, p, ErrMissingEventID
		}
		if ev.Type == notify.EventOffline {
			// Every offline says why; events recorded before reasons
			// existed were all missed beats.
			p.Reason = ev.Reason
			if p.Reason == "" {
				p.Reason = notify.ReasonSilence
			}
			p.Message = ev.Message
		}
		if ev.Reminder > 0 {
			p.Reminder = ev.Reminder
		}
	case notify.EventTest:
		p.Test = true
		if p.ID == "" {
			// A test message is not an FSM event, so it may come without an
			// ID; X-LunaSentri-Delivery must still be set.
			id, err := randomID()
			if err != nil {
				return nil, p, err
			}
			p.ID = id
		}
	default:
		return nil, p, fmt.Errorf("%w %q", ErrUnknownEventType, ev.Type)
	}

	occurred := ev.OccurredAt
	if occurred.IsZero() {
		occurred = now
	}
	p.OccurredAt = formatTime(occurred)

	m := ev.Machine
	p.Machine = machinePayload{
		ID:          m.ID,
		Name:        m.Name,
		Hostname:    m.Hostname,
		Description: m.Description,
		Status:      m.Status,
		Labels:      m.Labels,
	}
	if p.Machine.Status == "" {
		// The transition implies the status; saying so is kinder to
		// receivers than an empty string.
		switch ev.Type {
		case notify.EventOffline:
			p.Machine.Status = "offline"
		case notify.EventOnline:
			p.Machine.Status = "online"
		}
	}
	if m.LastSeen != nil && !m.LastSeen.IsZero() {
		s := formatTime(*m.LastSeen)
		p.Machine.LastSeen = &s
	}
	if p.Machine.Labels == nil {
		p.Machine.Labels = map[string]string{}
	}
	if a := m.Agent; a != nil {
		p.Machine.Agent = &agentPayload{Hostname: a.Hostname, AgentVersion: a.AgentVersion,
			Info: a.Info, ReportedAt: formatTime(a.ReportedAt)}
		if len(p.Machine.Agent.Info) == 0 {
			p.Machine.Agent.Info = json.RawMessage(`{}`)
		}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, p, fmt.Errorf("webhook: encode body: %w", err)
	}
	return body, p, nil
}

func randomID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("webhook: test event id: %w", err)
	}
	return "test-" + hex.EncodeToString(b[:]), nil
}
