package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// newFlagSet makes a FlagSet whose usage text starts with a synopsis line
// and a short description. Parse errors are reported by cli.parse as one
// line, so the FlagSet itself prints nothing unless help was asked for.
func newFlagSet(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet("lunasentri "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: %s\n", synopsis)
		if description != "" {
			fmt.Fprintf(out, "\n%s\n", description)
		}
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(out, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args allowing flags before, between and after positional
// arguments ("machines register web-1 -label env=prod"); "--" ends flags.
// It returns the positional arguments. -h prints the usage to stdout.
func (c *cli) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		// Split off "--" ourselves: flag.Parse would swallow it silently.
		before, after, dashdash := cutArgs(args, "--")
		err := fs.Parse(before)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(c.stdout)
			fs.Usage()
			return nil, errHelpShown{}
		}
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", strings.TrimPrefix(fs.Name(), "lunasentri "), err)}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			if dashdash {
				pos = append(pos, after...)
			}
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
		if dashdash {
			args = append(append(args, "--"), after...)
		}
	}
}

// cutArgs splits args at the first element equal to sep.
func cutArgs(args []string, sep string) (before, after []string, found bool) {
	for i, a := range args {
		if a == sep {
			return args[:i], args[i+1:], true
		}
	}
	return args, nil, false
}

// kvFlag is a repeatable -flag key=value, collected into a map.
type kvFlag map[string]string

func (f kvFlag) String() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + f[k]
	}
	return strings.Join(parts, ",")
}

func (f kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	f[k] = v
	return nil
}

// wantArgs checks the number of positional arguments of a command.
func wantArgs(cmd string, pos []string, names ...string) error {
	switch {
	case len(pos) < len(names):
		return usageErrorf("%s: missing %s", cmd, names[len(pos)])
	case len(pos) > len(names):
		return usageErrorf("%s: unexpected argument %q", cmd, pos[len(names)])
	}
	return nil
}
