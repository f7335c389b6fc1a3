package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/lunasentri/lunasentri/cluster"
	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/metrics"
	"github.com/lunasentri/lunasentri/monitor"
	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/telegram"
	"github.com/lunasentri/lunasentri/transport"
)

// Node is one running LunaSentri server.
type Node struct {
	opts   Options
	logger hclog.Logger

	FSM        *fsm.FSM
	Cluster    *cluster.Cluster
	API        *transport.API
	Metrics    *metrics.Metrics
	Monitor    *monitor.Monitor
	Ticker     *monitor.AlertingTicker
	Dispatcher *notify.Dispatcher

	httpServer *http.Server
	httpAddr   string

	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
	left         chan struct{}
	leaveOnce    sync.Once
}

// Run starts a node and blocks until ctx is cancelled, then shuts the node
// down gracefully. It returns an error if the node could not start.
func Run(ctx context.Context, opts Options) error {
	n, err := Start(opts)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		if n.opts.LeaveOnTerminate {
			n.logger.Info("terminating with -leave-on-terminate: leaving the cluster first")
			lctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			if err := n.Leave(lctx); err != nil {
				n.logger.Error("leave on terminate failed; stopping anyway", "error", err)
			}
			cancel()
		}
	case <-n.Left():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.Shutdown(sctx)
}

