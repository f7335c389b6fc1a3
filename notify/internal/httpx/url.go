package httpx

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/lunasentri/lunasentri/notify/webhook"
)

// ValidateURL checks that raw is an http(s) URL with a host, by the webhook
// channel's rule (one rule for every HTTP channel). field names it in the
// error ("url", "urls[1]"); the error never repeats the URL, which may carry
// credentials.
func ValidateURL(field, raw string) error {
	if err := webhook.ValidateURL(raw); err != nil {
		return fmt.Errorf("%s: %s", field, strings.TrimPrefix(err.Error(), webhook.ErrInvalidURL.Error()+": "))
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
