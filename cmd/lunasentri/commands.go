package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
)

// The command tree lives in one table (commandTable): every command's name,
// synopsis, help, positional arguments and whether it talks to the API. One
// dispatcher (cli.dispatch) walks it, and one preamble (cli.runCommand)
// builds the flag set, adds -address/-token/-json, parses, checks the
// arguments and makes the API client before a command's own code runs. Help
// texts and shell completion are generated from the same table, so they
// cannot drift from what the dispatcher accepts.

// apiUse says what a command needs of the HTTP API.
type apiUse int

const (
	noAPI    apiUse = iota // local: server, dev, agent, keygen
	openAPI                // open endpoints (status): no token needed
	adminAPI               // the admin token is required
)

// command is one leaf of the tree.
type command struct {
	path    string   // words after "lunasentri": "machines list"
	aliases []string // other spellings of the last word: "ls"
	args    string   // synopsis after the path, flags included: "NAME [-hostname H]"
	summary string   // one line in the help of its group
	help    string   // the description -h prints
	argv    []string // names of the required positional arguments
	api     apiUse
	// setup registers the command's own flags and returns the code that
	// runs once they are parsed.
	setup func(c *cli, fs *flag.FlagSet) runner
	// direct commands parse their own arguments (server, dev, agent: their
	// flags are not the API's). setup is nil for them.
	direct func(c *cli, ctx context.Context, args []string) error
}

// runner is a command's own work, after the common preamble.
type runner func(ctx context.Context, x *call) error

// call is what a runner gets: the positional arguments and, for API
// commands, a client and the -json choice.
type call struct {
	*cli
	pos  []string
	api  *apiClient
	json bool
}

// raw prints an answer as JSON when -json was given and reports whether it
// did, so a command's table output is skipped.
func (x *call) raw(body []byte) bool {
	if !x.json {
		return false
	}
	printJSON(x.stdout, body)
	return true
}

// group is a word that only leads to subcommands ("machines").
type group struct {
	name    string
	aliases []string
	note    string // printed under the subcommand list
}

var groups = []group{
	{name: "machines", aliases: []string{"machine"}},
	{name: "channels", aliases: []string{"channel"},
		note: "A channel with -match gets events only for machines whose labels include all\nof those pairs."},
	{name: "silence", aliases: []string{"silences"},
		note: "A silence mutes notifications, never recording: events and metrics stay complete."},
	{name: "token", aliases: []string{"tokens"},
		note: "Roles: read (every GET), write (read + machines, channels, silences), admin (everything)."},
	{name: "raft"},
	{name: "snapshot"},
}

// commandTable is the whole CLI. Order is the order of the help texts.
func commandTable() []command {
	return slicesConcat(
		[]command{
			{path: "server", summary: "run one cluster node", direct: (*cli).cmdServer},
			{path: "dev", summary: "run a three-node cluster on loopback with a throwaway data dir", direct: (*cli).cmdDev},
			{path: "agent", summary: "send heartbeats for this machine (-once: one beat, for cron)", direct: (*cli).cmdAgent},
		},
		machineCommands(),
		channelCommands(),
		silenceCommands(),
		tokenCommands(),
		opsCommands(),
		clusterCommands(),
		[]command{
			{path: "tls", args: "ca create [-dir D] | cert create -ca-dir D -name NAME [-ip IP]... [-dns NAME]... [-client]",
				summary: "a private CA and certificates for TLS", direct: (*cli).cmdTLS},
			{path: "completion", args: "bash|zsh", argv: []string{"SHELL"}, setup: setupCompletion,
				summary: "print a shell completion script",
				help: "Prints a completion script. bash: source <(lunasentri completion bash)\n" +
					"zsh: lunasentri completion zsh > \"${fpath[1]}/_lunasentri\""},
		},
	)
}