// Start builds and starts a node; it returns once every listener is open.
func Start(opts Options) (*Node, error) {
	secretFromAdminToken := opts.ClusterSecret == "" && !opts.tlsFiles().Enabled()
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	httpAdv, err := advertiseAddr(opts.HTTPAddr, opts.Advertise)
	if err != nil {
		return nil, err
	}
	raftAdv, err := advertiseAddr(opts.RaftAddr, opts.Advertise)
	if err != nil {
		return nil, err
	}
	gossipAdv, err := advertiseAddr(opts.GossipAddr, opts.Advertise)
	if err != nil {
		return nil, err
	}

	gossipKey, err := decodeGossipKey(opts.GossipKey)
	if err != nil {
		return nil, err
	}
	n := &Node{opts: opts, logger: opts.Logger, httpAddr: httpAdv, left: make(chan struct{})}
	obs := &observer{}
	n.FSM = fsm.New(fsm.Options{MaxEvents: opts.MaxEvents, Observer: obs})

	sec, err := newSecurity(opts)
	if err != nil {
		return nil, err
	}
	if secretFromAdminToken {
		opts.Logger.Warn("the cluster secret is derived from the admin token; set -cluster-secret (or turn TLS on) in production so that one leaked secret does not give away the other")
	}

	// The HTTP listener opens first so a port clash fails before Raft
	// touches the data dir.
	ln, err := net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.HTTPAddr, err)
	}
	ln = sec.wrapListener(ln)

	var leaderWork func(context.Context)
	late := &lateMetrics{}
	n.Cluster, err = cluster.New(cluster.Options{
		NodeID: opts.NodeID, DataDir: opts.DataDir,
		RaftBind: opts.RaftAddr, RaftAdvertise: raftAdv,
		GossipBind: opts.GossipAddr, GossipAdvertise: gossipAdv,
		HTTPAdvertise:   httpAdv,
		BootstrapExpect: opts.BootstrapExpect, Join: opts.Join,
		FSM:                 n.FSM,
		LeaderWork:          func(ctx context.Context) { leaderWork(ctx) },
		LeadershipChanged:   late.leadershipChanged,
		ObserveApply:        late.observeApply,
		Logger:              opts.Logger,
		RaftMultiplier:      opts.RaftMultiplier,
		RaftConfig:          opts.RaftConfig,
		GossipProbeInterval: opts.GossipProbeInterval,
		GossipKey:           gossipKey,
		ServerStabilization: opts.ServerStabilization,
		DeadServerCleanup:   opts.DeadServerCleanup,
		ProbeServer:         probeServer(sec.peerClient(2*time.Second), sec.scheme),
		RaftTLS:             sec.raftServer(),
		RaftTLSClient:       sec.raftClient(),
	})
	if err != nil {
		ln.Close()
		return nil, err
	}

	n.Metrics = metrics.New(metrics.Options{
		State: n.FSM, Raft: raftMetrics{n.Cluster}, Gossip: raftMetrics{n.Cluster}, Ready: raftMetrics{n.Cluster},
		Version: opts.Version, Revision: opts.Revision, PerMachine: opts.PerMachineMetrics,
	})
	late.set(n.Metrics)
	n.Monitor, err = monitor.New(monitor.Options{
		Logger: opts.Logger, CheckInterval: opts.CheckInterval, FailoverGrace: opts.FailoverGrace,
		Source:                livenessSource{fsm: n.FSM, defaultThreshold: opts.OfflineThreshold},
		Proposer:              offlineProposer{c: n.Cluster, alerting: opts.alerting()},
		ObserveDetectionDelay: func(d time.Duration) { n.Metrics.DetectionDelay.Observe(d.Seconds()) },
	})
	if err != nil {
		n.abort(ln)
		return nil, err
	}
	tg, err := telegram.New(telegram.Options{
		Token: opts.TelegramBotToken, APIURL: opts.TelegramAPIURL, Logger: opts.Logger.Named("telegram"),
	})
	if err != nil {
		n.abort(ln)
		return nil, err
	}
	n.Dispatcher, err = notify.NewDispatcher(notify.DispatcherOptions{
		Logger:     opts.Logger,
		Outbox:     outbox{n.FSM},
		Recorder:   recorder{n.Cluster},
		Leadership: n.Cluster,
		Channels: sec.guardWebhooks(newChannels(n.FSM, tg, opts.Version, channelsOptions{
			SMTP: opts.smtpServer(), BaseURL: baseURLOf(httpAdv), Logger: opts.Logger.Named("channels"),
		})),
		OnOutcome: n.Metrics.NotificationOutcome,
		ObserveDelay: func(_ string, d time.Duration) {
			n.Metrics.NotificationDelay.Observe(d.Seconds())
		},
	})
	if err != nil {
		n.abort(ln)
		return nil, err
	}
	n.Ticker, err = monitor.NewAlertingTicker(monitor.TickerOptions{
		Logger: opts.Logger, Interval: opts.CheckInterval,
		Source:   alertingTicks{fsm: n.FSM, c: n.Cluster, alerting: opts.alerting()},
		Proposer: alertingTicks{fsm: n.FSM, c: n.Cluster, alerting: opts.alerting()},
	})
	if err != nil {
		n.abort(ln)
		return nil, err
	}
	obs.monitor.Store(n.Monitor)
	obs.dispatcher.Store(n.Dispatcher)
	// After a restore the leader's deadlines and outbox view are stale:
	// restart leader work from the new state (asynchronously: Restore runs
	// on Raft's FSM goroutine, which leader work may be waiting on).
	restored := func() { go n.Cluster.RestartLeaderWork() }
	obs.restored.Store(&restored)
	leaderWork = n.leaderWork

	n.API, err = transport.New(transport.Options{
		Logger: opts.Logger, FSM: n.FSM, Consensus: consensus{n.Cluster},
		AdminToken: opts.AdminToken, ClusterSecret: opts.ClusterSecret,
		OfflineThreshold: opts.OfflineThreshold, FlushInterval: opts.HeartbeatFlushInterval,
		Alerting: opts.alerting(),
		// Issue 13: telegram is refused without a bot token; issue 15: each
		// channel type's own checks (email needs -smtp-addr).
		ValidateChannel: sec.checkChannels(validateChannelWith(opts.TelegramBotToken, channelValidator(opts.smtpServer()))),
		TestChannel: func(ctx context.Context, name string) error {
			if _, err := n.FSM.Channel(name); err != nil {
				return err
			}
			return n.Dispatcher.SendTest(ctx, name, testEvent(opts.NodeID))
		},
		RedactURL:          redactURL,
		Operator:           operator{n},
		Metrics:            n.Metrics.Handler(),
		HeartbeatsReceived: n.Metrics.HeartbeatsReceived,
		ObserveFlush:       n.Metrics.ObserveFlush,
		// Issue 11: node-to-node calls over mutual TLS when it is on.
		HTTPClient:      sec.peerClient(10 * time.Second),
		LeaderScheme:    sec.scheme,
		RequirePeerCert: sec.tls != nil,
	})
	if err != nil {
		n.abort(ln)
		return nil, err
	}
	n.Metrics.SetPendingBeats(n.API.PendingBeats)
	handler, err := n.mountUI(n.API.Handler()) // issue 12: /ui/, /status, /badge/
	if err != nil {
		n.abort(ln)
		return nil, err
	}

	n.httpServer = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          opts.Logger.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	n.bgCancel = cancel
	n.bg.Add(2)
	go func() {
		defer n.bg.Done()
		if err := n.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.logger.Error("http server stopped", "error", err)
		}
	}()
	go func() {
		defer n.bg.Done()
		n.API.RunFlusher(bgCtx)
	}()
	n.logger.Info("node started", "node_id", opts.NodeID, "http", httpAdv, "raft", raftAdv, "gossip", gossipAdv)
	return n, nil
}

