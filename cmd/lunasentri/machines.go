package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func machineCommands() []command {
	return []command{
		{path: "machines list", aliases: []string{"ls"}, args: "[-status online|offline|unknown|paused]", api: adminAPI,
			summary: "list machines", help: "Lists machines, sorted by name.", setup: setupMachinesList},
		{path: "machines show", aliases: []string{"get"}, args: "NAME", argv: []string{"NAME"}, api: adminAPI,
			summary: "show one machine, with what its agent reports", setup: setupMachinesShow},
		{path: "machines register", aliases: []string{"add"}, argv: []string{"NAME"}, api: adminAPI,
			args:    "NAME [-hostname H] [-description D] [-label k=v]... [-offline-threshold D]",
			summary: "register a machine and print its API key (shown once)",
			help: "Registers a machine. The API key goes to stdout on its own line (so KEY=$(lunasentri\n" +
				"machines register web-1) works); it is shown only this once.",
			setup: setupMachinesRegister},
		{path: "machines delete", aliases: []string{"rm"}, args: "NAME", argv: []string{"NAME"}, api: adminAPI,
			summary: "delete a machine and its pending notifications",
			help:    "Deletes a machine; its pending notifications go with it.",
			setup:   simpleWrite(http.MethodDelete, "/v1/machines/%s", "Deleted machine %s.\n")},
		{path: "machines rotate-key", args: "NAME", argv: []string{"NAME"}, api: adminAPI,
			summary: "issue a new API key; the old one stops working",
			help:    "Issues a new API key for a machine and prints it to stdout; the old key stops working.",
			setup:   setupMachinesRotateKey},
		{path: "machines pause", args: "NAME", argv: []string{"NAME"}, api: adminAPI,
			summary: "stop detection (maintenance): no deadline, events or reminders",
			help:    "Pauses detection for a machine: no deadline, no events, no reminders. Heartbeats are still accepted.",
			setup:   setupMachinesPause("pause")},
		{path: "machines resume", args: "NAME", argv: []string{"NAME"}, api: adminAPI,
			summary: "resume detection; unknown until the next heartbeat",
			help:    "Resumes detection for a paused machine: it is unknown until its next heartbeat.",
			setup:   setupMachinesPause("resume")},
	}
}

// simpleWrite is a NAME-only command that sends one request and prints done.
func simpleWrite(method, pathFormat, done string) func(*cli, *flag.FlagSet) runner {
	return func(*cli, *flag.FlagSet) runner {
		return func(ctx context.Context, x *call) error {
			raw, err := x.api.do(ctx, method, fmt.Sprintf(pathFormat, pathName(x.pos[0])), nil, nil)
			if err != nil || x.raw(raw) {
				return err
			}
			fmt.Fprintf(x.stdout, done, x.pos[0])
			return nil
		}
	}
}

func setupMachinesList(_ *cli, fs *flag.FlagSet) runner {
	status := fs.String("status", "", "only machines with this status: online, offline, unknown or paused")
	return func(ctx context.Context, x *call) error {
		q := url.Values{}
		switch *status {
		case "":
		case "online", "offline", "unknown", "paused":
			q.Set("status", *status)
		default:
			return usageErrorf("machines list: invalid -status %q (want online, offline, unknown or paused)", *status)
		}
		var out struct {
			Machines []machine `json:"machines"`
		}
		raw, err := x.api.getJSON(ctx, "/v1/machines", q, &out)
		if err != nil || x.raw(raw) {
			return err
		}
		if len(out.Machines) == 0 {
			fmt.Fprintln(x.stderr, joinNonEmpty(" ", "no", *status, "machines"))
			return nil
		}
		tw := tabwriter.NewWriter(x.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATUS\tLAST SEEN\tHOSTNAME\tAGENT\tLABELS")
		for _, m := range out.Machines {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", safeCell(m.Name), m.Status, x.ago(m.LastSeen), dash(m.Hostname),
				dash(m.Agent.version()), dash(kvFlag(m.Labels).String()))
		}
		return tw.Flush()
	}
}

func setupMachinesShow(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error {
		var out struct {
			Machine machine `json:"machine"`
		}
		raw, err := x.api.getJSON(ctx, "/v1/machines/"+pathName(x.pos[0]), nil, &out)
		if err != nil || x.raw(raw) {
			return err
		}
		x.printMachine(x.stdout, out.Machine)
		return nil
	}
}

// ago renders an RFC 3339 time as "12s ago"; "never" when empty.
func (c *cli) ago(ts string) string {
	if ts == "" {
		return "never"
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ts
	}
	d := c.now().Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
}

// dash stands in for an empty cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return safeCell(s) // issue 11: untrusted text never forges lines in a table
}

