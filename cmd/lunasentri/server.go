package main

import (
	"context"
	"io"

	"github.com/hashicorp/go-hclog"

	"github.com/lunasentri/lunasentri/cmd/lunasentri/internal/server"
)

// cmdServer runs one cluster node until ctx is cancelled.
func (c *cli) cmdServer(ctx context.Context, args []string) error {
	opts, err := c.serverOptions(args)
	if err != nil {
		return err
	}
	opts.Logger.Info("starting", "version", version, "revision", revision, "node_id", opts.NodeID,
		"http_addr", opts.HTTPAddr, "raft_addr", opts.RaftAddr, "gossip_addr", opts.GossipAddr)
	if err := c.runServer(ctx, opts); err != nil {
		return err
	}
	opts.Logger.Info("stopped")
	return nil
}

// serverOptions parses the server command line, merges it with the
// environment and the config file, and builds the server.Options.
func (c *cli) serverOptions(args []string) (server.Options, error) {
	fs := newFlagSet("server", "lunasentri server [-config FILE] [flags]",
		"Runs one cluster node. Flags win over environment variables, which win over the\n"+
			"config file, which wins over defaults. Environment: TELEGRAM_BOT_TOKEN and\n"+
			"TELEGRAM_API_URL (config keys telegram_bot_token, telegram_api_url).")
	sf := registerServerFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return server.Options{}, err
	}
	if len(pos) > 0 {
		return server.Options{}, usageErrorf("server: unexpected argument %q", pos[0])
	}
	host, herr := c.hostname()
	if herr != nil {
		host = ""
	}
	cfg, err := loadServerConfig(fs, sf, c.env, host)
	if err != nil {
		return server.Options{}, usageError{err}
	}
	return buildServerOptions(cfg, newLogger(cfg.LogLevel, cfg.LogJSON, c.stderr)), nil
}

// newLogger builds the process logger: hclog named "lunasentri".
func newLogger(level string, jsonFormat bool, out io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "lunasentri",
		Level:      hclog.LevelFromString(level),
		Output:     out,
		JSONFormat: jsonFormat,
	})
}

// buildServerOptions turns a checked serverConfig into server.Options.
func buildServerOptions(cfg serverConfig, logger hclog.Logger) server.Options {
	return server.Options{
		NodeID:                 cfg.NodeID,
		DataDir:                cfg.DataDir,
		HTTPAddr:               cfg.HTTPAddr,
		RaftAddr:               cfg.RaftAddr,
		GossipAddr:             cfg.GossipAddr,
		Advertise:              cfg.Advertise,
		BootstrapExpect:        cfg.BootstrapExpect,
		Join:                   append([]string(nil), cfg.Join...),
		OfflineThreshold:       cfg.OfflineThreshold,
		CheckInterval:          cfg.CheckInterval,
		HeartbeatFlushInterval: cfg.HeartbeatFlushInterval,
		FailoverGrace:          cfg.FailoverGrace,
		FlapThreshold:          cfg.FlapThreshold,
		FlapWindow:             cfg.FlapWindow,
		AdminToken:             cfg.AdminToken,
		ClusterSecret:          cfg.ClusterSecret,
		GossipKey:              cfg.GossipKey,
		LeaveOnTerminate:       cfg.LeaveOnTerminate,
		PerMachineMetrics:      cfg.PerMachineMetrics,
		ServerStabilization:    cfg.ServerStabilization,
		DeadServerCleanup:      cfg.DeadServerCleanup,
		RaftMultiplier:         cfg.RaftMultiplier,
		TelegramBotToken:       cfg.TelegramBotToken,
		TelegramAPIURL:         cfg.TelegramAPIURL,
		SMTPAddr:               cfg.SMTPAddr,
		SMTPUsername:           cfg.SMTPUsername,
		SMTPPassword:           cfg.SMTPPassword,
		SMTPTLS:                cfg.SMTPTLS,
		SMTPFrom:               cfg.SMTPFrom,
		MaxEvents:              cfg.MaxEvents,
		StatusPageMatch:        cfg.StatusPageMatch,
		TLSCert:                cfg.TLSCert,
		TLSKey:                 cfg.TLSKey,
		TLSCA:                  cfg.TLSCA,
		TLSVerifyIncoming:      cfg.TLSVerifyIncoming,
		WebhookDenyPrivate:     cfg.WebhookDenyPrivate,
		Version:                version,
		Revision:               revision,
		Logger:                 logger,
	}
}
