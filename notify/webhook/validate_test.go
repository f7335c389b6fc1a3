package webhook_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lunasentri/lunasentri/notify/webhook"
)

func TestValidateURL_Table(t *testing.T) {
	tests := []struct {
		url     string
		ok      bool
		mention string // part of the message that says what is wrong
	}{
		{"https://example.com/hook", true, ""},
		{"http://127.0.0.1:8080/hook?x=1", true, ""},
		{"https://user:pass@example.com/hook", true, ""},
		{"", false, "required"},
		{"   ", false, "required"},
		{"example.com/hook", false, "scheme"},
		{"ftp://example.com/hook", false, "http or https"},
		{"https:///hook", false, "host"},
		{"https:example.com", false, "host"},
		{"http://:8080/hook", false, "host"},
		{"https://exa mple.com/", false, ""},
		{"https://example.com:port/", false, "port"},
		{"https://user:s3cr3t-pa55@exa mple.com/", false, ""},
	}
	for _, tc := range tests {
		err := webhook.ValidateURL(tc.url)
		if tc.ok {
			if err != nil {
				t.Errorf("ValidateURL(%q) = %v, want nil", tc.url, err)
			}
			continue
		}
		if !errors.Is(err, webhook.ErrInvalidURL) {
			t.Errorf("ValidateURL(%q) = %v, want ErrInvalidURL", tc.url, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ValidateURL(%q) = %q, want it to mention %q", tc.url, err, tc.mention)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("ValidateURL(%q) = %q leaks the password", tc.url, err)
		}
	}
}

func TestValidateSecret_Bounds(t *testing.T) {
	tests := []struct {
		secret string
		ok     bool
	}{
		{"", false},
		{strings.Repeat("a", 15), false},
		{strings.Repeat("a", 16), true},
		{strings.Repeat("é", 16), true}, // counted in characters, not bytes
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
	}
	for _, tc := range tests {
		err := webhook.ValidateSecret(tc.secret)
		if tc.ok != (err == nil) {
			t.Errorf("ValidateSecret(len %d) = %v, want ok=%v", len(tc.secret), err, tc.ok)
		}
		if err != nil {
			if !errors.Is(err, webhook.ErrInvalidSecret) {
				t.Errorf("error %v is not ErrInvalidSecret", err)
			}
			if len(tc.secret) > 0 && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error %q repeats the secret", err)
			}
		}
	}
}

func TestNew_Validates(t *testing.T) {
	if _, err := webhook.New(webhook.Options{URL: "ftp://x", Secret: strings.Repeat("s", 20)}); !errors.Is(err, webhook.ErrInvalidURL) {
		t.Errorf("bad url: %v", err)
	}
	if _, err := webhook.New(webhook.Options{URL: "https://x.example", Secret: "short"}); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Errorf("bad secret: %v", err)
	}
	if _, err := webhook.New(webhook.Options{URL: "https://x.example", Secret: strings.Repeat("s", 20)}); err != nil {
		t.Errorf("good options: %v", err)
	}
}

func TestRedactURL_Table(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://example.com/hook", "https://example.com/hook"},
		{"https://user:pass@host/path?token=abc", "https://user:xxxxx@host/path?token=xxxxx"},
		{"https://tokenonly@host/p", "https://xxxxx@host/p"},
		{"https://host/p?b=2&a=1&a=3", "https://host/p?a=xxxxx&a=xxxxx&b=xxxxx"},
		{"https://host/p?flag", "https://host/p?flag=xxxxx"},
		{"https://host/p#frag-secret", "https://host/p#xxxxx"},
		{"http://[::1]:8080/p?k=v", "http://[::1]:8080/p?k=xxxxx"},
		{"https://us%20er:p%40ss@host/", "https://us%20er:xxxxx@host/"},
		{"://bad url with secret", "[unparseable url]"},
	}
	for _, tc := range tests {
		if got := webhook.RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