func slicesConcat(parts ...[]command) []command {
	var out []command
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// lookup finds the command named by the leading words of args. When args
// name a group but no command in it, grp is the group.
func lookup(table []command, args []string) (cmd *command, rest []string, grp *group) {
	if len(args) == 0 {
		return nil, args, nil
	}
	first := args[0]
	for i := range groups {
		g := &groups[i]
		if first != g.name && !contains(g.aliases, first) {
			continue
		}
		if len(args) < 2 {
			return nil, args[1:], g
		}
		// Two or three words: "channels add webhook".
		for n := min(3, len(args)); n >= 2; n-- {
			want := strings.Join(append([]string{g.name}, args[1:n]...), " ")
			for j := range table {
				if table[j].matches(want) {
					return &table[j], args[n:], g
				}
			}
		}
		return nil, args[1:], g
	}
	for j := range table {
		if table[j].matches(first) {
			return &table[j], args[1:], nil
		}
	}
	return nil, args, nil
}

// matches reports whether words name c, the last word possibly an alias.
func (c *command) matches(words string) bool {
	if words == c.path {
		return true
	}
	i := strings.LastIndexByte(c.path, ' ')
	j := strings.LastIndexByte(words, ' ')
	if i < 0 || j < 0 || c.path[:i] != words[:j] {
		return false
	}
	return contains(c.aliases, words[j+1:])
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isHelpWord(s string) bool {
	return s == "help" || s == "-h" || s == "-help" || s == "--help"
}

// dispatch runs one command line.
func (c *cli) dispatch(ctx context.Context, args []string) error {
	args, err := c.globalFlags(args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		fmt.Fprint(c.stderr, c.usage())
		return usageError{errors.New("no command given")}
	}
	switch name := args[0]; {
	case name == "version" || name == "-version" || name == "--version":
		fmt.Fprintln(c.stdout, versionString())
		return nil
	case isHelpWord(name):
		if len(args) > 1 && args[1] != "help" {
			// "help machines" is "machines -h".
			return c.dispatch(ctx, append(args[1:], "-h"))
		}
		fmt.Fprint(c.stdout, c.usage())
		return nil
	case name == "__complete":
		return c.complete(args[1:])
	}
	table := commandTable()
	cmd, rest, grp := lookup(table, args)
	if cmd == nil && grp != nil {
		return c.groupUsage(table, grp, rest)
	}
	if cmd == nil {
		return usageErrorf("unknown command %q (run \"lunasentri help\")", args[0])
	}
	return c.runCommand(ctx, cmd, rest)
}

// groupUsage answers a group word without a (known) subcommand.
func (c *cli) groupUsage(table []command, g *group, rest []string) error {
	switch {
	case len(rest) == 0:
		fmt.Fprint(c.stderr, groupHelp(table, g))
		return usageErrorf("%s: missing subcommand", g.name)
	case isHelpWord(rest[0]):
		fmt.Fprint(c.stdout, groupHelp(table, g))
		return errHelpShown{}
	}
	// A known first word with a missing or unknown second (channels add).
	var subs []string
	seen := map[string]bool{}
	for _, cmd := range table {
		if w, ok := strings.CutPrefix(cmd.path, g.name+" "); ok {
			first, _, _ := strings.Cut(w, " ")
			if !seen[first] {
				seen[first] = true
				subs = append(subs, first)
			}
			if first == rest[0] && first != w {
				if len(rest) > 1 && isHelpWord(rest[1]) {
					fmt.Fprint(c.stdout, groupHelp(table, g))
					return errHelpShown{}
				}
				kinds := []string{}
				for _, k := range table {
					if p, ok := strings.CutPrefix(k.path, g.name+" "+first+" "); ok {
						kinds = append(kinds, p)
					}
				}
				return usageErrorf("%s %s: want a type: %s", g.name, first, orList(kinds))
			}
		}
	}
	return usageErrorf("%s: unknown subcommand %q (%s)", g.name, rest[0], strings.Join(subs, ", "))
}

// groupHelp lists a group's subcommands.
func groupHelp(table []command, g *group) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: lunasentri %s <subcommand> [flags]\n\nSubcommands:\n", g.name)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, cmd := range table {
		if w, ok := strings.CutPrefix(cmd.path, g.name+" "); ok {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(w+" "+cmd.args), cmd.summary)
		}
	}
	tw.Flush()
	if g.note != "" {
		fmt.Fprintf(&b, "\n%s\n", g.note)
	}
	fmt.Fprintf(&b, "\nEvery subcommand takes -address, -token and -json (lunasentri %s SUBCOMMAND -h).\n", g.name)
	return b.String()
}

