package transport

import (
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// Channel types beside webhook and telegram (issue 15, docs/api.md "More channel
// types"). The type-specific rules (URL shapes, label names, addresses) are
// the channel packages' own, reached through Options.ValidateChannel; this
// file only says which request fields belong to which type.

const channelTypeList = "webhook, telegram, alertmanager, slack, pagerduty, ntfy or email"

// DefaultAlertmanagerRepeat is the repeat_interval an alertmanager channel
// gets when none is set: Alertmanager forgets a firing alert that is not
// re-sent before its endsAt, so its channel always re-posts (one minute, as
// Prometheus re-sends; the notifier makes alerts valid for four intervals).
// It equals notify/alertmanager.DefaultRepeatInterval (a server test checks).
const DefaultAlertmanagerRepeat = time.Minute

// channelFields says which settings each type takes (besides type, name,
// match and the policy).
var channelFields = map[string][]string{
	fsm.ChannelWebhook:      {"url", "secret"},
	fsm.ChannelTelegram:     {"chat_id"},
	fsm.ChannelAlertmanager: {"url", "urls", "labels", "basic_auth"},
	fsm.ChannelSlack:        {"url"},
	fsm.ChannelPagerDuty:    {"routing_key", "url"},
	fsm.ChannelNtfy:         {"url", "topic", "token"},
	fsm.ChannelEmail:        {"to", "from"},
}

// checkChannelFields refuses a setting that belongs to another type, naming
// the types it belongs to.
func checkChannelFields(req channelRequest) error {
	allowed, known := channelFields[req.Type]
	if !known {
		return nil // the type itself is refused by the caller
	}
	set := map[string]bool{
		"url": req.URL != "", "secret": req.Secret != "", "chat_id": req.ChatID != "",
		"urls": len(req.URLs) > 0, "labels": len(req.Labels) > 0, "basic_auth": req.BasicAuth != nil,
		"routing_key": req.RoutingKey != "", "topic": req.Topic != "", "token": req.Token != "",
		"to": len(req.To) > 0, "from": req.From != "",
	}
	for _, f := range []string{"url", "secret", "chat_id", "urls", "labels", "basic_auth", "routing_key", "topic", "token", "to", "from"} {
		if !set[f] || slices.Contains(allowed, f) {
			continue
		}
		var owners []string
		for _, t := range []string{fsm.ChannelWebhook, fsm.ChannelTelegram, fsm.ChannelAlertmanager, fsm.ChannelSlack, fsm.ChannelPagerDuty, fsm.ChannelNtfy, fsm.ChannelEmail} {
			if slices.Contains(channelFields[t], f) {
				owners = append(owners, t)
			}
		}
		return errors.New(f + " belongs to " + strings.Join(owners, ", ") + " channels, not " + req.Type)
	}
	if req.Type == fsm.ChannelAlertmanager && req.URL != "" && len(req.URLs) > 0 {
		return errors.New("give url or urls, not both")
	}
	if req.Type == fsm.ChannelAlertmanager && len(req.Labels) > 0 {
		if err := validateLabels("labels", req.Labels); err != nil {
			return err
		}
	}
	return nil
}

// moreChannelSettings copies the further types' settings into ch.
func moreChannelSettings(req channelRequest, ch *fsm.Channel) {
	switch req.Type {
	case fsm.ChannelAlertmanager:
		if req.URL != "" {
			ch.URLs = []string{req.URL}
		} else {
			ch.URLs = slices.Clone(req.URLs)
		}
		ch.Labels = maps.Clone(req.Labels)
		if req.BasicAuth != nil {
			ch.Username, ch.Password = req.BasicAuth.Username, req.BasicAuth.Password
		}
	case fsm.ChannelSlack:
		ch.URL = req.URL
	case fsm.ChannelPagerDuty:
		ch.URL, ch.RoutingKey = req.URL, req.RoutingKey
	case fsm.ChannelNtfy:
		ch.URL, ch.Topic, ch.Token = req.URL, req.Topic, req.Token
	case fsm.ChannelEmail:
		ch.To, ch.From = slices.Clone(req.To), req.From
	}
}

// withTypeDefaults fills in what a type needs by default.
func withTypeDefaults(ch *fsm.Channel) {
	if ch.Type == fsm.ChannelAlertmanager && ch.Policy.RepeatInterval == 0 {
		ch.Policy.RepeatInterval = DefaultAlertmanagerRepeat
	}
}

// hasSecret reports whether a channel holds any secret (never shown).
func hasSecret(c fsm.Channel) bool {
	return c.Secret != "" || c.Password != "" || c.RoutingKey != "" || c.Token != ""
}

// redactChatURL hides the path of a chat webhook URL (Slack, Mattermost and
// Rocket.Chat put their secret there).
func redactChatURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable url]"
	}
	return u.Scheme + "://" + u.Host + "/xxxxx"
}

// morePatch is the part of PATCH /v1/channels/{name} that changes issue
// 15's settings: each field replaces the setting when present (secrets can
// be replaced, never read).
type morePatch struct {
	URLs       *[]string          `json:"urls"`
	Labels     *map[string]string `json:"labels"`
	BasicAuth  *basicAuth         `json:"basic_auth"`
	RoutingKey *string            `json:"routing_key"`
	Topic      *string            `json:"topic"`
	Token      *string            `json:"token"`
	To         *[]string          `json:"to"`
	From       *string            `json:"from"`
}

// apply changes ch, refusing a setting of another type.
func (p morePatch) apply(ch *fsm.Channel) error {
	set := map[string]bool{
		"urls": p.URLs != nil, "labels": p.Labels != nil, "basic_auth": p.BasicAuth != nil,
		"routing_key": p.RoutingKey != nil, "topic": p.Topic != nil, "token": p.Token != nil,
		"to": p.To != nil, "from": p.From != nil,
	}
	// url and secret were applied by the caller; they must fit the type.
	if ch.Secret != "" && ch.Type != fsm.ChannelWebhook {
		return errors.New("secret belongs to webhook channels, not " + ch.Type)
	}
	if ch.URL != "" && !slices.Contains(channelFields[ch.Type], "url") {
		return errors.New("url does not belong to " + ch.Type + " channels")
	}
	if ch.Type == fsm.ChannelAlertmanager && ch.URL != "" {
		if p.URLs != nil {
			return errors.New("give url or urls, not both")
		}
		ch.URLs, ch.URL = []string{ch.URL}, ""
	}
	for f, isSet := range set {
		if isSet && !slices.Contains(channelFields[ch.Type], f) {
			return errors.New(f + " does not belong to " + ch.Type + " channels")
		}
	}
	if p.URLs != nil {
		ch.URLs = slices.Clone(*p.URLs)
	}
	if p.Labels != nil {
		if err := validateLabels("labels", *p.Labels); err != nil {
			return err
		}
		ch.Labels = maps.Clone(*p.Labels)
	}
	if p.BasicAuth != nil {
		ch.Username, ch.Password = p.BasicAuth.Username, p.BasicAuth.Password
	}
	if p.RoutingKey != nil {
		ch.RoutingKey = *p.RoutingKey
	}
	if p.Topic != nil {
		ch.Topic = *p.Topic
	}
	if p.Token != nil {
		ch.Token = *p.Token
	}
	if p.To != nil {
		ch.To = slices.Clone(*p.To)
	}
	if p.From != nil {
		ch.From = *p.From
	}
	return nil
}
