package httpx

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ValidateURL checks that raw is an http(s) URL with a host. field names it
// in the error ("url", "urls[1]"); the error never repeats the URL, which may
// carry credentials.
func ValidateURL(field, raw string) error {
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("%s is required", field)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s does not parse: %v", field, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return fmt.Errorf("%s has no scheme, want http:// or https://", field)
	default:
		return fmt.Errorf("%s scheme must be http or https, got %q", field, u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return fmt.Errorf("%s has no host", field)
	}
	return nil
}

// URLSecrets lists the parts of raw that must not appear in errors: the
// userinfo password (or lone username), query values and the fragment.
// Values shorter than six characters are left out, as in notify/webhook.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	var out []string
	add := func(s string) {
		if len(s) >= 6 {
			out = append(out, s, url.QueryEscape(s))
		}
	}
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		} else {
			add(u.User.Username())
		}
	}
	if q, err := url.ParseQuery(u.RawQuery); err == nil {
		for _, vs := range q {
			for _, v := range vs {
				add(v)
			}
		}
	}
	add(u.Fragment)
	return out
}
