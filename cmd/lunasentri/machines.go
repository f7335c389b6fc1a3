package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

const machinesUsage = `Usage: lunasentri machines <subcommand> [flags]

Subcommands:
  list [-status online|offline|unknown]   list machines
  show NAME                               show one machine
  register NAME [-hostname H] [-description D] [-label k=v]... [-offline-threshold D]
                                          register a machine and print its API key (shown once)
  delete NAME                             delete a machine and its pending notifications
  rotate-key NAME                         issue a new API key; the old one stops working

Every subcommand takes -address, -token and -json (lunasentri machines list -h).
`

func (c *cli) cmdMachines(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, machinesUsage)
		return usageErrorf("machines: missing subcommand")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list", "ls":
		return c.machinesList(ctx, rest)
	case "show", "get":
		return c.machinesShow(ctx, rest)
	case "register", "add":
		return c.machinesRegister(ctx, rest)
	case "delete", "rm":
		return c.machinesDelete(ctx, rest)
	case "rotate-key":
		return c.machinesRotateKey(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, machinesUsage)
		return errHelpShown{}
	default:
		return usageErrorf("machines: unknown subcommand %q (list, show, register, delete, rotate-key)", sub)
	}
}

func (c *cli) machinesList(ctx context.Context, args []string) error {
	fs := newFlagSet("machines list", "lunasentri machines list [-status online|offline|unknown] [flags]", "Lists machines, sorted by name.")
	af := addAPIFlags(fs)
	status := fs.String("status", "", "only machines with this status: online, offline or unknown")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("machines list", pos); err != nil {
		return err
	}
	q := url.Values{}
	switch *status {
	case "":
	case "online", "offline", "unknown":
		q.Set("status", *status)
	default:
		return usageErrorf("machines list: invalid -status %q (want online, offline or unknown)", *status)
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	var out struct {
		Machines []machine `json:"machines"`
	}
	raw, err := api.getJSON(ctx, "/v1/machines", q, &out)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	if len(out.Machines) == 0 {
		fmt.Fprintln(c.stderr, joinNonEmpty(" ", "no", *status, "machines"))
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tLAST SEEN\tHOSTNAME\tLABELS")
	for _, m := range out.Machines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", safeCell(m.Name), m.Status, c.ago(m.LastSeen), dash(m.Hostname), dash(kvFlag(m.Labels).String()))
	}
	return tw.Flush()
}

func (c *cli) machinesShow(ctx context.Context, args []string) error {
	fs := newFlagSet("machines show", "lunasentri machines show NAME [flags]", "Shows one machine.")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("machines show", pos, "NAME"); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	var out struct {
		Machine machine `json:"machine"`
	}
	raw, err := api.getJSON(ctx, "/v1/machines/"+pathName(pos[0]), nil, &out)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	c.printMachine(c.stdout, out.Machine)
	return nil
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
	fmt.Fprintf(tw, "Last seen:\t%s\n", lastSeen)
	fmt.Fprintf(tw, "Hostname:\t%s\n", dash(m.Hostname))
	fmt.Fprintf(tw, "Description:\t%s\n", dash(m.Description))
	fmt.Fprintf(tw, "Labels:\t%s\n", dash(kvFlag(m.Labels).String()))
	fmt.Fprintf(tw, "Offline threshold:\t%s\n", threshold)
	tw.Flush()
}

func (c *cli) machinesRegister(ctx context.Context, args []string) error {
	fs := newFlagSet("machines register",
		"lunasentri machines register NAME [-hostname H] [-description D] [-label k=v]... [-offline-threshold D] [flags]",
		"Registers a machine. The API key goes to stdout on its own line (so KEY=$(lunasentri\n"+
			"machines register web-1) works); it is shown only this once.")
	af := addAPIFlags(fs)
	hostname := fs.String("hostname", "", "expected hostname of the machine")
	description := fs.String("description", "", "free text")
	labels := kvFlag{}
	fs.Var(labels, "label", "label `key=value` (repeatable)")
	threshold := fs.String("offline-threshold", "", "this machine's offline threshold, e.g. 30s (default: the server's)")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("machines register", pos, "NAME"); err != nil {
		return err
	}
	body := map[string]any{"name": pos[0]}
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
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	raw, err := api.do(ctx, http.MethodPost, "/v1/machines", nil, body)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	var out struct {
		Machine machine `json:"machine"`
		APIKey  string  `json:"api_key"`
	}
	if err := decode(raw, &out); err != nil {
		return err
	}
	if out.APIKey == "" {
		return fmt.Errorf("registered machine %s, but the answer had no api_key", pos[0])
	}
	fmt.Fprintf(c.stderr, "Registered machine %s. Its API key is shown only this once; store it now:\n", pos[0])
	fmt.Fprintln(c.stdout, out.APIKey)
	return nil
}

func (c *cli) machinesDelete(ctx context.Context, args []string) error {
	fs := newFlagSet("machines delete", "lunasentri machines delete NAME [flags]", "Deletes a machine; its pending notifications go with it.")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("machines delete", pos, "NAME"); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	raw, err := api.do(ctx, http.MethodDelete, "/v1/machines/"+pathName(pos[0]), nil, nil)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	fmt.Fprintf(c.stdout, "Deleted machine %s.\n", pos[0])
	return nil
}

func (c *cli) machinesRotateKey(ctx context.Context, args []string) error {
	fs := newFlagSet("machines rotate-key", "lunasentri machines rotate-key NAME [flags]",
		"Issues a new API key for a machine and prints it to stdout; the old key stops working.")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("machines rotate-key", pos, "NAME"); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	raw, err := api.do(ctx, http.MethodPost, "/v1/machines/"+pathName(pos[0])+"/rotate-key", nil, nil)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	var out struct {
		APIKey string `json:"api_key"`
	}
	if err := decode(raw, &out); err != nil {
		return err
	}
	if out.APIKey == "" {
		return fmt.Errorf("rotated the key of %s, but the answer had no api_key", pos[0])
	}
	fmt.Fprintf(c.stderr, "New API key for %s (the old key no longer works). It is shown only this once:\n", pos[0])
	fmt.Fprintln(c.stdout, out.APIKey)
	return nil
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
