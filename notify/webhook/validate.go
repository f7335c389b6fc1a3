package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

// Secret length bounds. 16 characters is the least that still makes a
// guessable-by-brute-force HMAC key unlikely; 128 keeps channel records (which
// are replicated through Raft) small.
const (
	MinSecretLength = 16
	MaxSecretLength = 128
)

// redactedMark replaces every secret part of a URL.
const redactedMark = "xxxxx"

// ValidateURL reports whether raw is usable as a webhook URL: it must parse,
// use http or https and name a host. The error never repeats the URL itself,
// since it may carry credentials.
func ValidateURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("%w: url is required", ErrInvalidURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// *url.Error repeats the whole URL; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return fmt.Errorf("%w: scheme is missing, want http:// or https://", ErrInvalidURL)
	default:
		return fmt.Errorf("%w: scheme must be http or https, got %q", ErrInvalidURL, u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return fmt.Errorf("%w: host is missing", ErrInvalidURL)
	}
	return nil
}

// ValidateSecret reports whether s is usable as a signing secret: between
// MinSecretLength and MaxSecretLength characters. The error never repeats
// the secret.
func ValidateSecret(s string) error {
	n := utf8.RuneCountInString(s)
	if n < MinSecretLength || n > MaxSecretLength {
		return fmt.Errorf("%w: secret must be %d to %d characters long, got %d",
			ErrInvalidSecret, MinSecretLength, MaxSecretLength, n)
	}
	return nil
}

// RedactURL returns raw with its secret parts replaced by "xxxxx": the
// userinfo password (or a lone username, which is often a token), every
// query value and the fragment. Scheme, host and path stay readable, so an
// operator can still tell which receiver failed. A URL that does not parse
// is replaced entirely, since its secret parts cannot be located.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable url]"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redactedMark)
		} else {
			u.User = url.User(redactedMark)
		}
	}
	if u.RawQuery != "" {
		// Build by hand rather than with url.Values.Encode so that "xxxxx"
		// is not percent-encoded and keys keep a stable, sorted order.
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil && len(q) == 0 {
			u.RawQuery = redactedMark
		} else {
			keys := make([]string, 0, len(q))
			for k := range q {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, 0, len(keys))
			for _, k := range keys {
				for range q[k] {
					parts = append(parts, url.QueryEscape(k)+"="+redactedMark)
				}
			}
			u.RawQuery = strings.Join(parts, "&")
		}
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = redactedMark, ""
	}
	return u.String()
}

// secretParts lists the substrings of raw that RedactURL hides, longest
// first, so that an error text produced below us (for example by net/http)
// can be scrubbed of them as a second line of defence. Values shorter than
// six characters are skipped: replacing "1" or "json" everywhere would
// mangle addresses and messages, and such a value protects little anyway.
func secretParts(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	var out []string
	add := func(s string) {
		if len(s) >= 6 {
			out = append(out, s)
		}
	}
	add(raw)
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.QueryEscape(p))
		} else {
			add(u.User.Username())
		}
	}
	if q, err := url.ParseQuery(u.RawQuery); err == nil {
		for _, vs := range q {
			for _, v := range vs {
				add(v)
				add(url.QueryEscape(v))
			}
		}
	}
	add(u.RawQuery)
	add(u.Fragment)
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
