package transport

import (
	"encoding/json"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// machineView is a machine as the API shows it (docs/api.md). The key hash never
// leaves the FSM.
type machineView struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Hostname         string            `json:"hostname"`
	Description      string            `json:"description"`
	Labels           map[string]string `json:"labels"`
	Status           fsm.Status        `json:"status"`
	LastSeen         *time.Time        `json:"last_seen"`
	StatusChangedAt  *time.Time        `json:"status_changed_at"`
	OfflineThreshold string            `json:"offline_threshold"`
	CreatedAt        *time.Time        `json:"created_at,omitempty"`
	Flapping         bool              `json:"flapping"`
	Reason           string            `json:"reason,omitempty"`
	Message          string            `json:"message,omitempty"`
	// Issue 13: what the agent last reported; null until it reports.
	Agent *agentView `json:"agent"`
}

// agentView is a machine's "agent" object (docs/api.md "Machines").
type agentView struct {
	Hostname     string          `json:"hostname"`
	AgentVersion string          `json:"agent_version"`
	Info         json.RawMessage `json:"info"` // {} when the agent sent none
	ReportedAt   time.Time       `json:"reported_at"`
}

var emptyInfo = json.RawMessage(`{}`)

// agentViewOf is nil for a machine whose agent never reported facts.
func agentViewOf(f *fsm.AgentFacts) *agentView {
	if f == nil {
		return nil
	}
	v := &agentView{Hostname: f.Hostname, AgentVersion: f.AgentVersion, Info: f.Info, ReportedAt: f.ReportedAt.UTC()}
	if len(v.Info) == 0 {
		v.Info = emptyInfo
	}
	return v
}

// displayHostname is the hostname a machine shows: the registered one, or
// the agent's when it was registered without one.
func displayHostname(m *fsm.Machine) string {
	if m.Hostname == "" && m.Agent != nil {
		return m.Agent.Hostname
	}
	return m.Hostname
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func (a *API) machineView(m fsm.Machine) machineView {
	labels := m.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return machineView{
		ID: m.ID, Name: m.Name, Hostname: displayHostname(&m), Description: m.Description,
		Agent:            agentViewOf(m.Agent),
		Labels:           labels,
		Status:           m.Status,
		LastSeen:         timePtr(m.LastSeen),
		StatusChangedAt:  timePtr(m.StatusChangedAt),
		OfflineThreshold: m.Threshold(a.opts.OfflineThreshold).String(),
		CreatedAt:        timePtr(m.CreatedAt),
		Flapping:         m.Flapping,
		Reason:           m.Reason,
		Message:          m.Message,
	}
}

type deliveryView struct {
	Channel   string     `json:"channel"`
	Type      string     `json:"channel_type"`
	State     string     `json:"state"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	Digest    string     `json:"digest,omitempty"`
}

type eventView struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	OccurredAt time.Time      `json:"occurred_at"`
	Machine    machineView    `json:"machine"`
	DownFor    string         `json:"down_for,omitempty"`
	Reason     string         `json:"reason,omitempty"`
	Message    string         `json:"message,omitempty"`
	Deliveries []deliveryView `json:"deliveries"`
}

func (a *API) eventView(ev fsm.Event) eventView {
	v := eventView{
		ID: ev.ID, Type: ev.Type, OccurredAt: ev.OccurredAt.UTC(),
		Machine:    a.machineView(ev.Machine),
		Deliveries: make([]deliveryView, 0, len(ev.Deliveries)),
		Reason:     ev.Reason, Message: ev.Message,
	}
	if ev.DownFor > 0 {
		v.DownFor = ev.DownFor.Round(time.Millisecond).String()
	}
	for _, d := range ev.Deliveries {
		v.Deliveries = append(v.Deliveries, deliveryView{
			Channel: d.Channel, Type: d.ChannelType, State: d.State, Attempts: d.Attempts,
			LastError: d.LastError, UpdatedAt: timePtr(d.UpdatedAt), Digest: d.Digest,
		})
	}
	return v
}

// channelView never includes the secret.
type channelView struct {
	Name      string            `json:"name"`
	Type      string            `json:"type"`
	URL       string            `json:"url,omitempty"`
	ChatID    string            `json:"chat_id,omitempty"`
	Match     map[string]string `json:"match"`
	HasSecret bool              `json:"has_secret,omitempty"`
	CreatedAt *time.Time        `json:"created_at,omitempty"`
	policyView

	// Settings of the further channel types (issue 15); never a password,
	// routing key or token.
	URLs      []string          `json:"urls,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	BasicAuth *basicAuthView    `json:"basic_auth,omitempty"`
	Topic     string            `json:"topic,omitempty"`
	To        []string          `json:"to,omitempty"`
	From      string            `json:"from,omitempty"`
}

// basicAuthView shows who an alertmanager channel authenticates as.
type basicAuthView struct {
	Username string `json:"username"`
}

func channelViewOf(c fsm.Channel, redactURL func(string) string) channelView {
	match := c.Match
	if match == nil {
		match = map[string]string{}
	}
	url := c.URL
	if url != "" && redactURL != nil {
		url = redactURL(url)
	}
	v := channelView{
		Name: c.Name, Type: c.Type, URL: url, ChatID: c.ChatID, Match: match,
		HasSecret: c.Secret != "", CreatedAt: timePtr(c.CreatedAt),
		policyView: policyViewOf(c.Policy),
	}
	moreChannelView(c, redactURL, &v)
	return v
}

// moreChannelView fills the view of the further channel types (issue 15).
func moreChannelView(c fsm.Channel, redactURL func(string) string, v *channelView) {
	v.HasSecret = hasSecret(c)
	if c.Type == fsm.ChannelSlack && c.URL != "" {
		v.URL = redactChatURL(c.URL)
	}
	for _, u := range c.URLs {
		if redactURL != nil {
			u = redactURL(u)
		}
		v.URLs = append(v.URLs, u)
	}
	v.Labels, v.Topic, v.To, v.From = c.Labels, c.Topic, c.To, c.From
	if c.Username != "" {
		v.BasicAuth = &basicAuthView{Username: c.Username}
	}
}
