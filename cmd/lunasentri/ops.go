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

const channelsUsage = `Usage: lunasentri channels <subcommand> [flags]

Subcommands:
  list                                                  list channels
  add webhook NAME -url URL -secret SECRET [-match k=v]...
                                                        add a signed webhook channel
  add telegram NAME -chat-id ID [-match k=v]...         add a Telegram channel (the bot
                                                        token is the server's TELEGRAM_BOT_TOKEN)
  delete NAME                                           delete a channel
  test NAME                                             send a test message and wait for it

A channel with -match gets events only for machines whose labels include all
of those pairs. Every subcommand takes -address, -token and -json.
`

func (c *cli) cmdEvents(ctx context.Context, args []string) error {
	fs := newFlagSet("events", "lunasentri events [-limit N] [flags]", "Lists recent machine transitions, newest first, with their deliveries.")
	af := addAPIFlags(fs)
	limit := fs.Int("limit", 0, "at most N events (default: the server's)")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("events", pos); err != nil {
		return err
	}
	q := url.Values{}
	if *limit < 0 {
		return usageErrorf("invalid number %d for -limit: must be positive", *limit)
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	var out struct {
		Events []event `json:"events"`
	}
	raw, err := api.getJSON(ctx, "/v1/events", q, &out)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	if len(out.Events) == 0 {
		fmt.Fprintln(c.stderr, "no events")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tMACHINE\tDELIVERIES\tID")
	for _, e := range out.Events {
		var ds []string
		for _, d := range e.Deliveries {
			s := d.Channel + ":" + d.State
			if d.Attempts > 1 {
				s += fmt.Sprintf("(%d)", d.Attempts)
			}
			ds = append(ds, s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.OccurredAt, e.Type, safeCell(e.Machine.Name), dash(joinSorted(ds)), e.ID)
	}
	return tw.Flush()
}

func (c *cli) cmdStatus(ctx context.Context, args []string) error {
	fs := newFlagSet("status", "lunasentri status [flags]", "Shows the Raft status of the node at -address (GET /v1/status).")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("status", pos); err != nil {
		return err
	}
	api, err := c.client(af, false)
	if err != nil {
		return err
	}
	raw, err := api.do(ctx, http.MethodGet, "/v1/status", nil, nil)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
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
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "Node:\t%s\n", dash(str("node_id")))
	fmt.Fprintf(tw, "Raft state:\t%s\n", dash(str("raft_state")))
	fmt.Fprintf(tw, "Leader:\t%s\n", leader)
	fmt.Fprintf(tw, "Term:\t%s\n", dash(str("term")))
	fmt.Fprintf(tw, "Commit index:\t%s\n", dash(str("commit_index")))
	fmt.Fprintf(tw, "Applied index:\t%s\n", dash(str("applied_index")))
	return tw.Flush()
}

func (c *cli) cmdMembers(ctx context.Context, args []string) error {
	fs := newFlagSet("members", "lunasentri members [flags]", "Lists the cluster members as the node at -address sees them.")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("members", pos); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	var out struct {
		Members []member `json:"members"`
	}
	raw, err := api.getJSON(ctx, "/v1/cluster/members", nil, &out)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHTTP\tRAFT\tGOSSIP\tVOTER\tLEADER")
	for _, m := range out.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, dash(m.HTTPAddr), dash(m.RaftAddr), dash(m.GossipStatus), yesNo(m.Voter), yesNo(m.Leader))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (c *cli) cmdChannels(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, channelsUsage)
		return usageErrorf("channels: missing subcommand")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list", "ls":
		return c.channelsList(ctx, rest)
	case "add":
		return c.channelsAdd(ctx, rest)
	case "delete", "rm":
		return c.channelsSimple(ctx, "delete", http.MethodDelete, "", "Deleted channel %s.\n", rest)
	case "test":
		return c.channelsSimple(ctx, "test", http.MethodPost, "/test", "Test message delivered to channel %s.\n", rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, channelsUsage)
		return errHelpShown{}
	default:
		return usageErrorf("channels: unknown subcommand %q (list, add, delete, test)", sub)
	}
}

func (c *cli) channelsList(ctx context.Context, args []string) error {
	fs := newFlagSet("channels list", "lunasentri channels list [flags]", "Lists notification channels (secrets are never shown).")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("channels list", pos); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	var out struct {
		Channels []channel `json:"channels"`
	}
	raw, err := api.getJSON(ctx, "/v1/channels", nil, &out)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	if len(out.Channels) == 0 {
		fmt.Fprintln(c.stderr, "no channels")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tTARGET\tMATCH")
	for _, ch := range out.Channels {
		target := ch.URL
		if ch.Type == "telegram" {
			target = "chat " + string(ch.ChatID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safeCell(ch.Name), ch.Type, dash(target), dash(kvFlag(ch.Match).String()))
	}
	return tw.Flush()
}

func (c *cli) channelsAdd(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "webhook" && args[0] != "telegram") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(c.stdout, channelsUsage)
			return errHelpShown{}
		}
		return usageErrorf("channels add: want a type: webhook or telegram")
	}
	kind, args := args[0], args[1:]
	var fs *flag.FlagSet
	body := map[string]any{"type": kind}
	var urlFlag, secret, chatID *string
	if kind == "webhook" {
		fs = newFlagSet("channels add webhook", "lunasentri channels add webhook NAME -url URL -secret SECRET [-match k=v]... [flags]",
			"Adds a webhook channel. Deliveries are signed with HMAC-SHA256 keyed with SECRET.")
		urlFlag = fs.String("url", "", "receiver URL (required)")
		secret = fs.String("secret", "", "HMAC signing secret (required)")
	} else {
		fs = newFlagSet("channels add telegram", "lunasentri channels add telegram NAME -chat-id ID [-match k=v]... [flags]",
			"Adds a Telegram channel. The bot token is the server's TELEGRAM_BOT_TOKEN.")
		chatID = fs.String("chat-id", "", "Telegram chat id, e.g. -1001234567890 or @channel (required)")
	}
	af := addAPIFlags(fs)
	match := kvFlag{}
	fs.Var(match, "match", "only machines with label `key=value` (repeatable)")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	cmd := "channels add " + kind
	if err := wantArgs(cmd, pos, "NAME"); err != nil {
		return err
	}
	body["name"] = pos[0]
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
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	raw, err := api.do(ctx, http.MethodPost, "/v1/channels", nil, body)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	fmt.Fprintf(c.stdout, "Added %s channel %s.\n", kind, pos[0])
	return nil
}

// channelsSimple runs a NAME-only channel command: delete or test.
func (c *cli) channelsSimple(ctx context.Context, sub, method, suffix, done string, args []string) error {
	desc := "Deletes a channel."
	if sub == "test" {
		desc = "Sends a test message through a channel and waits until it is delivered\n(exit 1 with the receiver's error otherwise)."
	}
	fs := newFlagSet("channels "+sub, "lunasentri channels "+sub+" NAME [flags]", desc)
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("channels "+sub, pos, "NAME"); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	raw, err := api.do(ctx, method, "/v1/channels/"+pathName(pos[0])+suffix, nil, nil)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	fmt.Fprintf(c.stdout, done, pos[0])
	return nil
}
