// Command lunasentri is the single LunaSentri binary: a cluster node
// (server), a loopback three-node cluster for trying it out (dev), the
// heartbeat agent (agent) and the operator commands that talk to any node's
// HTTP API (machines, events, channels, status, members, raft, snapshot).
//
// This package is flag parsing and signals only: it builds a server.Options
// and calls server.Run, or runs the agent loop, or makes one API call. It
// must never hold cluster logic of its own.
//
// # The command tree
//
// Every command is one row of commandTable (commands.go). One dispatcher
// walks the table, one preamble (runCommand) builds the flag set, adds
// -address/-token/-json, parses, checks the positional arguments and builds
// the API client; a command's own code gets the result (a *call). Group
// help, the top-level help and shell completion are generated from the
// same table. -address, -token and -json may also stand before the command.
// -address takes a comma-separated list of nodes; the client tries them in
// order and moves on while one cannot be reached (reads also move on from a
// 502/503/504).
//
// # Why not github.com/hashicorp/cli
//
// Consul, Nomad and Vault build on hashicorp/cli (formerly mitchellh/cli).
// We looked at it and kept the standard library's flag package behind one
// table instead, because what the library would add we either have or do
// not want:
//   - Its Command.Run(args) returns an int and takes no context. Ours return
//     errors that map to exit 1 or 2 (usageError), and share the signal
//     context that lets Ctrl-C cancel an API call or stop the agent and dev
//     cluster cleanly; we would wrap every command to get that back.
//   - Nested commands are a factory per leaf plus a help text per leaf:
//     about as many lines as our table rows, with the common preamble still
//     to be written once ourselves (the library does not know our flags).
//   - Its completion (posener/complete) installs itself by editing the
//     user's shell rc files (-autocomplete-install); we print scripts
//     (lunasentri completion bash|zsh) that the user or a package installs
//     where they like, and that ask the binary for candidates, so they
//     never drift from the installed version.
//   - Global flags before the subcommand are not a feature of the library
//     either; Consul and Nomad take them after the subcommand only.
//
// So the library would be a dependency with its own help format and exit
// code conventions for no fewer lines of ours. If a future command needs
// what it does well (e.g. many levels of nesting), this decision is cheap
// to revisit: the table maps one-to-one onto cli.CommandFactory entries.
package main
