package monitor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults for Options fields left zero.
const (
	DefaultCheckInterval = time.Second
	DefaultMaxBatch      = 10000
	// minFailoverGrace is the floor of the per-machine default grace,
	// max(threshold/2, 5s): it has to cover a heartbeat flush interval plus
	// an election even for machines with a very short threshold.
	minFailoverGrace = 5 * time.Second
)

// Sentinel errors.
var (
	// ErrNoSource is returned by New when Options.Source is nil.
	ErrNoSource = errors.New("monitor: options.Source is required")
	// ErrNoProposer is returned by New when Options.Proposer is nil.
	ErrNoProposer = errors.New("monitor: options.Proposer is required")
	// ErrAlreadyRunning is returned by Run while another Run is active: two
	// loops would propose every offline twice.
	ErrAlreadyRunning = errors.New("monitor: already running")
)

// Machine is an online machine as the replicated state knows it.
type Machine struct {
	ID        string
	LastSeen  time.Time
	Threshold time.Duration // the machine's effective offline threshold; must be > 0
}

// Expired is a machine whose deadline passed. LastSeen is the fencepost: the
// FSM must ignore the offline if the machine's last_seen is newer by then.
type Expired struct {
	ID       string
	LastSeen time.Time
	Deadline time.Time
}

// Source lists the machines currently online in the local replica. It is
// read once per leadership term, after raft.Barrier().
type Source interface {
	OnlineMachines() []Machine
}

// Proposer commits offline transitions, one Raft entry per batch. It returns
// once the entry is applied (or failed); it must honour ctx.
type Proposer interface {
	ProposeOffline(ctx context.Context, batch []Expired) error
}

// Options configures a Monitor. Zero values mean the documented default.
type Options struct {
	Logger hclog.Logger // nil: no logging
	Clock  Clock        // nil: the real clock
	// CheckInterval is the detection resolution. Default 1s.
	CheckInterval time.Duration
	// FailoverGrace floors every deadline at term start + grace. 0 means per
	// machine max(threshold/2, 5s).
	FailoverGrace time.Duration
	Source        Source   // required
	Proposer      Proposer // required
	// MaxBatch bounds the machines in one proposal (one Raft entry).
	// Default 10000.
	MaxBatch int
	// ObserveDetectionDelay, if set, is called once per machine whose
	// offline was committed, with (commit time − deadline).
	ObserveDetectionDelay func(time.Duration)
}

// Monitor tracks deadlines of online machines and, while Run is active,
// proposes machines offline when their deadline passes.
type Monitor struct {
	logger   hclog.Logger
	clock    Clock
	interval time.Duration
	grace    time.Duration
	source   Source
	proposer Proposer
	maxBatch int
	observe  func(time.Duration)

	// active is read without the lock so MachineSeen and MachineGone cost one
	// atomic load on followers; it is only written with mu held.
	active atomic.Bool

	mu sync.Mutex
	// termStart is when this leadership term's Run began; every deadline is
	// floored at termStart + grace (invariant 6).
	termStart time.Time
	heap      deadlineHeap
	byID      map[string]*entry
	// proposing holds entries popped from the heap whose offline proposal is
	// in flight, so a failed proposal can put them back unless MachineSeen or
	// MachineGone superseded them meanwhile.
	proposing map[string]*entry
	// loading is true between marking active and merging Source's list;
	// gone records MachineGone calls in that window so a machine deleted
	// after Source was read is not resurrected by the merge.
	loading bool
	gone    map[string]struct{}
}

// New validates opts and returns a Monitor that is not running.
func New(opts Options) (*Monitor, error) {
	if opts.Source == nil {
		return nil, ErrNoSource
	}
	if opts.Proposer == nil {
		return nil, ErrNoProposer
	}
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	clock := opts.Clock
	if clock == nil {
		clock = realClock{}
	}
	interval := opts.CheckInterval
	if interval <= 0 {
		interval = DefaultCheckInterval
	}
	maxBatch := opts.MaxBatch
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	grace := opts.FailoverGrace
	if grace < 0 {
		grace = 0
	}
	return &Monitor{
		logger:   logger.Named("monitor"),
		clock:    clock,
		interval: interval,
		grace:    grace,
		source:   opts.Source,
		proposer: opts.Proposer,
		maxBatch: maxBatch,
		observe:  opts.ObserveDetectionDelay,
	}, nil
}

// graceFor is the failover grace for a machine with the given threshold.
func (m *Monitor) graceFor(threshold time.Duration) time.Duration {
	if m.grace > 0 {
		return m.grace
	}
	return max(threshold/2, minFailoverGrace)
}

