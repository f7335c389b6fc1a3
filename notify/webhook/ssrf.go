package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Issue 11: the SSRF guard behind -webhook-deny-private. Webhook URLs are
// typed by anyone with the write role; without the guard a URL can make
// the leader POST to its own loopback services, to cloud metadata
// (169.254.169.254) or into the private network.

// ErrPrivateTarget: a webhook target resolves to an address the guard
// refuses.
var ErrPrivateTarget = errors.New("webhook target is a private, loopback or link-local address (refused by -webhook-deny-private)")

// IsPrivateAddr reports whether an address is loopback, link-local
// (169.254.0.0/16, fe80::/10, including cloud metadata), RFC 1918, ULA
// (fc00::/7), unspecified, or an IPv4-mapped form of one of those.
func IsPrivateAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsPrivate() ||
		a.IsUnspecified() || a.IsInterfaceLocalMulticast() || !a.IsValid() ||
		// 100.64.0.0/10 (carrier-grade NAT) and 0.0.0.0/8 are not public either.
		(a.Is4() && (a.As4()[0] == 0 || (a.As4()[0] == 100 && a.As4()[1]&0xc0 == 64)))
}

// denyPrivateControl runs after DNS resolution, on the address actually
// dialled: DNS rebinding (a name that resolves to a public address at
// validation and a private one later) is refused too.
func denyPrivateControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPrivateTarget, err)
	}
	if IsPrivateAddr(ap.Addr()) {
		return ErrPrivateTarget
	}
	return nil
}

// DenyPrivateClient is an HTTP client for webhooks that refuses private
// targets at dial time. Proxies from the environment are not used: a proxy
// would dial on our behalf and bypass the check.
func DenyPrivateClient(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: denyPrivateControl}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Timeout: timeout, Transport: tr}
}

// CheckNotPrivate refuses, at channel creation, a URL whose host is a
// literal private address or "localhost" (a clear 400 instead of failed
// deliveries later). Names are checked again at every dial.
func CheckNotPrivate(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	host := u.Hostname()
	if host == "localhost" || len(host) > len(".localhost") && host[len(host)-len(".localhost"):] == ".localhost" {
		return ErrPrivateTarget
	}
	if a, err := netip.ParseAddr(host); err == nil && IsPrivateAddr(a) {
		return ErrPrivateTarget
	}
	return nil
}
