package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
)

// `channels add` for issue 15's channel types. The server validates every
// setting (400 with the reason); the CLI only checks that the required flags
// are there.

// moreChannelCommands are the table rows of `channels add TYPE`.
func moreChannelCommands() []command {
	rows := []struct{ kind, args, summary, help string }{
		{"alertmanager", "NAME -url URL [-url URL]... [-label k=v]... [-username U -password P] [-match k=v]...",
			"post alerts to (an HA) Alertmanager",
			"Adds an Alertmanager channel: offline machines become MachineOffline alerts, posted to\nevery -url (an HA set) and re-posted every minute while offline."},
		{"slack", "NAME -url URL [-match k=v]...", "Slack, Mattermost or Rocket.Chat incoming webhook",
			"Adds a chat channel: a Slack, Mattermost or Rocket.Chat incoming webhook URL."},
		{"pagerduty", "NAME -routing-key KEY [-url URL] [-match k=v]...", "PagerDuty Events API v2",
			"Adds a PagerDuty channel (Events API v2): offline triggers, online resolves the same incident."},
		{"ntfy", "NAME -url URL -topic TOPIC [-ntfy-token T] [-match k=v]...", "ntfy push",
			"Adds an ntfy channel: a push to TOPIC on the ntfy server at URL."},
		{"email", "NAME -to ADDR [-to ADDR]... [-from ADDR] [-match k=v]...", "email through the server's -smtp-addr",
			"Adds an email channel, sent through the server's -smtp-addr."},
	}
	out := make([]command, 0, len(rows))
	for _, r := range rows {
		out = append(out, command{path: "channels add " + r.kind, argv: []string{"NAME"}, api: adminAPI,
			args: r.args, summary: r.summary, help: r.help, setup: setupChannelsAddMore(r.kind)})
	}
	return out
}

func setupChannelsAddMore(kind string) func(*cli, *flag.FlagSet) runner {
	return func(_ *cli, fs *flag.FlagSet) runner {
		cmd := "channels add " + kind
		var (
			urls, to                                listFlag
			labels                                  = kvFlag{}
			urlFlag, username, password, key, topic *string
			token, from                             *string
		)
		switch kind {
		case "alertmanager":
			fs.Var(&urls, "url", "Alertmanager base `URL`, e.g. http://am:9093 (repeat for an HA set; required)")
			fs.Var(labels, "label", "extra alert label `key=value` (repeatable)")
			username = fs.String("username", "", "basic auth user")
			password = fs.String("password", "", "basic auth password")
		case "slack", "ntfy":
			urlFlag = fs.String("url", "", "webhook or server `URL` (required)")
			if kind == "ntfy" {
				topic = fs.String("topic", "", "ntfy `TOPIC` (required)")
				token = fs.String("ntfy-token", "", "ntfy access `TOKEN` (-token is the LunaSentri API token)")
			}
		case "pagerduty":
			key = fs.String("routing-key", "", "Events API v2 integration `KEY` (required)")
			urlFlag = fs.String("url", "", "Events API `URL` (default https://events.pagerduty.com/v2/enqueue)")
		case "email":
			fs.Var(&to, "to", "recipient `ADDR` (repeatable; required)")
			from = fs.String("from", "", "sender `ADDR` (default: the server's -smtp-from)")
		}
		match := kvFlag{}
		fs.Var(match, "match", "only machines with label `key=value` (repeatable)")
		return func(ctx context.Context, x *call) error {
			body := map[string]any{"type": kind, "name": x.pos[0]}
			need := func(flagName, v string) error {
				if v == "" {
					return usageErrorf("%s: -%s is required", cmd, flagName)
				}
				return nil
			}
			switch kind {
			case "alertmanager":
				if len(urls) == 0 {
					return usageErrorf("%s: -url is required", cmd)
				}
				body["urls"] = []string(urls)
				if len(labels) > 0 {
					body["labels"] = map[string]string(labels)
				}
				if *username != "" || *password != "" {
					body["basic_auth"] = map[string]string{"username": *username, "password": *password}
				}
			case "slack":
				if err := need("url", *urlFlag); err != nil {
					return err
				}
				body["url"] = *urlFlag
			case "pagerduty":
				if err := need("routing-key", *key); err != nil {
					return err
				}
				body["routing_key"] = *key
				if *urlFlag != "" {
					body["url"] = *urlFlag
				}
			case "ntfy":
				if err := need("url", *urlFlag); err != nil {
					return err
				}
				if err := need("topic", *topic); err != nil {
					return err
				}
				body["url"], body["topic"] = *urlFlag, *topic
				if *token != "" {
					body["token"] = *token
				}
			case "email":
				if len(to) == 0 {
					return usageErrorf("%s: -to is required", cmd)
				}
				body["to"] = []string(to)
				if *from != "" {
					body["from"] = *from
				}
			}
			if len(match) > 0 {
				body["match"] = map[string]string(match)
			}
			raw, err := x.api.do(ctx, http.MethodPost, "/v1/channels", nil, body)
			if err != nil || x.raw(raw) {
				return err
			}
			fmt.Fprintf(x.stdout, "Added %s channel %s.\n", kind, x.pos[0])
			return nil
		}
	}
}

// moreChannelTarget is the TARGET column of `channels list` for issue 15's
// types.
func moreChannelTarget(ch channel, target string) string {
	switch ch.Type {
	case "alertmanager":
		return strings.Join(ch.URLs, ",")
	case "ntfy":
		return strings.TrimRight(ch.URL, "/") + "/" + ch.Topic
	case "email":
		return strings.Join(ch.To, ",")
	}
	return target
}
