package fsm_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lunasentri/lunasentri/fsm"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is an arbitrary fixed start of time; nothing in these tests reads a clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// defThreshold is the cluster default the fake leader stamps into batches.
const defThreshold = 2 * time.Minute

// harness applies commands with strictly increasing Raft indexes, as Raft
// does, and checks the FSM's invariants after every one.
type harness struct {
	t   testing.TB
	f   *fsm.FSM
	idx uint64
}

func newHarness(t testing.TB, opts fsm.Options) *harness {
	t.Helper()
	return &harness{t: t, f: fsm.New(opts)}
}

// raw applies framed bytes at the next index.
func (h *harness) raw(data []byte) *fsm.ApplyResult {
	h.t.Helper()
	h.idx++
	res := h.f.ApplyBytes(h.idx, data)
	if res == nil {
		h.t.Fatalf("ApplyBytes(%d) returned nil", h.idx)
	}
	if err := h.f.CheckInvariants(); err != nil {
		h.t.Fatalf("after index %d: %v", h.idx, err)
	}
	return res
}

func (h *harness) apply(typ fsm.CommandType, body any) *fsm.ApplyResult {
	h.t.Helper()
	return h.raw(fsm.MustEncode(typ, body))
}

func (h *harness) ok(typ fsm.CommandType, body any) *fsm.ApplyResult {
	h.t.Helper()
	res := h.apply(typ, body)
	if res.Err != nil {
		h.t.Fatalf("command %d: %v", typ, res.Err)
	}
	return res
}

func machineID(name string) string { return "id-" + name }
func keyOf(name string) string     { return "key-" + name }

func newMachine(name string, labels map[string]string, threshold time.Duration) fsm.Machine {
	return fsm.Machine{
		ID: machineID(name), Name: name, Hostname: name + ".example",
		Labels: labels, OfflineThreshold: threshold,
		KeyHash: fsm.HashKey(keyOf(name)), CreatedAt: t0,
	}
}

func (h *harness) register(name string, labels map[string]string, threshold time.Duration) {
	h.t.Helper()
	h.ok(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: newMachine(name, labels, threshold)})
}

func (h *harness) channel(name, typ string, match map[string]string) {
	h.t.Helper()
	h.ok(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{
		Name: name, Type: typ, URL: "https://hooks.example/" + name, Secret: "s-" + name, ChatID: "42", Match: match,
		// These tests are about single deliveries; digests have their own.
		Policy: fsm.ChannelPolicy{GroupAfter: fsm.MaxGroupAfter},
	}})
}

// beat sends one heartbeat per name, all taken at seen, in a batch at at.
func (h *harness) beat(at, seen time.Time, names ...string) *fsm.ApplyResult {
	h.t.Helper()
	c := fsm.HeartbeatBatch{At: at, DefaultThreshold: defThreshold, Alerting: noFlapDamping}
	for _, n := range names {
		c.Beats = append(c.Beats, fsm.Beat{ID: machineID(n), SeenAt: seen.UnixNano()})
	}
	return h.ok(fsm.CmdHeartbeatBatch, c)
}

// markOffline proposes name offline with the fencepost the FSM holds now.
func (h *harness) markOffline(at time.Time, name string) *fsm.ApplyResult {
	h.t.Helper()
	return h.markOfflineAt(at, name, h.machine(name).LastSeen)
}

func (h *harness) markOfflineAt(at time.Time, name string, fencepost time.Time) *fsm.ApplyResult {
	h.t.Helper()
	return h.ok(fsm.CmdMarkOffline, fsm.MarkOffline{At: at, Alerting: noFlapDamping, Machines: []fsm.OfflineMark{{ID: machineID(name), LastSeen: fencepost}}})
}

// goOffline brings name online at at (if it is not) and then offline one
// threshold later; it returns the offline event's id and the time it happened.
func (h *harness) goOffline(at time.Time, name string) (string, time.Time) {
	h.t.Helper()
	if h.machine(name).Status != fsm.StatusOnline {
		h.beat(at, at, name)
	}
	off := h.machine(name).LastSeen.Add(defThreshold + time.Second)
	res := h.markOffline(off, name)
	if len(res.Events) != 1 {
		h.t.Fatalf("goOffline(%s): events %v", name, res.Events)
	}
	return res.Events[0], off
}

