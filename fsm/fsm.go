package fsm

import (
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Observer hears about liveness and outbox changes after each Apply, outside
// the FSM's lock. Calls happen on every node; the leader's monitor and
// dispatcher act on them, followers ignore them cheaply. Implementations
// must not block.
type Observer interface {
	// MachinesSeen: online machines whose last_seen moved (or that came
	// online), one call per applied heartbeat batch. The slice is only
	// valid during the call.
	MachinesSeen(batch []SeenMachine)
	// MachineGone: a machine went offline or was deleted.
	MachineGone(id string)
	// OutboxChanged: deliveries were added or dropped.
	OutboxChanged()
	// Restored: the whole state was replaced by a snapshot.
	Restored()
}

// Options bound the state. Every node of a cluster must use the same values.
type Options struct {
	MaxEvents            int // finished events kept in history; default 10000
	MaxPendingDeliveries int // outbox size; default 100000
	MaxMachines          int // default 2,000,000
	MaxChannels          int // default 256
	Observer             Observer
}

// Defaults for Options.
const (
	DefaultMaxEvents            = 10000
	DefaultMaxPendingDeliveries = 100000
	DefaultMaxMachines          = 2_000_000
	DefaultMaxChannels          = 256
)

// ApplyResult is what Apply returns for every command.
type ApplyResult struct {
	Err     error
	Machine *Machine // register, rotate
	Channel *Channel // create channel
	Events  []string // ids of events the command created
	Silence *Silence // create or expire silence
	Token   *Token   // issue 11: create/delete token (no hash)
}

// FSM is the replicated state machine. Apply runs on one goroutine (Raft's);
// queries may run concurrently under the read lock. The machine-key index has
// its own sharded locks so the heartbeat path never takes the FSM lock.
type FSM struct {
	opts Options
	// applied is the index of the last entry Apply finished (Raft's own
	// AppliedIndex runs ahead of the FSM).
	applied atomic.Uint64

	mu            sync.RWMutex
	machines      *shardedMap[*Machine] // sharded for snapshots (capture.go)
	byName        map[string]string     // name → id
	channels      map[string]*Channel
	events        map[string]*Event
	order         []string // event ids, oldest first
	pendingEvents map[string]struct{}
	pendingCount  int
	statusCount   map[Status]int
	counters      Counters

	keys      *keyIndex
	labelSets map[string]*labelSet // interned label sets, by labelKey

	// Alerting (issue 10): see pipeline.go.
	silences       map[string]*Silence
	silenceOrder   []string // ids, oldest first
	notices        map[string]*Notice
	pendingNotices int
	storms         map[string]*storm   // by channel
	unsent         map[string]struct{} // machine ids whose told state may lag the truth
	toldOffline    map[string]struct{} // machine ids some channel was told offline
	noticeSeq      int                 // per Apply: notice ids are index + seq
	// history: past status segments per machine id, for uptime (issue 12, history.go).
	history *shardedMap[[]histEntry]
	// seed shards machines and history alike; captures are the snapshots
	// being persisted (capture.go).
	seed     maphash.Seed
	captures []*capture
	tokens   tokenState // issue 11: API tokens (hashes only)
}

// New returns an empty FSM.
func New(opts Options) *FSM {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.MaxPendingDeliveries <= 0 {
		opts.MaxPendingDeliveries = DefaultMaxPendingDeliveries
	}
	if opts.MaxMachines <= 0 {
		opts.MaxMachines = DefaultMaxMachines
	}
	if opts.MaxChannels <= 0 {
		opts.MaxChannels = DefaultMaxChannels
	}
	f := &FSM{opts: opts, keys: newKeyIndex(), seed: maphash.MakeSeed()}
	f.reset()
	return f
}

func (f *FSM) reset() {
	f.abortCaptures()
	f.machines = newShardedMap[*Machine](f.seed)
	f.byName = make(map[string]string)
	f.channels = make(map[string]*Channel)
	f.events = make(map[string]*Event)
	f.order = nil
	f.pendingEvents = make(map[string]struct{})
	f.pendingCount = 0
	f.statusCount = map[Status]int{StatusUnknown: 0, StatusOnline: 0, StatusOffline: 0}
	f.counters = Counters{}
	f.labelSets = make(map[string]*labelSet)
	f.statusCount[StatusPaused] = 0
	f.silences = make(map[string]*Silence)
	f.silenceOrder = nil
	f.notices = make(map[string]*Notice)
	f.pendingNotices = 0
	f.storms = make(map[string]*storm)
	f.unsent = make(map[string]struct{})
	f.toldOffline = make(map[string]struct{})
	f.history = newShardedMap[[]histEntry](f.seed) // issue 12
	f.tokens.reset()                               // issue 11
}

// effects collects what observers must hear once the lock is released.
type effects struct {
	seen          []SeenMachine
	gone          []string
	retimed       []SeenMachine // threshold changed: forget, then see again
	outboxChanged bool
}

// SeenMachine is one machine in Observer.MachinesSeen: its new last_seen
// and effective offline threshold.
type SeenMachine struct {
	ID        string
	LastSeen  time.Time
	Threshold time.Duration
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	defer f.applied.Store(l.Index)
	if l.Type != raft.LogCommand {
		return nil
	}
	var fx effects
	res := f.applyCommand(l.Index, l.Data, &fx)
	f.notify(&fx)
	return res
}

// ApplyBytes applies a framed command outside Raft, for tests and tools.
func (f *FSM) ApplyBytes(index uint64, data []byte) *ApplyResult {
	r, _ := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(*ApplyResult)
	return r
}

func (f *FSM) notify(fx *effects) {
	o := f.opts.Observer
	if o == nil {
		return
	}
	if len(fx.seen) > 0 {
		o.MachinesSeen(fx.seen)
	}
	for _, id := range fx.gone {
		o.MachineGone(id)
	}
	if len(fx.retimed) > 0 {
		for _, s := range fx.retimed {
			o.MachineGone(s.ID)
		}
		o.MachinesSeen(fx.retimed)
	}
	if fx.outboxChanged {
		o.OutboxChanged()
	}
}

func (f *FSM) applyCommand(index uint64, data []byte, fx *effects) *ApplyResult {
	if len(data) == 0 {
		return &ApplyResult{Err: fmt.Errorf("%w: empty command", ErrBadCommand)}
	}
	body := data[1:]
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noticeSeq = 0
	switch CommandType(data[0]) {
	case CmdRegisterMachine:
		var c RegisterMachine
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}
		}
		return f.registerMachine(c)
	case CmdDeleteMachine:
		var c DeleteMachine
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}
		}
		return f.deleteMachine(c, fx)
	case CmdRotateKey:
		var c RotateKey
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}
		}
		return f.rotateKey(c)
	case CmdHeartbeatBatch:
		var c HeartbeatBatch
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}
		}
		return f.heartbeatBatch(index, c, fx)
	case CmdMarkOffline:
		var c MarkOffline
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}
		}
		return f.markOffline(index, c, fx)
	case CmdCreateChannel:
		var c CreateChannel
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}
		}
		return f.createChannel(c)
	case CmdDeleteChannel:
		var c DeleteChannel
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}
		}
		return f.deleteChannel(c, fx)
	case CmdRecordDeliveries:
		var c RecordDeliveries
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}
		}
		return f.recordDeliveries(c, fx)
	case CmdUpdateMachine:
		return apply(body, func(c UpdateMachine) *ApplyResult { return f.updateMachine(c, fx) })
	case CmdPauseMachine:
		return apply(body, func(c PauseMachine) *ApplyResult { return f.pauseMachine(c, fx) })
	case CmdResumeMachine:
		return apply(body, func(c ResumeMachine) *ApplyResult { return f.resumeMachine(c, fx) })
	case CmdReportFailure:
		return apply(body, func(c ReportFailure) *ApplyResult { return f.reportFailure(index, c, fx) })
	case CmdUpdateChannel:
		return apply(body, func(c UpdateChannel) *ApplyResult { return f.updateChannel(c) })
	case CmdCreateSilence:
		return apply(body, func(c CreateSilence) *ApplyResult { return f.createSilence(c, fx) })
	case CmdExpireSilence:
		return apply(body, func(c ExpireSilence) *ApplyResult { return f.expireSilence(index, c, fx) })
	case CmdAlertingTick:
		return apply(body, func(c AlertingTick) *ApplyResult { return f.alertingTick(index, c, fx) })
	case CmdSetAgentFacts: // issue 13
		var c SetAgentFacts
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}
		}
		return f.setAgentFacts(c)
	default:
		if res, ok := f.applySecurity(CommandType(data[0]), body); ok { // issue 11
			return res
		}
		// An entry from a newer version: refuse loudly rather than guess.
		return &ApplyResult{Err: fmt.Errorf("%w: unknown command type %d", ErrBadCommand, data[0])}
	}
}

// apply decodes a command body and runs fn on it.
func apply[C any](body []byte, fn func(C) *ApplyResult) *ApplyResult {
	var c C
	if err := decodeBody(body, &c); err != nil {
		return &ApplyResult{Err: err}
	}
	return fn(c)
}

// AppliedIndex is the Raft index of the last entry Apply finished.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }
