package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
)

func opsCommands() []command {
	return []command{
		{path: "events", args: "[-limit N]", api: adminAPI, setup: setupEvents,
			summary: "recent transitions, newest first",
			help:    "Lists recent machine transitions, newest first, with their deliveries."},
		{path: "status", api: openAPI, setup: setupStatus,
			summary: "this node's Raft status",
			help:    "Shows the Raft status of the node at -address (GET /v1/status)."},
		{path: "members", api: adminAPI, setup: setupMembers,
			summary: "cluster members",
			help:    "Lists the cluster members as the node at -address sees them."},
	}
}

func channelCommands() []command {
	return append([]command{
		{path: "channels list", aliases: []string{"ls"}, api: adminAPI, setup: setupChannelsList,
			summary: "list channels", help: "Lists notification channels (secrets are never shown)."},
		{path: "channels add webhook", argv: []string{"NAME"}, api: adminAPI, setup: setupChannelsAdd("webhook"),
			args:    "NAME -url URL -secret SECRET [-match k=v]...",
			summary: "add a signed webhook channel",
			help: "Adds a webhook channel. Deliveries are signed with HMAC-SHA256 keyed with SECRET\n" +
				"(X-LunaSentri-Signature) and carry the Standard Webhooks headers."},
		{path: "channels add telegram", argv: []string{"NAME"}, api: adminAPI, setup: setupChannelsAdd("telegram"),
			args:    "NAME -chat-id ID [-match k=v]...",
			summary: "add a Telegram channel (the bot token is the server's TELEGRAM_BOT_TOKEN)",
			help:    "Adds a Telegram channel. The bot token is the server's TELEGRAM_BOT_TOKEN."},
		{path: "channels delete", aliases: []string{"rm"}, args: "NAME", argv: []string{"NAME"}, api: adminAPI,
			summary: "delete a channel", help: "Deletes a channel.",
			setup: simpleWrite(http.MethodDelete, "/v1/channels/%s", "Deleted channel %s.\n")},
		{path: "channels test", args: "NAME", argv: []string{"NAME"}, api: adminAPI,
			summary: "send a test message and wait for it",
			help: "Sends a test message through a channel and waits until it is delivered\n" +
				"(exit 1 with the receiver's error otherwise).",
			setup: simpleWrite(http.MethodPost, "/v1/channels/%s/test", "Test message delivered to channel %s.\n")},
	}, moreChannelCommands()...)
}