// usage is the top-level help.
func (c *cli) usage() string {
	var b strings.Builder
	b.WriteString(`LunaSentri — a highly available heartbeat monitor.

Usage:
  lunasentri [-address URL[,URL…]] [-token T] [-json] <command> [flags]

`)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	seen := map[string]bool{}
	for _, cmd := range commandTable() {
		word, _, _ := strings.Cut(cmd.path, " ")
		if seen[word] {
			continue
		}
		seen[word] = true
		summary := cmd.summary
		for _, g := range groups {
			if g.name == word {
				summary = groupSummary(word)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\n", word, summary)
	}
	fmt.Fprintf(tw, "  version\tprint the version\n")
	fmt.Fprintf(tw, "  help\tprint this help (help COMMAND for a command's flags)\n")
	tw.Flush()
	b.WriteString(`
API commands talk to any node: -address (env LUNASENTRI_ADDR) takes a comma-separated
list of nodes, tried in order until one answers; -token (env LUNASENTRI_ADMIN_TOKEN);
-json prints the raw answer. These three may stand before or after the command.

Exit status: 0 success, 1 the command failed, 2 bad usage or configuration.
`)
	return b.String()
}

// groupSummary is "list | show NAME | …" for a group.
func groupSummary(name string) string {
	var parts []string
	for _, cmd := range commandTable() {
		if w, ok := strings.CutPrefix(cmd.path, name+" "); ok {
			parts = append(parts, strings.TrimSpace(w+" "+strings.Join(cmd.argv, " ")))
		}
	}
	return strings.Join(parts, " | ")
}

// runCommand is the one preamble every command shares.
func (c *cli) runCommand(ctx context.Context, cmd *command, args []string) error {
	if cmd.direct != nil {
		return cmd.direct(c, ctx, args)
	}
	synopsis := strings.TrimSpace("lunasentri " + cmd.path + " " + cmd.args)
	if cmd.api != noAPI {
		synopsis += " [flags]"
	}
	help := cmd.help
	if help == "" {
		help = strings.ToUpper(cmd.summary[:1]) + cmd.summary[1:] + "."
	}
	fs := newFlagSet(cmd.path, synopsis, help)
	var af *apiFlags
	if cmd.api != noAPI {
		af = c.addAPIFlags(fs)
	}
	run := cmd.setup(c, fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(cmd.path, pos, cmd.argv...); err != nil {
		return err
	}
	x := &call{cli: c, pos: pos}
	if af != nil {
		if x.api, err = c.client(af, cmd.api == adminAPI); err != nil {
			return err
		}
		x.json = af.json
	}
	return run(ctx, x)
}

// globalFlags takes -address, -token, -json and the TLS client flags (and -flag=value, --flag
// forms) from before the command word; they become the defaults of the
// command's own flags of the same names.
func (c *cli) globalFlags(args []string) ([]string, error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		switch name {
		case "address", "token", "ca-cert", "client-cert", "client-key":
			if !hasValue {
				if len(args) < 2 {
					return nil, usageErrorf("flag needs an argument: -%s", name)
				}
				value, args = args[1], args[1:]
			}
			if c.global.tls == nil {
				c.global.tls = &tlsClientFlags{}
			}
			switch name {
			case "address":
				c.global.address = value
			case "token":
				c.global.token = value
			case "ca-cert":
				c.global.tls.caCert = value
			case "client-cert":
				c.global.tls.clientCert = value
			case "client-key":
				c.global.tls.clientKey = value
			}
		case "json":
			c.global.json = !hasValue || value == "true" || value == "1"
		default:
			return args, nil // -h, -version, or a command's flag: not ours
		}
		args = args[1:]
	}
	return args, nil
}

// sortedNames is the sorted flag names of fs, with a leading dash.
func sortedNames(fs *flag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) { out = append(out, "-"+f.Name) })
	sort.Strings(out)
	return out
}

// orList is "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
