package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/lunasentri/lunasentri/cluster"
	"github.com/lunasentri/lunasentri/cmd/lunasentri/internal/server"
)

// serverConfig is the merged configuration of the server subcommand, before
// it becomes a server.Options. Every field is settable from a flag; most from
// the HCL config file and some from the environment (see serverSettings).
type serverConfig struct {
	NodeID          string
	DataDir         string
	HTTPAddr        string
	RaftAddr        string
	GossipAddr      string
	Advertise       string
	BootstrapExpect int
	Join            []string

	OfflineThreshold       time.Duration
	CheckInterval          time.Duration
	HeartbeatFlushInterval time.Duration
	FailoverGrace          time.Duration
	FlapThreshold          int
	FlapWindow             time.Duration

	AdminToken    string
	ClusterSecret string
	GossipKey     string

	LeaveOnTerminate    bool
	PerMachineMetrics   bool
	ServerStabilization time.Duration
	DeadServerCleanup   time.Duration
	RaftMultiplier      int // issue 14

	TelegramBotToken string
	TelegramAPIURL   string

	// SMTP for email channels (issue 15).
	SMTPAddr     string
	SMTPUsername string
	SMTPPassword string
	SMTPTLS      string
	SMTPFrom     string

	MaxEvents int
	LogLevel  string
	LogJSON   bool

	// StatusPageMatch: label=value[,…] of the machines on /status (issue 12).
	StatusPageMatch string
	// Issue 11: TLS.
	TLSCert           string
	TLSKey            string
	TLSCA             string
	TLSVerifyIncoming bool

	WebhookDenyPrivate bool // issue 11
}

// defaultServerConfig holds the defaults from DESIGN.md. hostname is the
// default node ID; it may be empty when the hostname is unknown.
func defaultServerConfig(hostname string) serverConfig {
	return serverConfig{
		NodeID:                 hostname,
		HTTPAddr:               server.DefaultHTTPAddr,
		RaftAddr:               server.DefaultRaftAddr,
		GossipAddr:             server.DefaultGossipAddr,
		OfflineThreshold:       server.DefaultThreshold,
		CheckInterval:          server.DefaultCheckInterval,
		HeartbeatFlushInterval: server.DefaultFlushInterval,
		ServerStabilization:    server.DefaultServerStabilization,
		DeadServerCleanup:      server.DefaultDeadServerCleanup,
		RaftMultiplier:         1,
		MaxEvents:              server.DefaultMaxEvents,
		LogLevel:               "info",
	}
}

// valueKind says how a setting's text is parsed and validated.
type valueKind int

const (
	kindString      valueKind = iota // any text
	kindAddr                         // HOST:PORT
	kindAddrList                     // HOST:PORT[,HOST:PORT…]
	kindDuration                     // Go duration > 0
	kindGrace                        // Go duration >= 0 (0 = automatic)
	kindCount                        // integer >= 0
	kindPositiveInt                  // integer > 0
	kindBool                         // true/false
	kindLogLevel                     // trace, debug, info, warn, error
	kindURL                          // http(s)://host[…]
	kindGossipKey                    // base64 of 16, 24 or 32 bytes
)

// setting describes one server setting in its three spellings.
type setting struct {
	flag  string // flag name without the dash; "" if there is no flag
	key   string // HCL config key
	env   string // environment variable; "" if none
	kind  valueKind
	usage string
	field func(c *serverConfig) any // pointer to the field it sets
}

