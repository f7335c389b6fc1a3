package webhook

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzURLRedactAndValidate (issue 11): neither function panics, a
// validation error never repeats a URL that carries credentials, and a
// redacted URL hides the password and query values.
func FuzzURLRedactAndValidate(f *testing.F) {
	for _, s := range []string{"https://user:hunter2hunter2@hooks.example.com/x?token=supersecret#frag",
		"http://h", "ftp://x", "", "::", "https://[::1]:80/p", "http://a b", "https://tok@h/?a=1&a=2", "%zz", "https://h/?;;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := ValidateURL(raw)
		red := RedactURL(raw)
		u, perr := url.Parse(raw)
		if perr != nil || u.User == nil {
			return
		}
		if err != nil && len(raw) > 8 && strings.Contains(err.Error(), raw) {
			t.Fatalf("validation error repeats the URL: %v", err)
		}
		pw, ok := u.User.Password()
		visible := u.Scheme + u.Host + u.Path + u.User.Username()
		if ok && len(pw) >= 8 && !strings.Contains(visible, pw) && !strings.Contains(u.RawQuery, pw) && strings.Contains(red, pw) {
			t.Fatalf("redacted %q still shows the password: %q", raw, red)
		}
	})
}