func setupEvents(_ *cli, fs *flag.FlagSet) runner {
	limit := fs.Int("limit", 0, "at most N events (default: the server's)")
	return func(ctx context.Context, x *call) error {
		q := url.Values{}
		if *limit < 0 {
			return usageErrorf("invalid number %d for -limit: must be positive", *limit)
		}
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		var out struct {
			Events []event `json:"events"`
		}
		raw, err := x.api.getJSON(ctx, "/v1/events", q, &out)
		if err != nil || x.raw(raw) {
			return err
		}
		if len(out.Events) == 0 {
			fmt.Fprintln(x.stderr, "no events")
			return nil
		}
		tw := tabwriter.NewWriter(x.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tTYPE\tMACHINE\tDELIVERIES\tREASON\tID")
		for _, e := range out.Events {
			var ds []string
			for _, d := range e.Deliveries {
				s := d.Channel + ":" + d.State
				if d.Attempts > 1 {
					s += fmt.Sprintf("(%d)", d.Attempts)
				}
				ds = append(ds, s)
			}
			reason := e.Reason
			if reason == "silence" {
				reason = "no heartbeat" // the API's word for it; a person reads this
			}
			if e.Message != "" {
				reason += ": " + e.Message
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.OccurredAt, e.Type, safeCell(e.Machine.Name), dash(joinSorted(ds)), dash(cell(reason, 60)), e.ID)
		}
		return tw.Flush()
	}
}

func setupStatus(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error {
		raw, err := x.api.do(ctx, http.MethodGet, "/v1/status", nil, nil)
		if err != nil || x.raw(raw) {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var st map[string]any
		if err := dec.Decode(&st); err != nil {
			return fmt.Errorf("unexpected answer from the server: %v", err)
		}
		str := func(k string) string {
			v, ok := st[k]
			if !ok || v == nil {
				return ""
			}
			return fmt.Sprint(v)
		}
		leader := dash(str("leader_id"))
		if a := str("leader_http_addr"); a != "" {
			leader += " (" + a + ")"
		}
		tw := tabwriter.NewWriter(x.stdout, 0, 4, 1, ' ', 0)
		fmt.Fprintf(tw, "Node:\t%s\n", dash(str("node_id")))
		fmt.Fprintf(tw, "Raft state:\t%s\n", dash(str("raft_state")))
		fmt.Fprintf(tw, "Leader:\t%s\n", leader)
		fmt.Fprintf(tw, "Term:\t%s\n", dash(str("term")))
		fmt.Fprintf(tw, "Commit index:\t%s\n", dash(str("commit_index")))
		fmt.Fprintf(tw, "Applied index:\t%s\n", dash(str("applied_index")))
		return tw.Flush()
	}
}

func setupMembers(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error {
		var out struct {
			Members []member `json:"members"`
		}
		raw, err := x.api.getJSON(ctx, "/v1/cluster/members", nil, &out)
		if err != nil || x.raw(raw) {
			return err
		}
		tw := tabwriter.NewWriter(x.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tHTTP\tRAFT\tGOSSIP\tVOTER\tLEADER")
		for _, m := range out.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, dash(m.HTTPAddr), dash(m.RaftAddr), dash(m.GossipStatus), yesNo(m.Voter), yesNo(m.Leader))
		}
		return tw.Flush()
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func setupChannelsList(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error {
		var out struct {
			Channels []channel `json:"channels"`
		}
		raw, err := x.api.getJSON(ctx, "/v1/channels", nil, &out)
		if err != nil || x.raw(raw) {
			return err
		}
		if len(out.Channels) == 0 {
			fmt.Fprintln(x.stderr, "no channels")
			return nil
		}
		tw := tabwriter.NewWriter(x.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tTYPE\tTARGET\tMATCH")
		for _, ch := range out.Channels {
			target := ch.URL
			if ch.Type == "telegram" {
				target = "chat " + string(ch.ChatID)
			}
			target = moreChannelTarget(ch, target)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safeCell(ch.Name), ch.Type, dash(target), dash(kvFlag(ch.Match).String()))
		}
		return tw.Flush()
	}
}

// setupChannelsAdd is "channels add webhook" or "channels add telegram".
func setupChannelsAdd(kind string) func(*cli, *flag.FlagSet) runner {
	return func(_ *cli, fs *flag.FlagSet) runner {
		var urlFlag, secret, chatID *string
		if kind == "webhook" {
			urlFlag = fs.String("url", "", "receiver URL (required)")
			secret = fs.String("secret", "", "HMAC signing secret (required); whsec_BASE64 for Standard Webhooks libraries")
		} else {
			chatID = fs.String("chat-id", "", "Telegram chat id, e.g. -1001234567890 or @channel (required)")
		}
		match := kvFlag{}
		fs.Var(match, "match", "only machines with label `key=value` (repeatable)")
		return func(ctx context.Context, x *call) error {
			cmd := "channels add " + kind
			body := map[string]any{"type": kind, "name": x.pos[0]}
			if kind == "webhook" {
				if *urlFlag == "" {
					return usageErrorf("%s: -url is required", cmd)
				}
				if u, err := url.Parse(*urlFlag); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return usageErrorf("%s: invalid -url %q (want http:// or https://)", cmd, *urlFlag)
				}
				if *secret == "" {
					return usageErrorf("%s: -secret is required", cmd)
				}
				body["url"], body["secret"] = *urlFlag, *secret
			} else {
				if *chatID == "" {
					return usageErrorf("%s: -chat-id is required", cmd)
				}
				body["chat_id"] = *chatID
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

// cell shortens free text for a table cell.
func cell(s string, max int) string {
	s = oneLine(s)
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