// serverSettings is the one table that ties flags, environment variables and
// config keys to serverConfig fields.
func serverSettings() []setting {
	return []setting{
		{"node-id", "node_id", "", kindString, "unique node `NAME` (default: hostname)", func(c *serverConfig) any { return &c.NodeID }},
		{"data-dir", "data_dir", "", kindString, "`DIR` for the Raft log, stable store and snapshots (required)", func(c *serverConfig) any { return &c.DataDir }},
		{"http-addr", "http_addr", "", kindAddr, "`HOST:PORT` of the HTTP API and /metrics (default :8080)", func(c *serverConfig) any { return &c.HTTPAddr }},
		{"raft-addr", "raft_addr", "", kindAddr, "`HOST:PORT` of the Raft transport (default :8300)", func(c *serverConfig) any { return &c.RaftAddr }},
		{"gossip-addr", "gossip_addr", "", kindAddr, "`HOST:PORT` of memberlist (default :8301)", func(c *serverConfig) any { return &c.GossipAddr }},
		{"advertise", "advertise", "", kindString, "`HOST` peers and agents use to reach this node (default: the bind host, or the first private IPv4)", func(c *serverConfig) any { return &c.Advertise }},
		{"bootstrap-expect", "bootstrap_expect", "", kindCount, "form a new cluster once `N` servers see each other", func(c *serverConfig) any { return &c.BootstrapExpect }},
		{"join", "join", "", kindAddrList, "gossip addresses `HOST:PORT[,…]` of other servers, retried until one answers", func(c *serverConfig) any { return &c.Join }},
		{"offline-threshold", "offline_threshold", "MACHINE_OFFLINE_THRESHOLD", kindDuration, "`DURATION` of silence after which a machine is offline (default 2m; env MACHINE_OFFLINE_THRESHOLD)", func(c *serverConfig) any { return &c.OfflineThreshold }},
		{"check-interval", "check_interval", "MACHINE_HEARTBEAT_CHECK_INTERVAL", kindDuration, "detection resolution `DURATION` (default 1s; env MACHINE_HEARTBEAT_CHECK_INTERVAL)", func(c *serverConfig) any { return &c.CheckInterval }},
		{"heartbeat-flush-interval", "heartbeat_flush_interval", "", kindDuration, "`DURATION` between heartbeat batches shipped to the leader (default 250ms)", func(c *serverConfig) any { return &c.HeartbeatFlushInterval }},
		{"failover-grace", "failover_grace", "", kindGrace, "`DURATION` a new leader waits before marking machines offline (default 0: max(threshold/2, 5s))", func(c *serverConfig) any { return &c.FailoverGrace }},
		{"flap-threshold", "flap_threshold", "", kindPositiveInt, "`N` transitions within -flap-window mark a machine flapping (default 6)", func(c *serverConfig) any { return &c.FlapThreshold }},
		{"flap-window", "flap_window", "", kindDuration, "`DURATION` over which flapping is counted, and a flapping machine must stay stable (default 10m)", func(c *serverConfig) any { return &c.FlapWindow }},
		{"admin-token", "admin_token", "LUNASENTRI_ADMIN_TOKEN", kindString, "`TOKEN` for the admin API (required; env LUNASENTRI_ADMIN_TOKEN)", func(c *serverConfig) any { return &c.AdminToken }},
		{"cluster-secret", "cluster_secret", "LUNASENTRI_CLUSTER_SECRET", kindString, "`SECRET` for node-to-node calls (default: derived from the admin token; env LUNASENTRI_CLUSTER_SECRET)", func(c *serverConfig) any { return &c.ClusterSecret }},
		{"gossip-key", "gossip_key", "LUNASENTRI_GOSSIP_KEY", kindGossipKey, "`KEY` encrypting gossip: base64 of 16, 24 or 32 bytes, from \"lunasentri keygen\" (env LUNASENTRI_GOSSIP_KEY)", func(c *serverConfig) any { return &c.GossipKey }},
		{"leave-on-terminate", "leave_on_terminate", "", kindBool, "on shutdown, leave the cluster (remove this server from Raft) instead of just stopping", func(c *serverConfig) any { return &c.LeaveOnTerminate }},
		{"server-stabilization", "server_stabilization", "", kindDuration, "`DURATION` a new server stays a healthy non-voter before it is promoted (default 10s)", func(c *serverConfig) any { return &c.ServerStabilization }},
		{"dead-server-cleanup", "dead_server_cleanup", "", kindDuration, "`DURATION` a server may be failed in gossip before it is removed from Raft (default 30s)", func(c *serverConfig) any { return &c.DeadServerCleanup }},
		{"raft-multiplier", "raft_multiplier", "", kindPositiveInt, "`N` (1–10) scales the Raft timeouts, as Consul's raft_multiplier: raise it for slow disks, busy VMs or a WAN; failover takes N times longer (default 1)", func(c *serverConfig) any { return &c.RaftMultiplier }},
		{"", "telegram_bot_token", "TELEGRAM_BOT_TOKEN", kindString, "", func(c *serverConfig) any { return &c.TelegramBotToken }},
		{"", "telegram_api_url", "TELEGRAM_API_URL", kindURL, "", func(c *serverConfig) any { return &c.TelegramAPIURL }},
		{"smtp-addr", "smtp_addr", "", kindAddr, "`HOST:PORT` of the SMTP server email channels send through", func(c *serverConfig) any { return &c.SMTPAddr }},
		{"smtp-username", "smtp_username", "", kindString, "SMTP `USER` (PLAIN auth)", func(c *serverConfig) any { return &c.SMTPUsername }},
		{"smtp-password", "smtp_password", "LUNASENTRI_SMTP_PASSWORD", kindString, "SMTP `PASSWORD` (env LUNASENTRI_SMTP_PASSWORD)", func(c *serverConfig) any { return &c.SMTPPassword }},
		{"smtp-tls", "smtp_tls", "", kindString, "`MODE` of the SMTP connection: none, starttls or tls (default starttls)", func(c *serverConfig) any { return &c.SMTPTLS }},
		{"smtp-from", "smtp_from", "", kindString, "default sender `ADDRESS` of email channels", func(c *serverConfig) any { return &c.SMTPFrom }},
		{"max-events", "max_events", "", kindPositiveInt, "`N` finished events kept in the history (default 10000)", func(c *serverConfig) any { return &c.MaxEvents }},
		{"status-page-match", "status_page_match", "", kindString, "`LABEL=VALUE[,…]`: machines on the public /status page and badges (default: no status page)", func(c *serverConfig) any { return &c.StatusPageMatch }},
		{"per-machine-metrics", "per_machine_metrics", "", kindBool, "add lunasentri_machine_up{machine} to /metrics (one series per machine: small fleets only)", func(c *serverConfig) any { return &c.PerMachineMetrics }},
		{"log-level", "log_level", "", kindLogLevel, "`LEVEL`: trace, debug, info, warn or error (default info)", func(c *serverConfig) any { return &c.LogLevel }},
		{"log-json", "log_json", "", kindBool, "log in JSON", func(c *serverConfig) any { return &c.LogJSON }},
		// Issue 11: TLS.
		{"tls-cert", "tls_cert", "", kindString, "`FILE`: this server's certificate (PEM); with -tls-key and -tls-ca turns TLS on for the API, Raft and node-to-node calls", func(c *serverConfig) any { return &c.TLSCert }},
		{"tls-key", "tls_key", "", kindString, "`FILE`: the private key of -tls-cert (PEM)", func(c *serverConfig) any { return &c.TLSKey }},
		{"tls-ca", "tls_ca", "", kindString, "`FILE`: the cluster CA (PEM); peers and client certificates must be signed by it", func(c *serverConfig) any { return &c.TLSCA }},
		{"tls-verify-incoming", "tls_verify_incoming", "", kindBool, "also require client certificates signed by -tls-ca on the API", func(c *serverConfig) any { return &c.TLSVerifyIncoming }},
		{"webhook-deny-private", "webhook_deny_private", "", kindBool, "refuse webhook targets that resolve to loopback, link-local (cloud metadata), RFC 1918 or ULA addresses, checked when dialling", func(c *serverConfig) any { return &c.WebhookDenyPrivate }},
	}
}

