package httpx_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/internal/httpx"
)

func TestPost_ClassifiesAndScrubs(t *testing.T) {
	const secret = "sekret-token-42"
	tests := []struct {
		status    int
		header    string
		ok        bool
		retryable bool
		after     time.Duration
	}{
		{200, "", true, false, 0},
		{202, "", true, false, 0},
		{302, "", false, false, 0},
		{400, "", false, false, 0},
		{404, "", false, false, 0},
		{408, "", false, true, 0},
		{429, "7", false, true, 7 * time.Second},
		{500, "", false, true, 0},
		{503, "3", false, true, 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			hits := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits++
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				if tc.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, "you sent %s", r.URL.RawQuery)
			}))
			defer srv.Close()
			c := httpx.New("test", nil, nil, secret)
			_, retryable, err := c.Post(context.Background(), srv.URL+"/x?token="+secret, nil, []byte("{}"))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || retryable != tc.retryable {
				t.Fatalf("%v %v", retryable, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the secret: %v", err)
			}
			if d, _ := notify.RetryAfter(err); d != tc.after {
				t.Errorf("retry after %s, want %s", d, tc.after)
			}
			var se *httpx.StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.status {
				t.Errorf("not a StatusError: %v", err)
			}
			if hits != 1 {
				t.Errorf("%d requests (redirects must not be followed)", hits)
			}
		})
	}
}

func TestValidateURL(t *testing.T) {
	for _, bad := range []string{"", " ", "example.com", "ftp://x", "http://", "http://%zz"} {
		if err := httpx.ValidateURL("url", bad); err == nil {
			t.Errorf("ValidateURL(%q) passed", bad)
		}
	}
	if err := httpx.ValidateURL("url", "http://user:pw@host:1/p?q=1"); err != nil {
		t.Error(err)
	}
}