func (h *harness) record(at time.Time, results ...fsm.DeliveryResult) {
	h.t.Helper()
	h.ok(fsm.CmdRecordDeliveries, fsm.RecordDeliveries{At: at, Results: results})
}

func (h *harness) machine(name string) fsm.Machine {
	h.t.Helper()
	m, err := h.f.MachineByName(name)
	if err != nil {
		h.t.Fatalf("MachineByName(%s): %v", name, err)
	}
	return m
}

func (h *harness) event(id string) fsm.Event {
	h.t.Helper()
	ev, ok := h.f.Event(id)
	if !ok {
		h.t.Fatalf("event %s not found", id)
	}
	return ev
}

func wantErrIs(t testing.TB, got, want error) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Fatalf("err = %v, want nil", got)
		}
		return
	}
	if !errors.Is(got, want) {
		t.Fatalf("err = %v, want %v", got, want)
	}
}

// deliveryStates renders an event's deliveries as "channel=state" strings.
func deliveryStates(ev fsm.Event) string {
	var b bytes.Buffer
	for i, d := range ev.Deliveries {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", d.Channel, d.State)
	}
	return b.String()
}

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
	failWrites        error
}

func (s *memSink) ID() string { return "mem" }

func (s *memSink) Write(p []byte) (int, error) {
	if s.failWrites != nil {
		return 0, s.failWrites
	}
	return s.Buffer.Write(p)
}

func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// snapshotBytes takes a snapshot and persists it into memory.
func snapshotBytes(f *fsm.FSM) ([]byte, error) {
	snap, err := f.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("Snapshot: %w", err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		return nil, fmt.Errorf("Persist: %w", err)
	}
	if !sink.closed || sink.cancelled {
		return nil, fmt.Errorf("sink closed=%v cancelled=%v after a good Persist", sink.closed, sink.cancelled)
	}
	return sink.Bytes(), nil
}

// persist is snapshotBytes for tests.
func persist(t testing.TB, f *fsm.FSM) []byte {
	t.Helper()
	b, err := snapshotBytes(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readCloser records whether Restore closed it.
type readCloser struct {
	io.Reader
	closed bool
}

func (r *readCloser) Close() error { r.closed = true; return nil }

// restore runs Restore, turning a panic into an error so that one bad
// snapshot cannot take the whole test binary down.
func restore(f *fsm.FSM, data []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("Restore panicked: %v", p)
		}
	}()
	rc := &readCloser{Reader: bytes.NewReader(data)}
	err = f.Restore(rc)
	if !rc.closed {
		return fmt.Errorf("Restore did not close its reader (err %v)", err)
	}
	return err
}

// recObserver records every callback.
type recObserver struct {
	mu       sync.Mutex
	seen     []seenCall
	gone     []string
	outbox   int
	restored int
}

type seenCall struct {
	id        string
	lastSeen  time.Time
	threshold time.Duration
}

func (o *recObserver) MachinesSeen(batch []fsm.SeenMachine) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range batch {
		o.seen = append(o.seen, seenCall{s.ID, s.LastSeen, s.Threshold})
	}
}

func (o *recObserver) MachineGone(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gone = append(o.gone, id)
}

func (o *recObserver) OutboxChanged() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outbox++
}

func (o *recObserver) Restored() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.restored++
}

// take returns and clears what was recorded.
func (o *recObserver) take() (seen []seenCall, gone []string, outbox, restored int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen, gone, outbox, restored = o.seen, o.gone, o.outbox, o.restored
	o.seen, o.gone, o.outbox, o.restored = nil, nil, 0, 0
	return
}

// noFlapDamping keeps flap damping out of tests about single transitions.
var noFlapDamping = fsm.AlertingConfig{FlapThreshold: 1000}
