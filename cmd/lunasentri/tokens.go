package main

import (
	"context"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"
)

// Issue 11: lunasentri token create|list|revoke.

const tokenUsage = `Usage: lunasentri token <subcommand> [flags]

Subcommands:
  create NAME -role read|write|admin [-expires-in 720h]
                     create a token and print its secret (shown once)
  list               list tokens (never their secrets)
  revoke ID          revoke a token; it stops working at once

Roles: read (every GET), write (read + machines, channels, silences),
admin (everything: cluster, snapshots, tokens). Needs an admin token.
Every subcommand takes -address, -token and -json.
`

type tokenInfo struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Role      string  `json:"role"`
	CreatedAt string  `json:"created_at"`
	ExpiresAt *string `json:"expires_at"`
	Expired   bool    `json:"expired"`
}

func (c *cli) cmdToken(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, tokenUsage)
		return usageErrorf("token: missing subcommand")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "create":
		return c.tokenCreate(ctx, rest)
	case "list", "ls":
		return c.tokenList(ctx, rest)
	case "revoke", "delete", "rm":
		return c.tokenRevoke(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, tokenUsage)
		return errHelpShown{}
	default:
		return usageErrorf("token: unknown subcommand %q (create, list, revoke)", sub)
	}
}

func (c *cli) tokenCreate(ctx context.Context, args []string) error {
	fs := newFlagSet("token create", "lunasentri token create NAME -role read|write|admin [-expires-in D] [flags]", "Creates an API token; its secret is printed once.")
	af := addAPIFlags(fs)
	role := fs.String("role", "", "read, write or admin (required)")
	expires := fs.String("expires-in", "", "lifetime, e.g. 720h (default: never expires)")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("token create", pos, "NAME"); err != nil {
		return err
	}
	switch *role {
	case "read", "write", "admin":
	default:
		return usageErrorf("token create: -role must be read, write or admin")
	}
	body := map[string]any{"name": pos[0], "role": *role}
	if *expires != "" {
		d, err := time.ParseDuration(*expires)
		if err != nil || d <= 0 {
			return usageErrorf("token create: invalid duration %q for -expires-in", *expires)
		}
		body["expires_in"] = d.String()
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	raw, err := api.do(ctx, http.MethodPost, "/v1/tokens", nil, body)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	var out struct {
		Token  tokenInfo `json:"token"`
		Secret string    `json:"secret"`
	}
	if err := decode(raw, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "token %s (%s, role %s) created.\nsecret (shown once, keep it): %s\n", out.Token.Name, out.Token.ID, out.Token.Role, out.Secret)
	return nil
}

func (c *cli) tokenList(ctx context.Context, args []string) error {
	fs := newFlagSet("token list", "lunasentri token list [flags]", "Lists tokens; secrets are never shown.")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("token list", pos); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	var out struct {
		Tokens []tokenInfo `json:"tokens"`
	}
	raw, err := api.getJSON(ctx, "/v1/tokens", nil, &out)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	if len(out.Tokens) == 0 {
		fmt.Fprintln(c.stderr, "no tokens (the -admin-token is the bootstrap admin token)")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tEXPIRES")
	for _, t := range out.Tokens {
		exp := "never"
		if t.ExpiresAt != nil {
			exp = *t.ExpiresAt
			if t.Expired {
				exp += " (expired)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, safeCell(t.Name), t.Role, t.CreatedAt, exp)
	}
	return tw.Flush()
}

func (c *cli) tokenRevoke(ctx context.Context, args []string) error {
	fs := newFlagSet("token revoke", "lunasentri token revoke ID [flags]", "Revokes a token.")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("token revoke", pos, "ID"); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	if _, err := api.do(ctx, http.MethodDelete, "/v1/tokens/"+pathName(pos[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "token %s revoked\n", pos[0])
	return nil
}

// safeCell renders untrusted text in a terminal table: control characters
// (newlines, escape sequences) become visible escapes.
func safeCell(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			out = append(out, []rune(fmt.Sprintf("\\x%02x", r))...)
			continue
		}
		out = append(out, r)
	}
	return string(out)
}
