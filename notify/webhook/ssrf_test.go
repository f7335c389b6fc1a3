package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestIsPrivateAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"127.0.0.1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true,
		"169.254.169.254": true, "::1": true, "fc00::1": true, "fe80::1": true, "0.0.0.0": true,
		"::ffff:127.0.0.1": true, "100.64.0.1": true,
		"8.8.8.8": false, "1.1.1.1": false, "2606:4700::1111": false, "172.32.0.1": false,
	} {
		if got := IsPrivateAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("IsPrivateAddr(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestCheckNotPrivate(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1/x", "http://localhost:8080/", "http://[::1]/", "http://169.254.169.254/latest/meta-data", "http://a.localhost/"} {
		if err := CheckNotPrivate(u); !errors.Is(err, ErrPrivateTarget) {
			t.Errorf("%s: %v", u, err)
		}
	}
	if err := CheckNotPrivate("https://hooks.example.com/x"); err != nil {
		t.Errorf("public host refused: %v", err)
	}
}

// TestDenyPrivateClient_RefusesAtDialTime: a name that resolves to
// loopback is refused when dialled (the DNS-rebinding case), and nothing
// reaches the receiver.
func TestDenyPrivateClient_RefusesAtDialTime(t *testing.T) {
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	c := DenyPrivateClient(2 * time.Second)
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/"} {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", u, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: delivered", u)
		}
		if !errors.Is(err, ErrPrivateTarget) {
			t.Fatalf("%s: %v, want ErrPrivateTarget", u, err)
		}
	}
	if hit {
		t.Fatal("the private receiver was reached")
	}
}
