package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lunasentri/lunasentri/cluster"
	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/email"
	"github.com/lunasentri/lunasentri/notify/telegram"
	"github.com/lunasentri/lunasentri/notify/webhook"
)

// outbox reads pending deliveries from the local FSM for the dispatcher.
type outbox struct{ fsm *fsm.FSM }

func (o outbox) PendingDeliveries() []notify.Delivery {
	pds := o.fsm.PendingDeliveries()
	notices := o.fsm.PendingNotices()
	out := make([]notify.Delivery, len(pds), len(pds)+len(notices))
	for i, pd := range pds {
		out[i] = notify.Delivery{
			EventID:     pd.Event.ID,
			Channel:     pd.Delivery.Channel,
			Attempts:    pd.Delivery.Attempts,
			LastError:   pd.Delivery.LastError,
			FirstQueued: pd.Event.OccurredAt,
			Event:       notifyEvent(pd.Event),
		}
	}
	for _, n := range notices {
		d := notify.Delivery{
			EventID: n.ID, Channel: n.Channel, Attempts: n.Attempts, LastError: n.LastError,
			FirstQueued: n.CreatedAt,
		}
		if n.Kind == fsm.NoticeDigest {
			dg := &notify.Digest{ID: n.ID, OccurredAt: n.CreatedAt, GroupBy: n.GroupBy, Events: make([]notify.Event, len(n.Events))}
			for i, ev := range n.Events {
				dg.Events[i] = notifyEvent(ev)
			}
			d.Digest = dg
		} else if len(n.Events) == 1 {
			d.Event = notifyEvent(n.Events[0])
		}
		out = append(out, d)
	}
	return out
}

func notifyEvent(ev fsm.Event) notify.Event {
	m := ev.Machine
	if m.Hostname == "" && m.Agent != nil {
		m.Hostname = m.Agent.Hostname
	}
	var lastSeen *time.Time
	if !m.LastSeen.IsZero() {
		t := m.LastSeen.UTC()
		lastSeen = &t
	}
	return notify.Event{
		ID: ev.ID, Type: ev.Type, OccurredAt: ev.OccurredAt, DownFor: ev.DownFor,
		Reason: ev.Reason, Message: ev.Message, Reminder: ev.Reminder,
		Machine: notify.Machine{
			ID: m.ID, Name: m.Name, Hostname: m.Hostname, Description: m.Description,
			Status: string(m.Status), LastSeen: lastSeen, Labels: m.Labels,
			Agent: notifyAgent(m.Agent),
		},
	}
}

// notifyAgent carries the agent's facts into a notification (issue 13); a
// machine registered without a hostname shows the agent's.
func notifyAgent(a *fsm.AgentFacts) *notify.Agent {
	if a == nil {
		return nil
	}
	return &notify.Agent{Hostname: a.Hostname, AgentVersion: a.AgentVersion, Info: a.Info, ReportedAt: a.ReportedAt}
}

// recorder commits the dispatcher's outcomes through Raft.
type recorder struct{ c *cluster.Cluster }

func (r recorder) RecordDeliveries(ctx context.Context, results []notify.Result) error {
	cmd := fsm.RecordDeliveries{At: time.Now().UTC(), Results: make([]fsm.DeliveryResult, len(results))}
	for i, res := range results {
		cmd.Results[i] = fsm.DeliveryResult{
			EventID: res.EventID, Channel: res.Channel, State: string(res.State),
			Attempts: res.Attempts, LastError: res.LastError,
		}
	}
	data, err := fsm.Encode(fsm.CmdRecordDeliveries, cmd)
	if err != nil {
		return err
	}
	_, _, err = r.c.Apply(ctx, data)
	return err
}

// channels builds notifiers from the replicated channel configuration and
// caches them until the configuration changes.
type channels struct {
	fsm      *fsm.FSM
	telegram *telegram.Client
	version  string
	client   *http.Client
	// Issue 15: the node's SMTP settings, its own base URL (alertmanager
	// generatorURL, pagerduty client_url) and the logger of the channels.
	smtp    email.Server
	baseURL string
	logger  hclog.Logger

	mu    sync.Mutex
	cache map[string]cachedNotifier
}

