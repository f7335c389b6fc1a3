package pagerduty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/internal/httpx"
	"github.com/lunasentri/lunasentri/notify/internal/msgtext"
)

// DefaultURL is the Events API v2 endpoint.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// DefaultSeverity is the severity of an offline machine.
const DefaultSeverity = "critical"

// Severities PagerDuty accepts.
var Severities = []string{"critical", "error", "warning", "info"}

// Sentinel errors.
var (
	ErrInvalidConfig    = errors.New("invalid pagerduty channel")
	ErrUnknownEventType = errors.New("unknown event type")
	ErrEmptyDigest      = errors.New("digest has no events")
)

// Options configures a Notifier for one PagerDuty service integration.
type Options struct {
	RoutingKey string // the integration key (32 characters)
	URL        string // "" → DefaultURL; tests point it at a local server
	Severity   string // "" → DefaultSeverity
	// ClientURL links back to LunaSentri (the node's dashboard). Optional.
	ClientURL string
	Client    *http.Client
	Version   string
	Now       func() time.Time
}

// Notifier sends events to one integration. Safe for concurrent use.
type Notifier struct {
	key, url, severity, clientURL, userAgent string
	now                                      func() time.Time
	http                                     *httpx.Client
}

var (
	_ notify.Notifier       = (*Notifier)(nil)
	_ notify.DigestNotifier = (*Notifier)(nil)
)

// Validate checks a channel's settings; errors are fit for a 400 and never
// repeat the key.
func Validate(routingKey, url, severity string) error {
	k := strings.TrimSpace(routingKey)
	if k == "" {
		return fmt.Errorf("%w: routing_key is required", ErrInvalidConfig)
	}
	if len(k) != len(routingKey) || len(k) < 20 || len(k) > 64 {
		return fmt.Errorf("%w: routing_key must be 20 to 64 characters without spaces (an Events API v2 integration key has 32)", ErrInvalidConfig)
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%w: routing_key may only contain letters, digits, - and _", ErrInvalidConfig)
		}
	}
	if url != "" {
		if err := httpx.ValidateURL("url", url); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
	}
	if severity != "" {
		ok := false
		for _, s := range Severities {
			ok = ok || s == severity
		}
		if !ok {
			return fmt.Errorf("%w: severity must be one of %s", ErrInvalidConfig, strings.Join(Severities, ", "))
		}
	}
	return nil
}

// New validates opts and returns a Notifier.
func New(opts Options) (*Notifier, error) {
	if err := Validate(opts.RoutingKey, opts.URL, opts.Severity); err != nil {
		return nil, err
	}
	n := &Notifier{key: opts.RoutingKey, url: opts.URL, severity: opts.Severity, clientURL: opts.ClientURL, now: opts.Now}
	if n.url == "" {
		n.url = DefaultURL
	}
	if n.severity == "" {
		n.severity = DefaultSeverity
	}
	if n.now == nil {
		n.now = time.Now
	}
	n.userAgent = httpx.UserAgent(opts.Version)
	n.http = httpx.New("pagerduty", opts.Client, n.now, append(httpx.URLSecrets(n.url), opts.RoutingKey)...)
	return n, nil
}

// Event is an Events API v2 request body.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"` // trigger | resolve
	DedupKey    string   `json:"dedup_key"`
	Payload     *Payload `json:"payload,omitempty"` // trigger only
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
}

// Payload is a trigger's payload.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// DedupKey is the key of one machine's incident: the same for its trigger
// and its resolve, and stable across renames (it uses the machine id).
func DedupKey(m notify.Machine) string {
	id := m.ID
	if id == "" {
		id = m.Name
	}
	return "lunasentri/machine/" + id
}

// Notify sends ev as one event.
func (n *Notifier) Notify(ctx context.Context, ev notify.Event) (bool, error) {
	if ev.Type == notify.EventTest {
		return n.test(ctx, ev)
	}
	pe, err := n.build(ev)
	if err != nil {
		return false, err
	}
	return n.post(ctx, pe)
}