// joinSorted renders parts sorted and comma-separated.
func joinSorted(parts []string) string {
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (c *cli) printMachine(w io.Writer, m machine) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	threshold := "server default"
	if m.OfflineThreshold > 0 {
		threshold = time.Duration(m.OfflineThreshold).String()
	}
	status := m.Status
	if m.StatusChangedAt != "" {
		status += " since " + m.StatusChangedAt
	}
	lastSeen := "never"
	if m.LastSeen != "" {
		lastSeen = m.LastSeen + " (" + c.ago(m.LastSeen) + ")"
	}
	fmt.Fprintf(tw, "Name:\t%s\n", safeCell(m.Name))
	fmt.Fprintf(tw, "ID:\t%s\n", dash(m.ID))
	fmt.Fprintf(tw, "Status:\t%s\n", status)
	if m.Reason == "reported" {
		fmt.Fprintf(tw, "Reported:\t%s\n", dash(m.Message))
	}
	if m.Flapping {
		fmt.Fprintf(tw, "Flapping:\t%s\n", "yes (transitions recorded, not sent, until stable)")
	}
	fmt.Fprintf(tw, "Last seen:\t%s\n", lastSeen)
	fmt.Fprintf(tw, "Hostname:\t%s\n", dash(m.Hostname))
	fmt.Fprintf(tw, "Description:\t%s\n", dash(m.Description))
	fmt.Fprintf(tw, "Labels:\t%s\n", dash(kvFlag(m.Labels).String()))
	fmt.Fprintf(tw, "Offline threshold:\t%s\n", threshold)
	if a := m.Agent; a != nil {
		fmt.Fprintf(tw, "Agent:\t%s\n", joinNonEmpty(" ", a.version(), "on "+dash(a.Hostname)))
		for _, k := range a.infoKeys() {
			v := a.Info[k]
			if k == "boot_time" {
				// Uptime is derived from the stable boot time the agent reports.
				if t, err := time.Parse(time.RFC3339, v); err == nil {
					v += " (up " + c.since(t) + ")"
				}
			}
			fmt.Fprintf(tw, "  %s:\t%s\n", k, v)
		}
		fmt.Fprintf(tw, "Agent reported:\t%s\n", dash(a.ReportedAt))
	}
	tw.Flush()
}

// since renders the time from t until now, coarsely: "3d4h", "5h12m", "40m".
func (c *cli) since(t time.Time) string {
	d := c.now().Sub(t)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
}

func setupMachinesRegister(_ *cli, fs *flag.FlagSet) runner {
	hostname := fs.String("hostname", "", "expected hostname of the machine (default: what its agent reports)")
	description := fs.String("description", "", "free text")
	labels := kvFlag{}
	fs.Var(labels, "label", "label `key=value` (repeatable)")
	threshold := fs.String("offline-threshold", "", "this machine's offline threshold, e.g. 30s (default: the server's)")
	return func(ctx context.Context, x *call) error {
		name := x.pos[0]
		body := map[string]any{"name": name}
		if *hostname != "" {
			body["hostname"] = *hostname
		}
		if *description != "" {
			body["description"] = *description
		}
		if len(labels) > 0 {
			body["labels"] = map[string]string(labels)
		}
		if *threshold != "" {
			d, err := time.ParseDuration(*threshold)
			if err != nil {
				return usageErrorf("invalid duration %q for -offline-threshold", *threshold)
			}
			if d <= 0 {
				return usageErrorf("invalid duration %q for -offline-threshold: must be positive", *threshold)
			}
			body["offline_threshold"] = d.String()
		}
		raw, err := x.api.do(ctx, http.MethodPost, "/v1/machines", nil, body)
		return x.printKey(raw, err, "registered machine "+name,
			"Registered machine "+name+". Its API key is shown only this once; store it now:")
	}
}

// printKey prints the api_key of an answer to stdout on its own line (so
// KEY=$(…) works), with a note on stderr; -json prints the whole answer.
func (x *call) printKey(raw []byte, err error, what, note string) error {
	if err != nil || x.raw(raw) {
		return err
	}
	var out struct {
		APIKey string `json:"api_key"`
	}
	if err := decode(raw, &out); err != nil {
		return err
	}
	if out.APIKey == "" {
		return fmt.Errorf("%s, but the answer had no api_key", what)
	}
	fmt.Fprintln(x.stderr, note)
	fmt.Fprintln(x.stdout, out.APIKey)
	return nil
}

func setupMachinesRotateKey(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error {
		name := x.pos[0]
		raw, err := x.api.do(ctx, http.MethodPost, "/v1/machines/"+pathName(name)+"/rotate-key", nil, nil)
		return x.printKey(raw, err, "rotated the key of "+name,
			"New API key for "+name+" (the old key no longer works). It is shown only this once:")
	}
}
