package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/notify/webhook"
	"github.com/lunasentri/lunasentri/tlsutil"
)

// security is a node's TLS material, loaded once at start (issue 11).
type security struct {
	tls    *tlsutil.Configs // nil: plain TCP
	scheme string           // "http" or "https" for node-to-node calls
	// denyPrivate: -webhook-deny-private.
	denyPrivate bool
}

func (o Options) tlsFiles() tlsutil.Files {
	return tlsutil.Files{CA: o.TLSCA, Cert: o.TLSCert, Key: o.TLSKey, VerifyIncoming: o.TLSVerifyIncoming}
}

func newSecurity(o Options) (*security, error) {
	files := o.tlsFiles()
	if !files.Enabled() {
		return &security{scheme: "http", denyPrivate: o.WebhookDenyPrivate}, nil
	}
	cfgs, err := tlsutil.Load(files)
	if err != nil {
		return nil, err
	}
	return &security{tls: cfgs, scheme: "https", denyPrivate: o.WebhookDenyPrivate}, nil
}

func (s *security) wrapListener(ln net.Listener) net.Listener {
	if s.tls == nil {
		return ln
	}
	return tls.NewListener(ln, s.tls.API)
}

// peerClient calls other servers' HTTP APIs (internal endpoints, probes,
// proxied snapshots), presenting this node's certificate when TLS is on.
func (s *security) peerClient(timeout time.Duration) *http.Client {
	if s.tls == nil {
		return &http.Client{Timeout: timeout}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = s.tls.PeerClient.Clone()
	return &http.Client{Timeout: timeout, Transport: tr}
}

func (s *security) raftServer() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.PeerServer
}

func (s *security) raftClient() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.PeerClient
}

// guardWebhooks makes webhook deliveries refuse private targets at dial
// time when -webhook-deny-private is on.
func (s *security) guardWebhooks(c *channels) *channels {
	if s.denyPrivate {
		c.client = webhook.DenyPrivateClient(webhook.DefaultTimeout)
	}
	return c
}

// validateChannel is validateChannel plus, with -webhook-deny-private, a
// 400 for a webhook URL that names a private address outright.
func (s *security) validateChannel(ch fsm.Channel) error { return s.checkChannels(validateChannel)(ch) }

// checkChannels is next (the per-type checks) plus the private-address
// refusal of -webhook-deny-private.
func (s *security) checkChannels(next func(fsm.Channel) error) func(fsm.Channel) error {
	return func(ch fsm.Channel) error {
		if err := next(ch); err != nil {
			return err
		}
		if s.denyPrivate && ch.Type == fsm.ChannelWebhook {
			return webhook.CheckNotPrivate(ch.URL)
		}
		return nil
	}
}