// NotifyDigest sends a digest's events in order (see the package doc).
func (n *Notifier) NotifyDigest(ctx context.Context, d notify.Digest) (bool, error) {
	if len(d.Events) == 0 {
		return false, ErrEmptyDigest
	}
	events := make([]Event, 0, len(d.Events))
	for _, ev := range d.Events {
		pe, err := n.build(ev)
		if err != nil {
			return false, err
		}
		events = append(events, pe)
	}
	for i, pe := range events {
		if retryable, err := n.post(ctx, pe); err != nil {
			return retryable, fmt.Errorf("digest event %d of %d: %w", i+1, len(events), err)
		}
	}
	return false, nil
}

// test triggers and at once resolves a test incident, so `channels test`
// proves the key works without leaving an incident open.
func (n *Notifier) test(ctx context.Context, ev notify.Event) (bool, error) {
	key := "lunasentri/test/" + ev.ID
	trigger := Event{RoutingKey: n.key, EventAction: "trigger", DedupKey: key, Client: "LunaSentri", ClientURL: n.clientURL,
		Payload: &Payload{Summary: "LunaSentri test event; no machine changed state", Source: firstNonEmpty(ev.Machine.Hostname, "lunasentri"),
			Severity: "info", Timestamp: rfc3339(n.now()), Class: "test"}}
	if retryable, err := n.post(ctx, trigger); err != nil {
		return retryable, err
	}
	return n.post(ctx, Event{RoutingKey: n.key, EventAction: "resolve", DedupKey: key})
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// build turns one machine event into an Events v2 request.
func (n *Notifier) build(ev notify.Event) (Event, error) {
	m := ev.Machine
	pe := Event{RoutingKey: n.key, DedupKey: DedupKey(m), Client: "LunaSentri", ClientURL: n.clientURL}
	at := ev.OccurredAt
	if at.IsZero() {
		at = n.now()
	}
	details := map[string]any{
		"event": ev.Type, "event_id": ev.ID, "occurred_at": rfc3339(at),
		"machine": m.Name, "hostname": m.Hostname, "last_seen": msgtext.LastSeen(m.LastSeen),
	}
	if len(m.Labels) > 0 {
		details["labels"] = m.Labels
	}
	if m.Description != "" {
		details["description"] = m.Description
	}
	severity := n.severity
	switch ev.Type {
	case notify.EventOnline:
		// A resolve needs only the key; PagerDuty ignores a payload.
		pe.EventAction = "resolve"
		return pe, nil
	case notify.EventOffline:
		pe.EventAction = "trigger"
		reason := ev.Reason
		if reason == "" {
			reason = notify.ReasonSilence
		}
		details["reason"] = reason
		if ev.Message != "" {
			details["message"] = ev.Message
		}
		if ev.Reminder > 0 {
			details["reminder"] = ev.Reminder
		}
	case notify.EventFlapping:
		pe.EventAction = "trigger"
		severity = "warning"
	default:
		return pe, fmt.Errorf("%w %q", ErrUnknownEventType, ev.Type)
	}
	source := firstNonEmpty(m.Hostname, m.Name, m.ID)
	pe.Payload = &Payload{
		Summary: msgtext.Truncate(msgtext.Title(ev)+" — "+msgtext.Reason(ev), 1024), Source: source, Severity: severity,
		Timestamp: rfc3339(at), Component: m.Name, Class: "heartbeat", CustomDetails: details,
	}
	if ev.Type == notify.EventFlapping {
		pe.Payload.Summary = msgtext.Title(ev)
	}
	return pe, nil
}

func (n *Notifier) post(ctx context.Context, pe Event) (bool, error) {
	body, err := json.Marshal(pe)
	if err != nil {
		return false, fmt.Errorf("pagerduty: encode event: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", n.userAgent)
	_, retryable, err := n.http.Post(ctx, n.url, h, body)
	return retryable, err
}