// deadlineLocked is max(lastSeen+threshold, termStart+grace). The floor is
// applied to every deadline computed during the term, not only to those
// loaded at start: a MachineSeen that races the load with an old last_seen
// must not slip under the grace. Once the grace window is over the floor is
// in the past and changes nothing that is not already due.
func (m *Monitor) deadlineLocked(lastSeen time.Time, threshold time.Duration) time.Time {
	d := lastSeen.Add(threshold)
	if floor := m.termStart.Add(m.graceFor(threshold)); floor.After(d) {
		return floor
	}
	return d
}

// upsertLocked tracks id with the given last_seen, keeping whichever of the
// tracked and the new information is newer: a newer last_seen always wins;
// for the same last_seen the later deadline wins.
//
// A deadline that moves later (the normal case: a newer heartbeat) is stored
// on the entry without touching the heap; its heap key stays the older,
// earlier deadline, a valid lower bound that popDue re-keys when it comes
// due. A deadline that moves earlier re-keys and fixes the heap at once.
func (m *Monitor) upsertLocked(id string, lastSeen time.Time, threshold time.Duration) {
	deadline := m.deadlineLocked(lastSeen, threshold)
	if e, ok := m.byID[id]; ok {
		if lastSeen.Before(e.lastSeen) {
			return
		}
		if lastSeen.Equal(e.lastSeen) && !deadline.After(e.deadline) {
			return
		}
		earlier := deadline.Before(e.deadline)
		e.lastSeen, e.threshold, e.deadline = lastSeen, threshold, deadline
		if earlier {
			e.key = deadline
			m.heap.fix(e.index)
		}
		return
	}
	e := &entry{id: id, lastSeen: lastSeen, threshold: threshold, deadline: deadline, key: deadline}
	m.byID[id] = e
	m.heap.push(e)
}

// Seen is one machine whose last_seen moved, for MachinesSeen.
type Seen struct {
	ID        string
	LastSeen  time.Time
	Threshold time.Duration // the machine's effective offline threshold; must be > 0
}

// MachineSeen records that an online machine's last_seen moved. It is called
// after every Apply that did so, on every node; it is a cheap no-op while the
// monitor is not running and never waits for a proposal in flight. It is
// MachinesSeen with a batch of one.
func (m *Monitor) MachineSeen(id string, lastSeen time.Time, threshold time.Duration) {
	if !m.active.Load() {
		return
	}
	m.MachinesSeen([]Seen{{ID: id, LastSeen: lastSeen, Threshold: threshold}})
}

// MachinesSeen records a batch of machines whose last_seen moved (one Apply
// of a heartbeat batch), taking the lock once for the whole batch. The
// result is exactly that of calling MachineSeen for each element in order.
// Like MachineSeen it is a cheap no-op while the monitor is not running; it
// does not keep batch, so the caller may reuse it.
func (m *Monitor) MachinesSeen(batch []Seen) {
	if !m.active.Load() {
		return
	}
	// Log outside the lock; the entries are skipped below.
	for i := range batch {
		if s := &batch[i]; s.Threshold <= 0 {
			m.logger.Error("ignoring machine without a positive threshold", "machine_id", s.ID, "threshold", s.Threshold)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.active.Load() {
		return
	}
	for i := range batch {
		if s := &batch[i]; s.Threshold > 0 {
			m.seenLocked(s.ID, s.LastSeen, s.Threshold)
		}
	}
}

func (m *Monitor) seenLocked(id string, lastSeen time.Time, threshold time.Duration) {
	if m.loading {
		delete(m.gone, id)
	}
	if p, ok := m.proposing[id]; ok {
		if !lastSeen.After(p.lastSeen) {
			// The same heartbeat we are already proposing offline for.
			return
		}
		// A newer heartbeat: the FSM will ignore the proposal in flight
		// (fencepost), so the new deadline supersedes it.
		delete(m.proposing, id)
	}
	m.upsertLocked(id, lastSeen, threshold)
}

// MachineGone stops tracking a machine that was deleted or went offline.
// Like MachineSeen it is a cheap no-op while the monitor is not running.
func (m *Monitor) MachineGone(id string) {
	if !m.active.Load() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.active.Load() {
		return
	}
	if e, ok := m.byID[id]; ok {
		m.heap.remove(e.index)
		delete(m.byID, id)
	}
	delete(m.proposing, id)
	if m.loading {
		m.gone[id] = struct{}{}
	}
}

// Tracked is the number of machines with a deadline, including those whose
// offline proposal is in flight. It is 0 while not running.
func (m *Monitor) Tracked() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byID) + len(m.proposing)
}

