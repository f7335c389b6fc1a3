package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Shell completion. The scripts are small and ask the binary itself for
// candidates ("lunasentri __complete WORDS…", as cobra-generated CLIs do),
// so completion always matches the command table of the installed version.

const bashCompletion = `# bash completion for lunasentri: source <(lunasentri completion bash)
_lunasentri() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$(lunasentri __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)" -- "$cur"))
  [[ ${#COMPREPLY[@]} -eq 0 ]] && compopt -o default 2>/dev/null
  return 0
}
complete -F _lunasentri lunasentri
`

const zshCompletion = `#compdef lunasentri
# zsh completion for lunasentri:
#   lunasentri completion zsh > "${fpath[1]}/_lunasentri"   (then restart zsh)
# or, for this shell only: source <(lunasentri completion zsh)
_lunasentri() {
  local -a candidates
  candidates=(${(f)"$(lunasentri __complete ${words[2,CURRENT-1]} 2>/dev/null)"})
  if (( ${#candidates} )); then
    compadd -a candidates
  else
    _files
  fi
}
if [[ "$funcstack[1]" = "_lunasentri" ]]; then
  _lunasentri "$@"
else
  compdef _lunasentri lunasentri
fi
`

func setupCompletion(_ *cli, _ *flag.FlagSet) runner {
	return func(_ context.Context, x *call) error {
		switch x.pos[0] {
		case "bash":
			io.WriteString(x.stdout, bashCompletion)
		case "zsh":
			io.WriteString(x.stdout, zshCompletion)
		default:
			return usageErrorf("completion: unknown shell %q (bash or zsh)", x.pos[0])
		}
		return nil
	}
}

// complete prints, one per line, what may follow words: commands, then
// subcommands, then the flags of the command they name.
func (c *cli) complete(words []string) error {
	// Global flags before the command are skipped, with their values.
	for len(words) > 0 && strings.HasPrefix(words[0], "-") {
		name := strings.TrimLeft(words[0], "-")
		words = words[1:]
		if (name == "address" || name == "token") && len(words) > 0 {
			words = words[1:]
		}
	}
	table := commandTable()
	cmd, _, grp := lookup(table, words)
	var out []string
	switch {
	case cmd != nil:
		if cmd.direct != nil {
			out = directFlags(c, cmd)
		} else {
			fs := flag.NewFlagSet(cmd.path, flag.ContinueOnError)
			if cmd.api != noAPI {
				c.addAPIFlags(fs)
			}
			cmd.setup(c, fs)
			out = sortedNames(fs)
		}
		if cmd.path == "completion" {
			out = []string{"bash", "zsh"}
		}
	case grp != nil:
		prefix := grp.name + " "
		if len(words) >= 2 {
			prefix += strings.Join(words[1:], " ") + " "
		}
		seen := map[string]bool{}
		for _, k := range table {
			if w, ok := strings.CutPrefix(k.path, prefix); ok {
				first, _, _ := strings.Cut(w, " ")
				if !seen[first] {
					seen[first] = true
					out = append(out, first)
				}
			}
		}
	case len(words) == 0:
		seen := map[string]bool{}
		for _, k := range table {
			first, _, _ := strings.Cut(k.path, " ")
			if !seen[first] {
				seen[first] = true
				out = append(out, first)
			}
		}
		out = append(out, "version", "help", "-address", "-token", "-json")
	}
	for _, s := range out {
		fmt.Fprintln(c.stdout, s)
	}
	return nil
}

// directFlags are the flags of server, dev and agent, found by asking the
// command for its help (they build their flag sets themselves).
func directFlags(c *cli, cmd *command) []string {
	var buf strings.Builder
	sub := *c
	sub.stdout, sub.stderr = &buf, io.Discard
	_ = cmd.direct(&sub, context.Background(), []string{"-h"})
	var out []string
	for _, line := range strings.Split(buf.String(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "-") {
			name, _, _ := strings.Cut(line, " ")
			out = append(out, name)
		}
	}
	return out
}
