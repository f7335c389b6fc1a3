package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/tlsutil"
)

// Issue 11: TLS for clients (agent, CLI) and the `tls` helpers.

// tlsClientFlags are -ca-cert, -client-cert and -client-key.
type tlsClientFlags struct {
	caCert, clientCert, clientKey string
}

// addTLSClientFlags adds -ca-cert, -client-cert and -client-key; their
// defaults are the same flags given before the command.
func (c *cli) addTLSClientFlags(fs *flag.FlagSet) *tlsClientFlags {
	f := &tlsClientFlags{}
	g := c.global.tls
	if g == nil {
		g = &tlsClientFlags{}
	}
	fs.StringVar(&f.caCert, "ca-cert", g.caCert, "`FILE`: CA certificate to trust for https:// servers (env LUNASENTRI_CACERT)")
	fs.StringVar(&f.clientCert, "client-cert", g.clientCert, "`FILE`: client certificate, for servers run with -tls-verify-incoming (env LUNASENTRI_CLIENT_CERT)")
	fs.StringVar(&f.clientKey, "client-key", g.clientKey, "`FILE`: the private key of -client-cert (env LUNASENTRI_CLIENT_KEY)")
	return f
}

// httpClient returns base unchanged when no TLS setting is given, else a
// client with the CA and client certificate.
func (c *cli) tlsHTTPClient(f *tlsClientFlags, base *http.Client) (*http.Client, bool, error) {
	ca := firstNonEmpty(f.caCert, c.env("LUNASENTRI_CACERT"))
	cert := firstNonEmpty(f.clientCert, c.env("LUNASENTRI_CLIENT_CERT"))
	key := firstNonEmpty(f.clientKey, c.env("LUNASENTRI_CLIENT_KEY"))
	if ca == "" && cert == "" && key == "" {
		return base, false, nil
	}
	cfg, err := tlsutil.Client(ca, cert, key)
	if err != nil {
		return nil, false, usageErrorf("%v", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	timeout := 30 * time.Second
	if base != nil {
		timeout = base.Timeout
	}
	return &http.Client{Timeout: timeout, Transport: tr}, true, nil
}

const tlsUsage = `Usage: lunasentri tls <ca|cert> create [flags]

  tls ca create [-dir D]
        write a new CA: D/ca.pem and D/ca-key.pem (default D: .)
  tls cert create -ca-dir D -name NAME [-ip IP]... [-dns NAME]... [-client] [-dir OUT]
        write OUT/NAME.pem and OUT/NAME-key.pem signed by the CA in D (default OUT: D).
        Server certificates (the default) are valid for localhost and 127.0.0.1 too and
        serve both sides of server-to-server TLS; -client makes one for agents and the CLI.
`

func (c *cli) cmdTLS(_ context.Context, args []string) error {
	if len(args) < 2 || args[1] != "create" || (args[0] != "ca" && args[0] != "cert") {
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(c.stdout, tlsUsage)
			return errHelpShown{}
		}
		fmt.Fprint(c.stderr, tlsUsage)
		return usageErrorf("tls: want \"tls ca create\" or \"tls cert create\"")
	}
	if args[0] == "ca" {
		fs := newFlagSet("tls ca create", "lunasentri tls ca create [-dir D]", "Writes a new CA (ca.pem, ca-key.pem). Keep ca-key.pem private.")
		dir := fs.String("dir", ".", "output `DIR`")
		pos, err := c.parse(fs, args[2:])
		if err != nil {
			return err
		}
		if err := wantArgs("tls ca create", pos); err != nil {
			return err
		}
		cert, key, err := tlsutil.CreateCA(*dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "wrote %s and %s\n", cert, key)
		return nil
	}
	fs := newFlagSet("tls cert create", "lunasentri tls cert create -ca-dir D -name NAME [-ip IP]... [-dns NAME]... [-client] [-dir OUT]",
		"Writes a certificate signed by the CA in -ca-dir.")
	caDir := fs.String("ca-dir", ".", "`DIR` holding ca.pem and ca-key.pem")
	out := fs.String("dir", "", "output `DIR` (default: -ca-dir)")
	name := fs.String("name", "", "certificate `NAME` (files NAME.pem, NAME-key.pem)")
	client := fs.Bool("client", false, "a client certificate (agents, the CLI) instead of a server one")
	var ips, dns listFlag
	fs.Var(&ips, "ip", "an `IP` the certificate is valid for (repeatable)")
	fs.Var(&dns, "dns", "a DNS `NAME` the certificate is valid for (repeatable)")
	pos, err := c.parse(fs, args[2:])
	if err != nil {
		return err
	}
	if err := wantArgs("tls cert create", pos); err != nil {
		return err
	}
	if *name == "" {
		return usageErrorf("tls cert create: -name is required")
	}
	req := tlsutil.CertRequest{CADir: *caDir, OutDir: *out, Name: *name, DNS: dns, Client: *client}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return usageErrorf("tls cert create: invalid -ip %q", s)
		}
		req.IPs = append(req.IPs, ip)
	}
	cert, key, err := tlsutil.CreateCert(req)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote %s and %s\n", cert, key)
	return nil
}

// listFlag collects a repeatable flag (also comma-separated).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// setUpDevTLS makes the dev cluster's throwaway CA, one server certificate
// for the three loopback nodes and a gossip key, and returns a client that
// trusts the CA (issue 11: lunasentri dev -tls).
func setUpDevTLS(cfg *devConfig, dataDir string) (*http.Client, error) {
	dir := filepath.Join(dataDir, "tls")
	if _, _, err := tlsutil.CreateCA(dir); err != nil {
		return nil, fmt.Errorf("dev TLS: %w", err)
	}
	if _, _, err := tlsutil.CreateCert(tlsutil.CertRequest{CADir: dir, Name: "node", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}); err != nil {
		return nil, fmt.Errorf("dev TLS: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	cfg.tlsDir, cfg.gossipKey = dir, base64.StdEncoding.EncodeToString(key)
	tc, err := tlsutil.Client(filepath.Join(dir, tlsutil.CAFile), "", "")
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Timeout: time.Second, Transport: tr}, nil
}
