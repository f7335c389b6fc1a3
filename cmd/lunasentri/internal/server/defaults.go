package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lunasentri/lunasentri/cluster"
	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/notify/email"
	"github.com/lunasentri/lunasentri/transport"
)

// Defaults (DESIGN.md).
const (
	DefaultHTTPAddr      = ":8080"
	DefaultRaftAddr      = ":8300"
	DefaultGossipAddr    = ":8301"
	DefaultThreshold     = transport.DefaultOfflineThreshold
	DefaultCheckInterval = time.Second
	DefaultFlushInterval = transport.DefaultFlushInterval
	DefaultTelegramAPI   = "https://api.telegram.org"

	DefaultServerStabilization = cluster.DefaultServerStabilization
	DefaultDeadServerCleanup   = cluster.DefaultDeadServerCleanup
	DefaultMaxEvents           = fsm.DefaultMaxEvents
)

func (o *Options) setDefaults() error {
	if o.NodeID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return errors.New("node id is required (hostname unavailable)")
		}
		o.NodeID = h
	}
	if o.DataDir == "" {
		return errors.New("data dir is required")
	}
	if o.AdminToken == "" {
		return errors.New("admin token is required")
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = DefaultHTTPAddr
	}
	if o.RaftAddr == "" {
		o.RaftAddr = DefaultRaftAddr
	}
	if o.GossipAddr == "" {
		o.GossipAddr = DefaultGossipAddr
	}
	if o.OfflineThreshold <= 0 {
		o.OfflineThreshold = DefaultThreshold
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.HeartbeatFlushInterval <= 0 {
		o.HeartbeatFlushInterval = DefaultFlushInterval
	}
	if o.FailoverGrace < 0 {
		return errors.New("failover grace must not be negative")
	}
	if o.TelegramAPIURL == "" {
		o.TelegramAPIURL = DefaultTelegramAPI
	}
	if err := email.ValidateServer(o.smtpServer()); err != nil { // issue 15
		return err
	}
	if o.tlsFiles().Enabled() && o.GossipKey == "" {
		return errors.New("with TLS on, a gossip key is required (-gossip-key; lunasentri keygen makes one)")
	}
	if o.ClusterSecret == "" {
		if o.tlsFiles().Enabled() {
			// Issue 11: a TLS cluster keeps node-to-node auth apart from
			// the admin token; every server already shares the gossip key.
			o.ClusterSecret = deriveClusterSecret("gossip:" + o.GossipKey)
		} else {
			o.ClusterSecret = deriveClusterSecret(o.AdminToken)
		}
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logger == nil {
		o.Logger = hclog.New(&hclog.LoggerOptions{Name: "lunasentri", Level: hclog.Info})
	}
	return nil
}

// deriveClusterSecret gives servers a shared node-to-node secret when none
// is configured: every server already shares the admin token, and a derived
// value means a leaked internal secret does not reveal the admin token.
func deriveClusterSecret(adminToken string) string {
	mac := hmac.New(sha256.New, []byte(adminToken))
	mac.Write([]byte("lunasentri cluster secret v1"))
	return hex.EncodeToString(mac.Sum(nil))
}

// decodeGossipKey parses -gossip-key: base64 of 16, 24 or 32 bytes.
func decodeGossipKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("gossip key is not valid base64: %w", err)
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("gossip key must decode to 16, 24 or 32 bytes, not %d (lunasentri keygen makes one)", n)
	}
	return key, nil
}

// advertiseAddr turns a bind address into the address peers should dial:
// the -advertise host when given, else the bind host, else (bound to all
// interfaces) the first private IPv4.
func advertiseAddr(bind, advertise string) (string, error) {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", bind, err)
	}
	switch {
	case advertise != "":
		// memberlist takes only an IP, and Raft would resolve a name once
		// while gossip carried the raw name: resolve it here, once.
		ip, err := resolveIPv4(advertise)
		if err != nil {
			return "", fmt.Errorf("-advertise %q: %w", advertise, err)
		}
		host = ip
	case host == "" || host == "0.0.0.0" || host == "::":
		ip, err := firstPrivateIPv4()
		if err != nil {
			return "", fmt.Errorf("address %q binds all interfaces and no -advertise was given: %w", bind, err)
		}
		host = ip
	}
	return net.JoinHostPort(host, port), nil
}

// resolveIPv4 returns host if it is an IP, else its first IPv4 address.
func resolveIPv4(host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", err
	}
	for _, ip := range ips {
		if ip4 := ip.To4(); ip4 != nil {
			return ip4.String(), nil
		}
	}
	if len(ips) > 0 {
		return ips[0].String(), nil
	}
	return "", errors.New("no address found")
}

func firstPrivateIPv4() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip4 := ipn.IP.To4(); ip4 != nil && ip4.IsPrivate() {
			return ip4.String(), nil
		}
	}
	return "", errors.New("no private IPv4 address found")
}
