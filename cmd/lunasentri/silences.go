package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// Silences and maintenance windows (issue 10), and pause/resume.

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

func silenceCommands() []command {
	return []command{
		{path: "silence add", aliases: []string{"create"}, api: adminAPI, setup: setupSilenceAdd,
			args:    "[-machine NAME]... [-match k=v]... (-duration D | -ends-at TIME) -comment TEXT [-schedule CRON -timezone ZONE]",
			summary: "mute notifications, once or as a recurring maintenance window",
			help: "Mutes notifications for the selected machines. Transitions are still recorded; when the\n" +
				"silence ends, each channel is told once what it missed, if it still matters. With -schedule\n" +
				"(five-field cron, e.g. \"0 3 * * 6\" = Saturdays 03:00) it is a maintenance window active for\n" +
				"-duration from each start, in -timezone (IANA, default UTC). The id goes to stdout."},
		{path: "silence list", aliases: []string{"ls"}, args: "[-state pending|active|expired]", api: adminAPI,
			setup: setupSilenceList, summary: "list silences and maintenance windows",
			help: "Lists silences and maintenance windows, oldest first."},
		{path: "silence expire", aliases: []string{"rm", "delete"}, args: "ID", argv: []string{"ID"}, api: adminAPI,
			summary: "end a silence now; outages it held back are sent once",
			help:    "Ends a silence now. Outages it held back that are still going are sent, once.",
			setup:   simpleWrite(http.MethodDelete, "/v1/silences/%s", "Silence %s expired.\n")},
	}
}

func setupSilenceAdd(c *cli, fs *flag.FlagSet) runner {
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
	return func(ctx context.Context, x *call) error {
		body := map[string]any{"comment": *comment}
		if len(machines) > 0 {
			body["machines"] = []string(machines)
		}
		if len(matchers) > 0 {
			body["matchers"] = map[string]string(matchers)
		}
		for field, v := range map[string]string{"starts_at": *startsAt, "ends_at": *endsAt} {
			if v == "" {
				continue
			}
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				return usageErrorf("silence add: -%s %q is not an RFC 3339 time", strings.ReplaceAll(field, "_", "-"), v)
			}
			body[field] = v
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
		raw, err := x.api.do(ctx, http.MethodPost, "/v1/silences", nil, body)
		if err != nil || x.raw(raw) {
			return err
		}
		var out struct {
			Silence silence `json:"silence"`
		}
		if err := decode(raw, &out); err != nil {
			return err
		}
		fmt.Fprintln(x.stdout, out.Silence.ID)
		fmt.Fprintf(x.stderr, "silence %s is %s: %s\n", out.Silence.ID, out.Silence.State, silenceWhen(out.Silence))
		return nil
	}
}

// shortDuration drops Go's trailing zero units: "1h0m0s" → "1h".
func shortDuration(d string) string {
	if strings.HasSuffix(d, "m0s") {
		d = strings.TrimSuffix(d, "0s")
	}
	if strings.HasSuffix(d, "h0m") {
		d = strings.TrimSuffix(d, "0m")
	}
	return d
}

func silenceWhen(s silence) string {
	if s.Schedule != "" {
		w := fmt.Sprintf("every %q (%s) for %s", s.Schedule, s.Timezone, shortDuration(s.Duration))
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

func setupSilenceList(_ *cli, fs *flag.FlagSet) runner {
	state := fs.String("state", "", "only silences in this state: pending, active or expired")
	return func(ctx context.Context, x *call) error {
		q := url.Values{}
		switch *state {
		case "":
		case "pending", "active", "expired":
			q.Set("state", *state)
		default:
			return usageErrorf("silence list: invalid -state %q (want pending, active or expired)", *state)
		}
		var out struct {
			Silences []silence `json:"silences"`
		}
		raw, err := x.api.getJSON(ctx, "/v1/silences", q, &out)
		if err != nil || x.raw(raw) {
			return err
		}
		if len(out.Silences) == 0 {
			fmt.Fprintln(x.stderr, joinNonEmpty(" ", "no", *state, "silences"))
			return nil
		}
		tw := tabwriter.NewWriter(x.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tMACHINES\tWHEN\tCOMMENT")
		for _, s := range out.Silences {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, dash(silenceTarget(s)), silenceWhen(s), dash(cell(s.Comment, 60)))
		}
		return tw.Flush()
	}
}

// setupMachinesPause is "machines pause" or "machines resume".
func setupMachinesPause(verb string) func(*cli, *flag.FlagSet) runner {
	return func(*cli, *flag.FlagSet) runner {
		return func(ctx context.Context, x *call) error {
			raw, err := x.api.do(ctx, http.MethodPost, "/v1/machines/"+pathName(x.pos[0])+"/"+verb, nil, nil)
			if err != nil || x.raw(raw) {
				return err
			}
			var out struct {
				Machine machine `json:"machine"`
			}
			if err := decode(raw, &out); err != nil {
				return err
			}
			fmt.Fprintf(x.stdout, "Machine %s is %s.\n", out.Machine.Name, out.Machine.Status)
			return nil
		}
	}
}