// rawFlag keeps a flag's text as typed; it is parsed with the same rules as
// the environment and the config file once the layers are merged, so every
// source gives the same one-line error.
type rawFlag struct {
	text   string
	isBool bool
}

func (f *rawFlag) String() string     { return f.text }
func (f *rawFlag) Set(s string) error { f.text = s; return nil }
func (f *rawFlag) IsBoolFlag() bool   { return f.isBool }

// serverFlags are the server subcommand's flags, registered on a FlagSet.
type serverFlags struct {
	config string
	raw    map[string]*rawFlag // by flag name
}

func registerServerFlags(fs *flag.FlagSet) *serverFlags {
	sf := &serverFlags{raw: map[string]*rawFlag{}}
	fs.StringVar(&sf.config, "config", "", "HCL config file (keys are the flag names in snake_case)")
	for _, s := range serverSettings() {
		if s.flag == "" {
			continue
		}
		rf := &rawFlag{isBool: s.kind == kindBool}
		sf.raw[s.flag] = rf
		fs.Var(rf, s.flag, s.usage)
	}
	return sf
}

// loadServerConfig merges defaults, the config file, the environment and the
// flags set on fs (in rising precedence) and checks the result.
func loadServerConfig(fs *flag.FlagSet, sf *serverFlags, env func(string) string, hostname string) (serverConfig, error) {
	cfg := defaultServerConfig(hostname)
	settings := serverSettings()

	if sf.config != "" {
		if err := applyConfigFile(&cfg, settings, sf.config); err != nil {
			return cfg, err
		}
	}
	for _, s := range settings {
		if s.env == "" {
			continue
		}
		if v := env(s.env); v != "" {
			if err := s.set(&cfg, v); err != nil {
				return cfg, valueAt(err, s.env)
			}
		}
	}
	byFlag := map[string]setting{}
	for _, s := range settings {
		byFlag[s.flag] = s
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		s, ok := byFlag[f.Name]
		if !ok || s.flag == "" || err != nil {
			return
		}
		if e := s.set(&cfg, sf.raw[f.Name].text); e != nil {
			err = valueAt(e, "-"+f.Name)
		}
	})
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.validate(hostname)
}

