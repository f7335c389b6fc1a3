package server

import (
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/lunasentri/lunasentri/fsm"
)

// Options configures one cluster node. cmd/lunasentri fills it from flags,
// environment and the HCL config file; zero values mean "use the default".
type Options struct {
	NodeID     string // unique node name; required
	DataDir    string // Raft log, stable store, snapshots; required
	HTTPAddr   string // HTTP API and /metrics, default ":8080"
	RaftAddr   string // Raft TCP transport, default ":8300"
	GossipAddr string // memberlist, default ":8301"
	// Advertise is the host peers and agents use to reach this node. Empty:
	// the bind host, or the first private IPv4 when bound to 0.0.0.0.
	Advertise       string
	BootstrapExpect int      // form a new cluster once this many servers see each other
	Join            []string // gossip addresses of other servers, retried until one answers

	OfflineThreshold       time.Duration // default 2m
	CheckInterval          time.Duration // default 1s
	HeartbeatFlushInterval time.Duration // default 250ms
	FailoverGrace          time.Duration // 0: per machine max(threshold/2, 5s)
	// Flap damping (docs/api.md "Flapping"): FlapThreshold transitions within
	// FlapWindow mark a machine flapping. Zero: 6 and 10m.
	FlapThreshold int
	FlapWindow    time.Duration

	AdminToken string // required
	// ClusterSecret authenticates node-to-node calls; empty derives it from
	// AdminToken (every server shares both).
	ClusterSecret string

	TelegramBotToken string
	TelegramAPIURL   string // default https://api.telegram.org

	// SMTP server for email channels (issue 15). SMTPAddr empty: email
	// channels are refused. SMTPTLS: none, starttls (default) or tls.
	SMTPAddr     string
	SMTPUsername string
	SMTPPassword string
	SMTPTLS      string
	SMTPFrom     string

	// GossipKey encrypts gossip: base64 of 16, 24 or 32 bytes. Empty: clear.
	GossipKey string
	// LeaveOnTerminate: on shutdown, leave the cluster (remove this server
	// from Raft) instead of just stopping.
	LeaveOnTerminate bool
	// ServerStabilization: how long a new server stays a healthy non-voter
	// before promotion (default 10s). DeadServerCleanup: how long a server
	// may be failed in gossip before it is removed from Raft (default 30s).
	ServerStabilization time.Duration
	DeadServerCleanup   time.Duration

	// PerMachineMetrics adds lunasentri_machine_up{machine} to /metrics:
	// one series per machine, for small fleets only. Off by default.
	PerMachineMetrics bool

	// MaxEvents bounds the event history (finished events). Default 10000.
	MaxEvents int

	// StatusPageMatch selects the machines on the public /status page and
	// badges: "label=value[,label=value]". Empty: no status page (issue 12).
	StatusPageMatch string

	Version  string
	Revision string
	Logger   hclog.Logger // nil: a default logger to stderr

	// Issue 11: TLS. With TLSCert, TLSKey and TLSCA set the API is served
	// over TLS, and Raft and node-to-node calls use mutual TLS against the
	// CA; TLSVerifyIncoming also requires client certificates on the API.
	// TLS requires a GossipKey.
	TLSCert, TLSKey, TLSCA string
	TLSVerifyIncoming      bool
	// WebhookDenyPrivate refuses webhook targets that resolve to loopback,
	// link-local, RFC 1918 or ULA addresses, checked at dial time.
	WebhookDenyPrivate bool

	// RaftMultiplier scales the Raft timeouts (cluster/raftconfig.go); 0
	// means 1.
	RaftMultiplier int
	// RaftConfig and GossipProbeInterval let tests shorten timeouts; nil and
	// zero keep the defaults.
	RaftConfig          func(*raft.Config)
	GossipProbeInterval time.Duration
}

// alerting is the cluster-wide alerting settings stamped into commands.
func (o Options) alerting() fsm.AlertingConfig {
	return fsm.AlertingConfig{FlapThreshold: o.FlapThreshold, FlapWindow: o.FlapWindow}
}
