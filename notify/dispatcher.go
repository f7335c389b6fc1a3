package notify

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Dispatcher defaults, used for DispatcherOptions fields left zero.
const (
	// DefaultMaxInFlight and DefaultMaxInFlightPerChannel: 16 concurrent
	// sends per channel drain 10k simultaneous alerts to one local webhook
	// in about 4s (4 took about 6s, over the 5s target); the global cap
	// keeps a mass outage from opening unbounded connections.
	DefaultMaxInFlight           = 64
	DefaultMaxInFlightPerChannel = 16
	DefaultInitialBackoff        = time.Second
	DefaultMaxBackoff            = 5 * time.Minute
	// DefaultMaxAttempts: with 1s doubling to a 5m cap and equal jitter,
	// 20 attempts keep trying for roughly 30 to 60 minutes, which rides out
	// a receiver's deploy, restart or short outage, yet a dead endpoint is
	// recorded as failed (visible in GET /v1/events) within the hour
	// instead of being retried forever.
	DefaultMaxAttempts = 20
	// DefaultMaxAge: past six hours a notification is history rather than
	// an alert. It is well beyond the attempts budget, so it only bites
	// when the cluster itself had no leader for hours, or a rate-limited
	// channel (Telegram: one message a second per chat) has a very long
	// queue after a mass outage.
	DefaultMaxAge = 6 * time.Hour
	// DefaultAttemptTimeout bounds one Notify call so a hanging receiver
	// frees its slot; a timeout counts as a retryable failure.
	DefaultAttemptTimeout = 30 * time.Second
	// DefaultFlushInterval is how long outcomes wait to be batched into one
	// Raft entry. Short, because a delivered notification not yet recorded
	// is sent again after a failover.
	DefaultFlushInterval = 50 * time.Millisecond
	// DefaultMaxRecordBatch bounds the outcomes in one RecordDeliveries call
	// (one Raft entry).
	DefaultMaxRecordBatch = 500
)

// finalFlushTimeout bounds the last RecordDeliveries call Run makes after
// its context is cancelled, so sends that completed are recorded if this
// node can still commit, without holding up a leadership change.
const finalFlushTimeout = 2 * time.Second

// maxRecordTries is how many times a final outcome (delivered or failed) is
// offered to the Recorder before the dispatcher gives up on recording it;
// the delivery then stays pending in the replicated outbox and the next
// leader sends it again (same event ID) rather than this one retrying the
// record forever.
const maxRecordTries = 3

// Sentinel errors.
var (
	// ErrMissingDependency is returned by NewDispatcher when Outbox,
	// Recorder, Leadership or Channels is nil.
	ErrMissingDependency = errors.New("notify: dispatcher needs an outbox, a recorder, leadership and channels")
	// ErrAlreadyRunning is returned by Run while another Run is active: two
	// loops would send everything twice.
	ErrAlreadyRunning = errors.New("notify: dispatcher already running")
	// ErrNotLeader wraps a VerifyLeader failure from SendTest.
	ErrNotLeader = errors.New("notify: not the leader")
	// ErrUnknownChannel is returned by SendTest for a channel that does not
	// exist.
	ErrUnknownChannel = errors.New("notify: unknown channel")
)

// State is a delivery's state as shown in GET /v1/events.
type State string

// Delivery states (docs/api.md).
const (
	StatePending   State = "pending"
	StateDelivered State = "delivered"
	StateFailed    State = "failed"
)

// Outcomes passed to DispatcherOptions.OnOutcome, the values of the
// lunasentri_notifications_total outcome label.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetried   = "retried"
	OutcomeFailed    = "failed"
)

// Delivery is one pending (event, channel) pair from the replicated outbox.
type Delivery struct {
	EventID string
	Channel string
	// Attempts and LastError are what earlier attempts recorded, possibly
	// by an earlier leader; the budget continues from there.
	Attempts  int
	LastError string
	// FirstQueued is when the event occurred; the age budget counts from
	// it. Zero disables the age budget for this delivery.
	FirstQueued time.Time
	Event       Event
	// Digest, when set, is what to send instead of Event: EventID is then
	// the digest's id.
	Digest *Digest
}

// Result is an outcome to commit: final (delivered, failed) or progress
// (pending with the attempts so far and the last error).
type Result struct {
	EventID   string
	Channel   string
	State     State
	Attempts  int
	LastError string
	At        time.Time
}

// Outbox lists every pending delivery in the local replica.
type Outbox interface {
	PendingDeliveries() []Delivery
}

// Recorder commits outcomes through Raft, one entry per call. The FSM must
// ignore results for deliveries it no longer has (deleted machine or
// channel) and must not let a pending result overwrite a final one.
type Recorder interface {
	RecordDeliveries(ctx context.Context, results []Result) error
}

// Leadership confirms this node is still the leader (raft.VerifyLeader).
type Leadership interface {
	VerifyLeader(ctx context.Context) error
}

// Channels resolves a channel name to its Notifier and its type ("webhook",
// "telegram"), the channel_type metric label. ok is false for a channel
// that no longer exists.
type Channels interface {
	Notifier(channel string) (n Notifier, channelType string, ok bool)
}

