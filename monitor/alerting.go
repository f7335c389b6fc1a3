package monitor

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TickSource says whether the replicated alerting state has a time-driven
// step due at now: a digest window closed, a suppression ended, a reminder
// fell due. It reads the local replica only.
type TickSource interface {
	TickDue(now time.Time) bool
}

// TickProposer commits one alerting tick stamped with the leader's time.
type TickProposer interface {
	ProposeTick(ctx context.Context, at time.Time) error
}

// TickerOptions configures an AlertingTicker.
type TickerOptions struct {
	Logger   hclog.Logger // nil: no logging
	Interval time.Duration
	Source   TickSource   // required
	Proposer TickProposer // required
}

// AlertingTicker is the leader's clock for alerting: every interval it asks
// whether a time-driven step is due and, only then, proposes one tick. The
// decisions themselves are made in Apply, so a new leader continues the
// same plan; this loop only says "now".
type AlertingTicker struct {
	logger   hclog.Logger
	clock    Clock
	interval time.Duration
	source   TickSource
	proposer TickProposer
	running  atomic.Bool
}

// NewAlertingTicker validates opts.
func NewAlertingTicker(opts TickerOptions) (*AlertingTicker, error) {
	if opts.Source == nil || opts.Proposer == nil {
		return nil, errors.New("monitor: alerting ticker needs a source and a proposer")
	}
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	// The real clock: tests run the ticker inside a synctest bubble.
	clock := Clock(realClock{})
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultCheckInterval
	}
	return &AlertingTicker{logger: logger.Named("alerting"), clock: clock, interval: interval, source: opts.Source, proposer: opts.Proposer}, nil
}

// Run ticks until ctx is cancelled (leadership lost). A failed proposal is
// logged and tried again at the next tick.
func (t *AlertingTicker) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer t.running.Store(false)
	tk := t.clock.NewTicker(t.interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C():
		}
		now := t.clock.Now()
		if !t.source.TickDue(now) {
			continue
		}
		if err := t.proposer.ProposeTick(ctx, now); err != nil && ctx.Err() == nil {
			t.logger.Warn("alerting tick not committed", "error", err)
		}
	}
}