// validate checks what no single value can: the required settings.
func (c serverConfig) validate(hostname string) error {
	switch {
	case c.NodeID == "" && hostname == "":
		return errors.New("-node-id is required (the hostname is unknown)")
	case c.NodeID == "":
		return errors.New("-node-id must not be empty")
	case c.DataDir == "":
		return errors.New("-data-dir is required")
	case c.AdminToken == "":
		return errors.New("-admin-token (or LUNASENTRI_ADMIN_TOKEN) is required")
	}
	if _, err := server.ParseStatusPageMatch(c.StatusPageMatch); err != nil { // issue 12
		return err
	}
	if _, err := cluster.RaftTimingFor(c.RaftMultiplier); err != nil { // issue 14
		return fmt.Errorf("-raft-multiplier: %w", err)
	}
	// Issue 11: TLS is all or nothing, and needs encrypted gossip.
	anyTLS := c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != ""
	switch {
	case anyTLS && (c.TLSCert == "" || c.TLSKey == "" || c.TLSCA == ""):
		return errors.New("TLS needs all of -tls-cert, -tls-key and -tls-ca")
	case c.TLSVerifyIncoming && !anyTLS:
		return errors.New("-tls-verify-incoming needs -tls-cert, -tls-key and -tls-ca")
	case anyTLS && c.GossipKey == "":
		return errors.New("with TLS on, a gossip key is required (-gossip-key or LUNASENTRI_GOSSIP_KEY; lunasentri keygen makes one)")
	}
	return nil
}

// valueError is a bad value: "invalid duration \"0s\"" plus an optional
// reason. at names where it came from.
type valueError struct{ what, why string }

func (e *valueError) Error() string { return e.at("") }

func (e *valueError) at(where string) string {
	s := e.what
	if where != "" {
		s += " for " + where
	}
	if e.why != "" {
		s += ": " + e.why
	}
	return s
}

func badValue(kind, text, why string) error {
	return &valueError{what: fmt.Sprintf("invalid %s %q", kind, text), why: why}
}

// valueAt completes a set error with the place the value came from.
func valueAt(err error, where string) error {
	var ve *valueError
	if errors.As(err, &ve) {
		return errors.New(ve.at(where))
	}
	return fmt.Errorf("%w for %s", err, where)
}

// set parses text by the setting's kind and stores it in cfg. Its errors
// read "invalid duration \"abc\"" and are completed by the caller with the
// place the value came from.
func (s setting) set(cfg *serverConfig, text string) error {
	text = strings.TrimSpace(text)
	switch p := s.field(cfg).(type) {
	case *string:
		switch s.kind {
		case kindAddr:
			if err := checkHostPort(text); err != nil {
				return badValue("address", text, err.Error())
			}
		case kindLogLevel:
			text = strings.ToLower(text)
			if l := hclog.LevelFromString(text); l == hclog.NoLevel || l == hclog.Off {
				return badValue("log level", text, "want trace, debug, info, warn or error")
			}
		case kindGossipKey:
			if text != "" {
				key, err := base64.StdEncoding.DecodeString(text)
				if err != nil {
					return &valueError{what: "invalid gossip key", why: "not base64"}
				}
				if n := len(key); n != 16 && n != 24 && n != 32 {
					return &valueError{what: "invalid gossip key", why: fmt.Sprintf("decodes to %d bytes, want 16, 24 or 32 (lunasentri keygen makes one)", n)}
				}
			}
		case kindURL:
			if text != "" {
				u, err := url.Parse(text)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return badValue("URL", text, "want http:// or https://")
				}
				text = strings.TrimRight(text, "/")
			}
		}
		*p = text
	case *time.Duration:
		d, err := time.ParseDuration(text)
		if err != nil {
			return badValue("duration", text, "")
		}
		if d <= 0 && s.kind == kindDuration {
			return badValue("duration", text, "must be positive")
		}
		if d < 0 {
			return badValue("duration", text, "must not be negative")
		}
		*p = d
	case *int:
		n, err := strconv.Atoi(text)
		if err != nil {
			return badValue("number", text, "")
		}
		if n <= 0 && s.kind == kindPositiveInt {
			return badValue("number", text, "must be positive")
		}
		if n < 0 {
			return badValue("number", text, "must not be negative")
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return badValue("boolean", text, "")
		}
		*p = b
	case *[]string:
		list := splitList(text)
		for _, a := range list {
			if err := checkHostPort(a); err != nil {
				return badValue("address", a, err.Error())
			}
		}
		*p = list
	default:
		panic(fmt.Sprintf("setting %s: unsupported field type %T", s.key, p))
	}
	return nil
}