// DispatcherOptions configures a Dispatcher. Zero values mean the default.
type DispatcherOptions struct {
	Logger hclog.Logger // nil: no logging
	Clock  Clock        // nil: the real clock

	Outbox     Outbox     // required
	Recorder   Recorder   // required
	Leadership Leadership // required
	Channels   Channels   // required

	MaxInFlight           int           // global concurrent sends; default 32
	MaxInFlightPerChannel int           // per channel; default 4, at most MaxInFlight
	InitialBackoff        time.Duration // default 1s
	MaxBackoff            time.Duration // default 5m
	MaxAttempts           int           // per delivery, across leaders; default 20
	MaxAge                time.Duration // since the event occurred; default 6h
	AttemptTimeout        time.Duration // per Notify call; default 30s
	FlushInterval         time.Duration // batching of outcomes; default 50ms
	MaxRecordBatch        int           // outcomes per Raft entry; default 500

	// OnOutcome, if set, is called once per attempt outcome (and for a
	// delivery failed without an attempt because its budget was spent).
	OnOutcome func(channelType, outcome string)
	// ObserveDelay, if set, is called for each delivered notification with
	// the time from the event to its delivery.
	ObserveDelay func(channelType string, d time.Duration)
}

// Dispatcher delivers pending outbox entries to their channels on the
// leader: one loop for all channels, bounded concurrency, exponential
// backoff with jitter, outcomes committed through Raft.
type Dispatcher struct {
	logger       hclog.Logger
	clock        Clock
	outbox       Outbox
	recorder     Recorder
	leadership   Leadership
	channels     Channels
	maxInFlight  int
	maxPerChan   int
	initial      time.Duration
	maxBackoff   time.Duration
	maxAttempts  int
	maxAge       time.Duration
	timeout      time.Duration
	flushEvery   time.Duration
	maxRecord    int
	onOutcome    func(channelType, outcome string)
	observeDelay func(channelType string, d time.Duration)

	// kick carries "the outbox may have changed" to the running loop. One
	// slot: any number of Kicks while the loop is busy become one re-read.
	kick    chan struct{}
	drain   chan chan struct{}
	running atomic.Bool
}

// NewDispatcher validates opts and returns a Dispatcher that is not running.
func NewDispatcher(opts DispatcherOptions) (*Dispatcher, error) {
	if opts.Outbox == nil || opts.Recorder == nil || opts.Leadership == nil || opts.Channels == nil {
		return nil, ErrMissingDependency
	}
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	clock := opts.Clock
	if clock == nil {
		clock = realClock{}
	}
	d := &Dispatcher{
		logger:       logger.Named("dispatcher"),
		clock:        clock,
		outbox:       opts.Outbox,
		recorder:     opts.Recorder,
		leadership:   opts.Leadership,
		channels:     opts.Channels,
		maxInFlight:  orDefault(opts.MaxInFlight, DefaultMaxInFlight),
		maxPerChan:   orDefault(opts.MaxInFlightPerChannel, DefaultMaxInFlightPerChannel),
		initial:      orDefault(opts.InitialBackoff, DefaultInitialBackoff),
		maxBackoff:   orDefault(opts.MaxBackoff, DefaultMaxBackoff),
		maxAttempts:  orDefault(opts.MaxAttempts, DefaultMaxAttempts),
		maxAge:       orDefault(opts.MaxAge, DefaultMaxAge),
		timeout:      orDefault(opts.AttemptTimeout, DefaultAttemptTimeout),
		flushEvery:   orDefault(opts.FlushInterval, DefaultFlushInterval),
		maxRecord:    orDefault(opts.MaxRecordBatch, DefaultMaxRecordBatch),
		onOutcome:    opts.OnOutcome,
		observeDelay: opts.ObserveDelay,
		kick:         make(chan struct{}, 1),
		drain:        make(chan chan struct{}),
	}
	d.maxPerChan = min(d.maxPerChan, d.maxInFlight)
	d.maxBackoff = max(d.maxBackoff, d.initial)
	return d, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Kick tells the dispatcher that new pending deliveries may exist. It is
// called after every Apply on every node, so it never blocks and costs a
// non-blocking channel send; on a follower nobody reads the signal and the
// next Run reads the whole outbox anyway.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run delivers the outbox until ctx is cancelled. The leadership loop calls
// it after raft.Barrier() and cancels ctx when leadership is lost; Run then
// cancels every Notify in flight (they get a child of ctx), sends nothing
// more, makes one bounded attempt to record the sends that completed, joins
// all its goroutines and returns nil. A concurrent second call returns
// ErrAlreadyRunning; Run may be called again for the next term.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer d.running.Store(false)
	// A Kick from before this term is stale; the first read covers it.
	select {
	case <-d.kick:
	default:
	}
	return newTerm(d, ctx).loop()
}

// Drain is for a leader that is stopping on purpose: it starts no more
// attempts, lets the sends in flight finish and records their outcomes, then
// returns (or when ctx ends). Cancelling a send half-way could let the
// receiver accept it while the next leader, seeing it pending, sends it
// again. Run keeps going until its ctx is cancelled, sending nothing more.
func (d *Dispatcher) Drain(ctx context.Context) error {
	if !d.running.Load() {
		return nil
	}
	done := make(chan struct{})
	select {
	case d.drain <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SendTest sends ev to one channel once, for POST /v1/channels/{name}/test
// on the leader, and returns the receiver's error. It confirms leadership
// first, like every other send, and records nothing.
func (d *Dispatcher) SendTest(ctx context.Context, channel string, ev Event) error {
	if err := d.leadership.VerifyLeader(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	n, _, ok := d.channels.Notifier(channel)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownChannel, channel)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	_, err := n.Notify(ctx, ev)
	return err
}