// abort undoes a half-finished Start.
func (n *Node) abort(ln net.Listener) {
	ln.Close()
	if err := n.Cluster.Shutdown(); err != nil {
		n.logger.Warn("shutdown after failed start", "error", err)
	}
}

// leaderWork runs the monitor and the dispatcher while this node leads.
func (n *Node) leaderWork(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := n.Ticker.Run(ctx); err != nil && ctx.Err() == nil {
			n.logger.Error("alerting ticker stopped", "error", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := n.Monitor.Run(ctx); err != nil && ctx.Err() == nil {
			n.logger.Error("monitor stopped", "error", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := n.Dispatcher.Run(ctx); err != nil && ctx.Err() == nil {
			n.logger.Error("dispatcher stopped", "error", err)
		}
	}()
	wg.Wait()
}

// HTTPAddr is the address the API is reachable at.
func (n *Node) HTTPAddr() string { return n.httpAddr }

// Shutdown stops the node in the seed's order: leader work, HTTP, the
// heartbeat flusher (one last flush), gossip, Raft, stores.
func (n *Node) Shutdown(ctx context.Context) error { return n.stop(ctx, true) }

// Halt stops the node abruptly, as a crash looks to its peers: no
// leadership transfer, no gossip leave, no last heartbeat flush.
func (n *Node) Halt() error { return n.stop(context.Background(), false) }

func (n *Node) stop(ctx context.Context, graceful bool) error {
	n.shutdownOnce.Do(func() {
		if !graceful {
			n.logger.Info("halting")
			_ = n.httpServer.Close()
			n.bgCancel()
			n.bg.Wait()
			n.shutdownErr = n.Cluster.Halt()
			return
		}
		n.logger.Info("shutting down")
		// Let webhooks in flight finish and be recorded before leadership
		// moves, so the next leader does not send them again.
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := n.Dispatcher.Drain(dctx); err != nil {
			n.logger.Warn("notifications in flight did not finish before shutdown", "error", err)
		}
		cancel()
		n.Cluster.StopLeaderWork()
		if err := n.httpServer.Shutdown(ctx); err != nil {
			n.logger.Warn("http shutdown", "error", err)
			_ = n.httpServer.Close()
		}
		n.bgCancel()
		n.bg.Wait()
		n.Cluster.TransferLeadership()
		n.shutdownErr = n.Cluster.Shutdown()
		n.logger.Info("shutdown complete")
	})
	return n.shutdownErr
}
