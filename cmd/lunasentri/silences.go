package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

const silenceUsage = `Usage: lunasentri silence <subcommand> [flags]

Subcommands:
  add [-machine NAME]... [-match k=v]... (-duration D | -ends-at TIME) -comment TEXT
      [-starts-at TIME] [-schedule CRON -duration D [-timezone ZONE]] [-created-by WHO]
                   mute notifications for machines (recorded as usual); with
                   -schedule, a recurring maintenance window active for -duration
                   from each start ("0 3 * * 6" = Saturdays 03:00)
  list [-state pending|active|expired]
                   list silences and maintenance windows
  expire ID        end a silence now; outages it held back are sent once

Every subcommand takes -address, -token and -json.
`

type silence struct {
	ID        string            `json:"id"`
	Matchers  map[string]string `json:"matchers"`
	Machines  []string          `json:"machines"`
	StartsAt  string            `json:"starts_at"`
	EndsAt    string            `json:"ends_at"`
	Schedule  string            `json:"schedule"`
	Timezone  string            `json:"timezone"`
	Duration  string            `json:"duration"`
	Comment   string            `json:"comment"`
	CreatedBy string            `json:"created_by"`
	State     string            `json:"state"`
}

func (c *cli) cmdSilence(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, silenceUsage)
		return usageErrorf("silence: missing subcommand")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "add", "create":
		return c.silenceAdd(ctx, rest)
	case "list", "ls":
		return c.silenceList(ctx, rest)
	case "expire", "rm", "delete":
		return c.silenceExpire(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, silenceUsage)
		return errHelpShown{}
	default:
		return usageErrorf("silence: unknown subcommand %q (add, list, expire)", sub)
	}
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func (c *cli) silenceAdd(ctx context.Context, args []string) error {
	fs := newFlagSet("silence add",
		"lunasentri silence add [-machine NAME]... [-match k=v]... (-duration D | -ends-at TIME) -comment TEXT [flags]",
		"Mutes notifications for the selected machines. Transitions are still recorded;\n"+
			"when the silence ends, each channel is told once what it missed, if it still matters.")
	af := addAPIFlags(fs)
	var machines listFlag
	fs.Var(&machines, "machine", "machine `NAME` to silence (repeatable)")
	matchers := kvFlag{}
	fs.Var(matchers, "match", "label `key=value` every silenced machine has (repeatable)")
	duration := fs.String("duration", "", "how long, e.g. 1h; with -schedule, how long each window lasts")
	startsAt := fs.String("starts-at", "", "RFC 3339 start (default now)")
	endsAt := fs.String("ends-at", "", "RFC 3339 end")
	schedule := fs.String("schedule", "", "five-field cron `EXPR` of a recurring maintenance window")
	timezone := fs.String("timezone", "", "IANA `ZONE` of -schedule (default UTC)")
	comment := fs.String("comment", "", "why (required)")
	createdBy := fs.String("created-by", "", "who (default $USER)")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("silence add", pos); err != nil {
		return err
	}
	body := map[string]any{"comment": *comment}
	if len(machines) > 0 {
		body["machines"] = []string(machines)
	}
	if len(matchers) > 0 {
		body["matchers"] = map[string]string(matchers)
	}
	for flagName, v := range map[string]string{"starts_at": *startsAt, "ends_at": *endsAt} {
		if v == "" {
			continue
		}
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return usageErrorf("silence add: -%s %q is not an RFC 3339 time", strings.ReplaceAll(flagName, "_", "-"), v)
		}
		body[flagName] = v
	}
	if *duration != "" {
		if _, err := time.ParseDuration(*duration); err != nil {
			return usageErrorf("silence add: invalid duration %q for -duration", *duration)
		}
		body["duration"] = *duration
	}
	if *schedule != "" {
		body["schedule"] = *schedule
	}
	if *timezone != "" {
		body["timezone"] = *timezone
	}
	who := *createdBy
	if who == "" {
		who = c.env("USER")
	}
	if who != "" {
		body["created_by"] = who
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	raw, err := api.do(ctx, http.MethodPost, "/v1/silences", nil, body)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	var out struct {
		Silence silence `json:"silence"`
	}
	if err := decode(raw, &out); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, out.Silence.ID)
	fmt.Fprintf(c.stderr, "silence %s is %s: %s\n", out.Silence.ID, out.Silence.State, silenceWhen(out.Silence))
	return nil
}

func silenceWhen(s silence) string {
	if s.Schedule != "" {
		w := fmt.Sprintf("every %q (%s) for %s", s.Schedule, s.Timezone, s.Duration)
		if s.EndsAt != "" {
			w += " until " + shortTime(s.EndsAt)
		}
		return w
	}
	return shortTime(s.StartsAt) + " → " + shortTime(s.EndsAt)
}

// shortTime drops sub-seconds from an RFC 3339 time for tables.
func shortTime(v string) string {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return v
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func silenceTarget(s silence) string {
	var parts []string
	if len(s.Machines) > 0 {
		parts = append(parts, strings.Join(s.Machines, ","))
	}
	if len(s.Matchers) > 0 {
		parts = append(parts, kvFlag(s.Matchers).String())
	}
	return strings.Join(parts, " ")
}

func (c *cli) silenceList(ctx context.Context, args []string) error {
	fs := newFlagSet("silence list", "lunasentri silence list [-state pending|active|expired] [flags]", "Lists silences and maintenance windows, oldest first.")
	af := addAPIFlags(fs)
	state := fs.String("state", "", "only silences in this state: pending, active or expired")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("silence list", pos); err != nil {
		return err
	}
	q := url.Values{}
	switch *state {
	case "":
	case "pending", "active", "expired":
		q.Set("state", *state)
	default:
		return usageErrorf("silence list: invalid -state %q (want pending, active or expired)", *state)
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	var out struct {
		Silences []silence `json:"silences"`
	}
	raw, err := api.getJSON(ctx, "/v1/silences", q, &out)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	if len(out.Silences) == 0 {
		fmt.Fprintln(c.stderr, joinNonEmpty(" ", "no", *state, "silences"))
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tMACHINES\tWHEN\tCOMMENT")
	for _, s := range out.Silences {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, dash(silenceTarget(s)), silenceWhen(s), dash(s.Comment))
	}
	return tw.Flush()
}

func (c *cli) silenceExpire(ctx context.Context, args []string) error {
	fs := newFlagSet("silence expire", "lunasentri silence expire ID [flags]", "Ends a silence now. Outages it held back that are still going are sent, once.")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("silence expire", pos, "ID"); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	if _, err := api.do(ctx, http.MethodDelete, "/v1/silences/"+pathName(pos[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "silence %s expired\n", pos[0])
	return nil
}

// machinesSetPaused pauses or resumes a machine.
func (c *cli) machinesSetPaused(ctx context.Context, args []string, pause bool) error {
	verb, what := "resume", "Resumes detection for a paused machine: it is unknown until its next heartbeat."
	if pause {
		verb, what = "pause", "Pauses detection for a machine: no deadline, no events, no reminders. Heartbeats are still accepted."
	}
	fs := newFlagSet("machines "+verb, "lunasentri machines "+verb+" NAME [flags]", what)
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("machines "+verb, pos, "NAME"); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	raw, err := api.do(ctx, http.MethodPost, "/v1/machines/"+pathName(pos[0])+"/"+verb, nil, nil)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	var out struct {
		Machine machine `json:"machine"`
	}
	if err := decode(raw, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "machine %s is %s\n", out.Machine.Name, out.Machine.Status)
	return nil
}