// checkHostPort accepts HOST:PORT and :PORT with a numeric port.
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("bad port")
	}
	return nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// applyConfigFile reads an HCL (or, for *.json, HCL JSON) file of top-level
// attributes and applies it over cfg. Errors start with "config FILE: ".
func applyConfigFile(cfg *serverConfig, settings []setting, path string) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("config %s: %s", path, oneLine(fmt.Sprintf(format, a...)))
	}
	src, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fail("%v", err)
	}
	parser := hclparse.NewParser()
	var file *hcl.File
	var diags hcl.Diagnostics
	if strings.EqualFold(filepath.Ext(path), ".json") {
		file, diags = parser.ParseJSON(src, path)
	} else {
		file, diags = parser.ParseHCL(src, path)
	}
	if diags.HasErrors() {
		return fail("%s", diagText(diags))
	}
	if body, ok := file.Body.(*hclsyntax.Body); ok && len(body.Blocks) > 0 {
		return fail("unexpected block %q (only key = value settings are allowed)", body.Blocks[0].Type)
	}
	attrs, diags := file.Body.JustAttributes()
	if diags.HasErrors() {
		return fail("%s", diagText(diags))
	}

	byKey := map[string]setting{}
	for _, s := range settings {
		byKey[s.key] = s
	}
	// Apply in source order so the first problem reported is the first in the file.
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := attrs[names[i]].Range.Start, attrs[names[j]].Range.Start
		return a.Byte < b.Byte
	})
	for _, name := range names {
		attr := attrs[name]
		s, ok := byKey[name]
		if !ok {
			return fail("unknown key %q", name)
		}
		val, diags := attr.Expr.Value(nil)
		if diags.HasErrors() {
			return fail("%s", diagText(diags))
		}
		if val.IsNull() {
			continue
		}
		text, err := hclText(attr.Expr, s.kind)
		if err != nil {
			return fail("%s: %v", name, err)
		}
		if err := s.set(cfg, text); err != nil {
			return fail("%v", valueAt(err, name))
		}
	}
	return nil
}

// hclText turns an HCL expression into the text form the setting parsers
// take, so a config value goes through the same checks as a flag.
func hclText(expr hcl.Expression, kind valueKind) (string, error) {
	switch kind {
	case kindAddrList:
		var list []string
		if diags := gohcl.DecodeExpression(expr, nil, &list); !diags.HasErrors() {
			return strings.Join(list, ","), nil
		}
		var one string
		if diags := gohcl.DecodeExpression(expr, nil, &one); !diags.HasErrors() {
			return one, nil
		}
		return "", errors.New("must be a list of strings")
	case kindCount, kindPositiveInt:
		var f float64
		if diags := gohcl.DecodeExpression(expr, nil, &f); diags.HasErrors() {
			return "", errors.New("must be a number")
		}
		if f != math.Trunc(f) || math.IsInf(f, 0) {
			return "", fmt.Errorf("must be a whole number, not %g", f)
		}
		return strconv.FormatFloat(f, 'f', 0, 64), nil
	case kindBool:
		var b bool
		if diags := gohcl.DecodeExpression(expr, nil, &b); diags.HasErrors() {
			return "", errors.New("must be true or false")
		}
		return strconv.FormatBool(b), nil
	default:
		var s string
		if diags := gohcl.DecodeExpression(expr, nil, &s); diags.HasErrors() {
			return "", errors.New("must be a string")
		}
		return s, nil
	}
}

// diagText renders the first error of diags as "line 3: Summary; detail".
func diagText(diags hcl.Diagnostics) string {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += "; " + d.Detail
		}
		if d.Subject != nil {
			msg = fmt.Sprintf("line %d: %s", d.Subject.Start.Line, msg)
		}
		return msg
	}
	return diags.Error()
}

// oneLine folds a (possibly multi-line) message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