type cachedNotifier struct {
	cfg fsm.Channel
	n   notify.Notifier
}

// channelsOptions are the settings of the channel types beyond webhook and
// telegram (issue 15).
type channelsOptions struct {
	SMTP    email.Server
	BaseURL string // http://ADVERTISE:PORT of this node
	Logger  hclog.Logger
}

func newChannels(f *fsm.FSM, tg *telegram.Client, version string, more channelsOptions) *channels {
	if more.Logger == nil {
		more.Logger = hclog.NewNullLogger()
	}
	return &channels{
		fsm: f, telegram: tg, version: version,
		client: &http.Client{Timeout: webhook.DefaultTimeout},
		cache:  make(map[string]cachedNotifier),
		smtp:   more.SMTP, baseURL: more.BaseURL, logger: more.Logger,
	}
}

func (c *channels) Notifier(name string) (notify.Notifier, string, bool) {
	cfg, err := c.fsm.Channel(name)
	if err != nil {
		return nil, "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cached, ok := c.cache[name]; ok && sameChannel(cached.cfg, cfg) {
		return cached.n, cfg.Type, true
	}
	var n notify.Notifier
	switch cfg.Type {
	case fsm.ChannelWebhook:
		wn, err := webhook.New(webhook.Options{URL: cfg.URL, Secret: cfg.Secret, Client: c.client, Version: c.version})
		if err != nil {
			n = brokenChannel{err: err}
		} else {
			n = wn
		}
	case fsm.ChannelTelegram:
		n = c.telegram.Chat(cfg.ChatID)
	case fsm.ChannelAlertmanager, fsm.ChannelSlack, fsm.ChannelPagerDuty, fsm.ChannelNtfy, fsm.ChannelEmail:
		n = c.moreNotifier(cfg)
	default:
		n = brokenChannel{err: fmt.Errorf("unknown channel type %q", cfg.Type)}
	}
	c.cache[name] = cachedNotifier{cfg: cfg, n: n}
	return n, cfg.Type, true
}

// sameChannel reports whether a cached notifier built from a still fits b:
// every setting of every type, the policy (an alertmanager notifier's
// validity follows repeat_interval) and the creation time (a channel deleted
// and created again under the same name is a new channel).
func sameChannel(a, b fsm.Channel) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return false
	}
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// brokenChannel fails every delivery permanently with the reason, so the
// event records why it was not sent.
type brokenChannel struct{ err error }

func (b brokenChannel) Notify(context.Context, notify.Event) (bool, error) { return false, b.err }

func (b brokenChannel) NotifyDigest(context.Context, notify.Digest) (bool, error) {
	return false, b.err
}

// channelValidator checks settings with the channel packages' own rules;
// email channels also need the node's SMTP sender.
func channelValidator(smtp email.Server) func(fsm.Channel) error {
	return func(ch fsm.Channel) error {
		if err := validateMoreChannel(ch, smtp); err != nil {
			return err
		}
		return validateChannel(ch)
	}
}

// validateChannel checks settings with the channel packages' own rules.
func validateChannel(ch fsm.Channel) error {
	switch ch.Type {
	case fsm.ChannelWebhook:
		if err := webhook.ValidateURL(ch.URL); err != nil {
			return err
		}
		return webhook.ValidateSecret(ch.Secret)
	case fsm.ChannelTelegram:
		return telegram.ValidateChatID(ch.ChatID)
	}
	return nil
}

// testEvent is the clearly marked message POST /v1/channels/{name}/test sends.
func testEvent(nodeID string) notify.Event {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	now := time.Now().UTC()
	return notify.Event{
		ID:         "test-" + hex.EncodeToString(b),
		Type:       notify.EventTest,
		OccurredAt: now,
		Machine: notify.Machine{
			Name: "lunasentri-test", Hostname: nodeID, Description: "test notification from LunaSentri",
			Status: "test", LastSeen: &now, Labels: map[string]string{},
		},
	}
}

// redactURL hides credentials in webhook URLs the API shows.
func redactURL(u string) string { return webhook.RedactURL(u) }
