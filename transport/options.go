package transport

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/internal/clusterinfo"
)

// Consensus is what the API needs of the Raft cluster. The server assembly
// adapts package cluster to it.
type Consensus interface {
	IsLeader() bool
	// Leader returns the leader's id and API address when known.
	Leader() (id, httpAddr string, ok bool)
	// Apply proposes a framed command; leader only.
	Apply(ctx context.Context, cmd []byte) (result any, index uint64, err error)
	// WaitForIndex blocks until the local replica applied index.
	WaitForIndex(ctx context.Context, index uint64) error
	Status() NodeStatus
	Ready() (bool, string)
	Members() ([]Member, error)
}

// NodeStatus is GET /v1/status; Member one entry of GET
// /v1/cluster/members. Defined once in internal/clusterinfo, which package
// cluster fills.
type (
	NodeStatus = clusterinfo.NodeStatus
	Member     = clusterinfo.Member
)

// Counter is the one method of a Prometheus counter the heartbeat path uses.
type Counter interface{ Inc() }

// Options configures the API.
type Options struct {
	Logger    hclog.Logger
	FSM       *fsm.FSM
	Consensus Consensus

	AdminToken string
	// ClusterSecret authenticates node-to-node calls.
	ClusterSecret string

	// OfflineThreshold is the cluster default, stamped into heartbeat
	// batches and shown for machines without their own threshold.
	OfflineThreshold time.Duration
	// Alerting is stamped into every command that can make a notification
	// (flap damping settings).
	Alerting fsm.AlertingConfig
	// FlushInterval is how often heartbeats go to the leader; default 250ms.
	FlushInterval time.Duration
	// IntakeUnhealthyAfter: when this node has not reached the leader for
	// this long, heartbeats get 503 so agents move to another node. Default 3s.
	IntakeUnhealthyAfter time.Duration

	// ValidateChannel checks a new channel's settings (URL, secret, chat id);
	// it returns a message fit for a 400 answer.
	ValidateChannel func(fsm.Channel) error
	// TestChannel sends a test message through a channel; leader only.
	TestChannel func(ctx context.Context, name string) error
	// RedactURL hides credentials in webhook URLs shown by the API.
	RedactURL func(string) string

	// Operator serves the cluster-operations endpoints; nil answers 501.
	Operator Operator

	// Metrics is served at GET /metrics; nil serves 404.
	Metrics http.Handler
	// HeartbeatsReceived counts accepted heartbeats; may be nil.
	HeartbeatsReceived Counter
	// ObserveFlush, if set, hears each flush's size and duration.
	ObserveFlush func(beats int, d time.Duration, err error)

	// Limits; zero values take the defaults below.
	MaxHeartbeatBody int64 // default 64 KiB
	MaxAdminBody     int64 // default 1 MiB
	MaxInternalBody  int64 // default 64 MiB
	MaxBatchBeats    int   // beats per Raft entry; default 20000
	MaxSnapshotBody  int64 // restore upload; default 4 GiB

	// HTTPClient is used for calls to the leader; default has a 10s timeout.
	HTTPClient *http.Client

	// Issue 11. LeaderLookupRate and LeaderLookupBurst bound how many
	// credential lookups a second this node sends the leader for keys and
	// tokens it does not know yet (defaults 50/s, burst 100); beyond them
	// it answers 503. LeaderScheme is "https" when node-to-node calls use
	// TLS (default "http").
	LeaderLookupRate  float64
	LeaderLookupBurst int
	LeaderScheme      string
	// RequirePeerCert: internal endpoints also require a verified client
	// certificate with the server usage (TLS clusters).
	RequirePeerCert bool
}

// Defaults.
const (
	DefaultFlushInterval = 250 * time.Millisecond
	// DefaultOfflineThreshold is the cluster default threshold (DESIGN.md),
	// written here once; server and the command line refer to it.
	DefaultOfflineThreshold     = 2 * time.Minute
	DefaultIntakeUnhealthyAfter = 3 * time.Second
	DefaultMaxHeartbeatBody     = 64 << 10
	DefaultMaxAdminBody         = 1 << 20
	DefaultMaxInternalBody      = 64 << 20
	DefaultMaxBatchBeats        = 20000
)

func (o *Options) setDefaults() error {
	if o.FSM == nil || o.Consensus == nil {
		return errors.New("transport: FSM and Consensus are required")
	}
	if o.AdminToken == "" {
		return errors.New("transport: admin token is required")
	}
	if o.ClusterSecret == "" {
		return errors.New("transport: cluster secret is required")
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.OfflineThreshold <= 0 {
		o.OfflineThreshold = DefaultOfflineThreshold
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.IntakeUnhealthyAfter <= 0 {
		o.IntakeUnhealthyAfter = DefaultIntakeUnhealthyAfter
	}
	// A healthy node only proves it reaches the leader once per flush; it
	// must not look unhealthy between two flushes.
	o.IntakeUnhealthyAfter = max(o.IntakeUnhealthyAfter, 3*o.FlushInterval)
	if o.MaxHeartbeatBody <= 0 {
		o.MaxHeartbeatBody = DefaultMaxHeartbeatBody
	}
	if o.MaxAdminBody <= 0 {
		o.MaxAdminBody = DefaultMaxAdminBody
	}
	if o.MaxInternalBody <= 0 {
		o.MaxInternalBody = DefaultMaxInternalBody
	}
	if o.MaxSnapshotBody <= 0 {
		o.MaxSnapshotBody = 4 << 30
	}
	if o.MaxBatchBeats <= 0 {
		o.MaxBatchBeats = DefaultMaxBatchBeats
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.LeaderLookupRate <= 0 {
		o.LeaderLookupRate = DefaultLeaderLookupRate
	}
	if o.LeaderLookupBurst <= 0 {
		o.LeaderLookupBurst = DefaultLeaderLookupBurst
	}
	if o.LeaderScheme == "" {
		o.LeaderScheme = "http"
	}
	if o.ValidateChannel == nil {
		o.ValidateChannel = func(fsm.Channel) error { return nil }
	}
	return nil
}
