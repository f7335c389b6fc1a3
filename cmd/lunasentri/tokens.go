package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"
)

// Issue 11: lunasentri token create|list|revoke.

type tokenInfo struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Role      string  `json:"role"`
	CreatedAt string  `json:"created_at"`
	ExpiresAt *string `json:"expires_at"`
	Expired   bool    `json:"expired"`
}

func tokenCommands() []command {
	return []command{
		{path: "token create", args: "NAME -role read|write|admin [-expires-in 720h]", argv: []string{"NAME"}, api: adminAPI,
			summary: "create a token and print its secret (shown once)",
			help:    "Creates an API token; its secret is printed once. Needs an admin token.",
			setup:   setupTokenCreate},
		{path: "token list", aliases: []string{"ls"}, api: adminAPI, setup: setupTokenList,
			summary: "list tokens (never their secrets)", help: "Lists tokens; secrets are never shown."},
		{path: "token revoke", aliases: []string{"delete", "rm"}, args: "ID", argv: []string{"ID"}, api: adminAPI,
			summary: "revoke a token; it stops working at once", help: "Revokes a token.",
			setup: simpleWrite(http.MethodDelete, "/v1/tokens/%s", "token %s revoked\n")},
	}
}

func setupTokenCreate(_ *cli, fs *flag.FlagSet) runner {
	role := fs.String("role", "", "read, write or admin (required)")
	expires := fs.String("expires-in", "", "lifetime, e.g. 720h (default: never expires)")
	return func(ctx context.Context, x *call) error {
		switch *role {
		case "read", "write", "admin":
		default:
			return usageErrorf("token create: -role must be read, write or admin")
		}
		body := map[string]any{"name": x.pos[0], "role": *role}
		if *expires != "" {
			d, err := time.ParseDuration(*expires)
			if err != nil || d <= 0 {
				return usageErrorf("token create: invalid duration %q for -expires-in", *expires)
			}
			body["expires_in"] = d.String()
		}
		raw, err := x.api.do(ctx, http.MethodPost, "/v1/tokens", nil, body)
		if err != nil || x.raw(raw) {
			return err
		}
		var out struct {
			Token  tokenInfo `json:"token"`
			Secret string    `json:"secret"`
		}
		if err := decode(raw, &out); err != nil {
			return err
		}
		fmt.Fprintf(x.stdout, "token %s (%s, role %s) created.\nsecret (shown once, keep it): %s\n", out.Token.Name, out.Token.ID, out.Token.Role, out.Secret)
		return nil
	}
}

func setupTokenList(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error {
		var out struct {
			Tokens []tokenInfo `json:"tokens"`
		}
		raw, err := x.api.getJSON(ctx, "/v1/tokens", nil, &out)
		if err != nil || x.raw(raw) {
			return err
		}
		if len(out.Tokens) == 0 {
			fmt.Fprintln(x.stderr, "no tokens (the -admin-token is the bootstrap admin token)")
			return nil
		}
		tw := tabwriter.NewWriter(x.stdout, 0, 4, 2, ' ', 0)
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
