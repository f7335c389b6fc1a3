package fsm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
)

// snapshotFormat and snapshotVersion head every snapshot. A newer version
// may add fields; an older binary refuses a newer version instead of
// silently dropping what it does not understand.
const (
	snapshotFormat  = "lunasentri-fsm"
	snapshotVersion = 2
)

type snapshotHeader struct {
	Format   string   `json:"format"`
	Version  int      `json:"version"`
	Counters Counters `json:"counters"`
	Machines int      `json:"machines"`
	Channels int      `json:"channels"`
	Events   int      `json:"events"`
	// Version 2 (alerting): sections after the events.
	Silences int `json:"silences,omitempty"`
	Notices  int `json:"notices,omitempty"`
	Storms   int `json:"storms,omitempty"`
	// History: machines with status history, written after the events
	// (issue 12). Absent in older snapshots, which restore with none.
	History int `json:"history,omitempty"`
}

// snapshot is the state at one Raft index. Snapshot copies the bounded
// sections at once; Persist copies the machines and their history from the
// capture (capture.go), then sorts, encodes and writes, all without
// blocking Apply for more than one shard's copy.
type snapshot struct {
	f        *FSM
	capture  *capture
	counters Counters
	machines []Machine // filled by Persist
	channels []Channel
	events   []Event
	silences []Silence
	notices  []Notice
	storms   []storm
	history  []historySnapshot // issue 12; filled by Persist
	tokens   []Token           // issue 11
}

// Snapshot implements raft.FSM. Raft calls it on the goroutine that runs
// Apply, so it copies only what is bounded by a small limit (channels,
// events, silences, notices, storms, tokens) and leaves the machines to
// Persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock() // opening a capture changes what Apply records
	defer f.mu.Unlock()
	s := &snapshot{
		f:        f,
		capture:  f.startCapture(),
		counters: f.counters,
		channels: make([]Channel, 0, len(f.channels)),
		events:   make([]Event, 0, len(f.order)),
	}
	// Labels and Match maps are never mutated after insert, so sharing them
	// with the copy is safe.
	for _, c := range f.channels {
		s.channels = append(s.channels, *c)
	}
	for _, id := range f.order {
		s.events = append(s.events, copyEvent(f.events[id]))
	}
	for _, id := range f.silenceOrder {
		s.silences = append(s.silences, copySilence(f.silences[id]))
	}
	for _, n := range f.notices {
		s.notices = append(s.notices, copyNotice(n))
	}
	for _, st := range f.storms {
		c := *st
		c.Recent = slices.Clone(st.Recent)
		s.storms = append(s.storms, c)
	}
	s.tokens = f.snapshotTokens() // issue 11
	return s, nil
}