// Run detects offline machines until ctx is cancelled. The leadership loop
// calls it after raft.Barrier() and cancels ctx when leadership is lost; Run
// then stops ticking, forgets every deadline and returns nil. It runs no
// goroutines of its own: proposals happen on the caller's goroutine, so
// when Run returns nothing of it is left. Run may be called again for the
// next term; a concurrent second call returns ErrAlreadyRunning.
func (m *Monitor) Run(ctx context.Context) error {
	if err := m.start(); err != nil {
		return err
	}
	defer m.stop()

	// Read the replica outside the lock: the Source may take FSM locks
	// that are held while Apply calls MachineSeen.
	machines := m.source.OnlineMachines()
	m.load(machines)
	if ctx.Err() != nil {
		return nil
	}

	ticker := m.clock.NewTicker(m.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			m.logger.Debug("stopping offline detection")
			return nil
		case <-ticker.C():
			m.check(ctx)
		}
	}
}

func (m *Monitor) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active.Load() {
		return ErrAlreadyRunning
	}
	m.termStart = m.clock.Now()
	m.byID = make(map[string]*entry)
	m.proposing = make(map[string]*entry)
	m.heap.reset()
	m.loading = true
	m.gone = make(map[string]struct{})
	// Active before Source is read: any Apply after the read reaches us
	// through MachineSeen, any Apply before it is in the read.
	m.active.Store(true)
	return nil
}

func (m *Monitor) load(machines []Machine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	skipped := 0
	for _, mc := range machines {
		if _, gone := m.gone[mc.ID]; gone {
			continue
		}
		if mc.Threshold <= 0 {
			skipped++
			continue
		}
		m.upsertLocked(mc.ID, mc.LastSeen, mc.Threshold)
	}
	m.loading = false
	m.gone = nil
	if skipped > 0 {
		m.logger.Error("ignored machines without a positive threshold", "count", skipped)
	}
	m.logger.Info("offline detection started", "tracked", len(m.byID), "check_interval", m.interval)
}

func (m *Monitor) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active.Store(false)
	m.byID = nil
	m.proposing = nil
	m.gone = nil
	m.loading = false
	m.heap.reset()
}

// check pops every entry whose deadline has passed and proposes them in
// batches of at most MaxBatch. The lock is released before proposing so
// MachineSeen and MachineGone never wait on Raft.
func (m *Monitor) check(ctx context.Context) {
	due := m.popDue(m.clock.Now())
	for len(due) > 0 {
		n := min(len(due), m.maxBatch)
		chunk := due[:n]
		batch := make([]Expired, n)
		for i, e := range chunk {
			batch[i] = Expired{ID: e.id, LastSeen: e.lastSeen, Deadline: e.deadline}
		}
		if err := m.proposer.ProposeOffline(ctx, batch); err != nil {
			if ctx.Err() != nil {
				// Leadership is gone; the next leader starts from the
				// replicated state and its own grace.
				return
			}
			m.logger.Warn("proposing offline failed; retrying next tick", "machines", len(due), "error", err)
			m.requeue(due)
			return
		}
		committed := m.clock.Now()
		m.done(chunk, committed)
		due = due[n:]
	}
}

// popDue pops every entry whose real deadline is at or before now. An entry
// due by its heap key but not by its deadline (a heartbeat moved it later
// lazily) is re-keyed to its deadline and sifted down instead; its new key
// is after now, so each entry is re-keyed at most once per check.
func (m *Monitor) popDue(now time.Time) []*entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var due []*entry
	for {
		e := m.heap.min()
		if e == nil || e.key.After(now) {
			return due
		}
		if e.deadline.After(now) {
			e.key = e.deadline
			m.heap.fix(e.index)
			continue
		}
		m.heap.pop()
		delete(m.byID, e.id)
		m.proposing[e.id] = e
		due = append(due, e)
	}
}

// requeue puts back entries whose proposal failed, unless MachineSeen or
// MachineGone dealt with them meanwhile.
func (m *Monitor) requeue(entries []*entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.active.Load() {
		return
	}
	for _, e := range entries {
		if m.proposing[e.id] != e {
			continue
		}
		delete(m.proposing, e.id)
		if _, ok := m.byID[e.id]; ok {
			continue
		}
		m.byID[e.id] = e
		e.key = e.deadline
		m.heap.push(e)
	}
}

func (m *Monitor) done(entries []*entry, committed time.Time) {
	m.mu.Lock()
	for _, e := range entries {
		if m.proposing[e.id] == e {
			delete(m.proposing, e.id)
		}
	}
	m.mu.Unlock()
	m.logger.Debug("proposed machines offline", "count", len(entries))
	if m.observe != nil {
		for _, e := range entries {
			m.observe(committed.Sub(e.deadline))
		}
	}
}

// Running reports whether the monitor is tracking deadlines (this node
// leads). Callers use it to skip preparing MachinesSeen batches on
// followers.
func (m *Monitor) Running() bool { return m.active.Load() }