// Persist writes the snapshot as JSON lines: a header, then machines sorted
// by id, channels by name, events oldest first. The order makes snapshots of
// equal states byte-identical.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if s.machines == nil {
		var err error
		if s.machines, s.history, err = s.f.collect(s.capture); err != nil {
			_ = sink.Cancel()
			return err
		}
	}
	if err := s.encode(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

// encode writes the snapshot to w.
func (s *snapshot) encode(w io.Writer) error {
	// Sort pointers: moving million-entry slices of large structs costs
	// more than the encoding.
	byID := make([]*Machine, len(s.machines))
	for i := range s.machines {
		byID[i] = &s.machines[i]
	}
	slices.SortFunc(byID, func(a, b *Machine) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(s.channels, func(a, b Channel) int { return strings.Compare(a.Name, b.Name) })
	sortHistory(s.history)
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	slices.SortFunc(s.notices, func(a, b Notice) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(s.storms, func(a, b storm) int { return strings.Compare(a.Channel, b.Channel) })
	hdr := snapshotHeader{
		Format: snapshotFormat, Version: snapshotVersion, Counters: s.counters,
		Machines: len(s.machines), Channels: len(s.channels), Events: len(s.events),
		Silences: len(s.silences), Notices: len(s.notices), Storms: len(s.storms),
		History: len(s.history),
	}
	if err := enc.Encode(hdr); err != nil {
		return fmt.Errorf("write snapshot header: %w", err)
	}
	for _, m := range byID {
		if err := enc.Encode(m); err != nil {
			return fmt.Errorf("write snapshot machine: %w", err)
		}
	}
	for i := range s.channels {
		if err := enc.Encode(&s.channels[i]); err != nil {
			return fmt.Errorf("write snapshot channel: %w", err)
		}
	}
	for i := range s.events {
		if err := enc.Encode(&s.events[i]); err != nil {
			return fmt.Errorf("write snapshot event: %w", err)
		}
	}
	if err := encodeAll(enc, s.silences, "silence"); err != nil {
		return err
	}
	if err := encodeAll(enc, s.notices, "notice"); err != nil {
		return err
	}
	if err := encodeAll(enc, s.storms, "storm"); err != nil {
		return err
	}
	for i := range s.history {
		if err := enc.Encode(&s.history[i]); err != nil {
			return fmt.Errorf("write snapshot history: %w", err)
		}
	}
	if err := encodeTokens(enc, s.tokens); err != nil { // issue 11
		return err
	}
	return bw.Flush()
}

// Release implements raft.FSMSnapshot. A snapshot released unpersisted
// closes its capture, so Apply stops recording for it.
func (s *snapshot) Release() { s.f.endCapture(s.capture) }

// Restore implements raft.FSM: it replaces all state with the snapshot's.
// Nothing changes unless the whole snapshot decodes.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(rc, 256<<10))
	var hdr snapshotHeader
	if err := dec.Decode(&hdr); err != nil {
		return fmt.Errorf("read snapshot header: %w", err)
	}
	if hdr.Format != snapshotFormat {
		return fmt.Errorf("not a lunasentri snapshot (format %q)", hdr.Format)
	}
	if hdr.Version > snapshotVersion {
		return fmt.Errorf("snapshot version %d is newer than this binary understands (%d)", hdr.Version, snapshotVersion)
	}
	if hdr.Machines < 0 || hdr.Channels < 0 || hdr.Events < 0 || hdr.History < 0 {
		return fmt.Errorf("corrupt snapshot header: negative count")
	}
	// The header's count sizes the slice only up to MaxMachines, so a
	// corrupt header cannot make us allocate without bound.
	machines, err := decodeN[Machine](dec, hdr.Machines, min(hdr.Machines, f.opts.MaxMachines), "machine")
	if err != nil {
		return err
	}
	channels, err := decodeN[Channel](dec, hdr.Channels, min(hdr.Channels, 1<<16), "channel")
	if err != nil {
		return err
	}
	events, err := decodeN[Event](dec, hdr.Events, min(hdr.Events, 1<<16), "event")
	if err != nil {
		return err
	}
	if hdr.Silences < 0 || hdr.Notices < 0 || hdr.Storms < 0 {
		return fmt.Errorf("corrupt snapshot header: negative count")
	}
	silences, err := decodeN[Silence](dec, hdr.Silences, min(hdr.Silences, 1<<12), "silence")
	if err != nil {
		return err
	}
	for i := range silences {
		if err := CompileSilence(&silences[i]); err != nil {
			return fmt.Errorf("snapshot silence %s: %w", silences[i].ID, err)
		}
	}
	notices, err := decodeN[Notice](dec, hdr.Notices, min(hdr.Notices, 1<<12), "notice")
	if err != nil {
		return err
	}
	storms, err := decodeN[storm](dec, hdr.Storms, min(hdr.Storms, 1<<10), "storm")
	if err != nil {
		return err
	}
	history, err := decodeN[historySnapshot](dec, hdr.History, min(hdr.History, f.opts.MaxMachines), "history")
	if err != nil {
		return err
	}
	// Issue 11: optional sections after the events, then the semantic
	// checks, all before anything is swapped in.
	extra, err := decodeExtra(dec)
	if err != nil {
		return err
	}
	if err := f.validateSnapshot(machines, channels, events, extra); err != nil {
		return err
	}

	f.mu.Lock()
	f.reset()
	f.counters = hdr.Counters
	for i := range machines {
		m := &machines[i]
		if len(m.Labels) == 0 {
			m.Labels = nil
		}
		f.indexMachine(m)
		if a := m.Alerting; a != nil {
			if a.Unsent {
				f.unsent[m.ID] = struct{}{}
			}
			if len(a.Told) > 0 {
				f.toldOffline[m.ID] = struct{}{}
			}
		}
	}
	f.keys.replace(machines)
	for i := range silences {
		f.insertSilence(&silences[i])
	}
	for i := range notices {
		n := &notices[i]
		f.notices[n.ID] = n
		if n.State == DeliveryPending {
			f.pendingNotices++
		}
	}
	for i := range storms {
		f.storms[storms[i].Channel] = &storms[i]
	}
	f.restoreHistory(history) // issue 12
	for i := range channels {
		c := &channels[i]
		if c.Match == nil {
			c.Match = map[string]string{}
		}
		f.channels[c.Name] = c
	}
	for i := range events {
		ev := &events[i]
		f.events[ev.ID] = ev
		f.order = append(f.order, ev.ID)
		for _, d := range ev.Deliveries {
			if d.State == DeliveryPending {
				f.pendingCount++
				f.pendingEvents[ev.ID] = struct{}{}
			}
		}
	}
	f.installExtra(extra) // issue 11
	f.mu.Unlock()
	if f.opts.Observer != nil {
		f.opts.Observer.Restored()
	}
	return nil
}

// decodeN reads n records. The count comes from the snapshot, so the first
// allocation is capHint (bounded by the caller), not n.
func decodeN[T any](dec *json.Decoder, n, capHint int, what string) ([]T, error) {
	out := make([]T, 0, capHint)
	for i := 0; i < n; i++ {
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("read snapshot %s %d: %w", what, i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func encodeAll[T any](enc *json.Encoder, items []T, what string) error {
	for i := range items {
		if err := enc.Encode(&items[i]); err != nil {
			return fmt.Errorf("write snapshot %s: %w", what, err)
		}
	}
	return nil
}

func copyAlerting(a *MachineAlerting) *MachineAlerting {
	out := *a
	out.Flips = slices.Clone(a.Flips)
	if a.Told != nil {
		out.Told = make(map[string]*Told, len(a.Told))
		for k, v := range a.Told {
			t := *v
			out.Told[k] = &t
		}
	}
	return &out
}
