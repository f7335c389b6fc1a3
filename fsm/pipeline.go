package fsm

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// The notification pipeline, decided inside Apply so every node agrees and a
// new leader continues the same plan (DESIGN.md "Second wave"):
//
//	match channel → silence / pause / flap check → digest or alone → outbox
//
// Suppressions change what is sent, never what is recorded. What each
// channel was last told is kept per (machine, channel); when a suppression
// ends, reconcile sends at most one notification per pair, only where the
// told state differs from the truth.

// transition is one status change produced by a command, before routing.
type transition struct {
	m  *Machine
	ev *Event // in the history
}

// routeTransitions decides, for every matching channel of every transition
// of one command, how the channel hears of it. Counting the command's
// transitions per channel first lets a mass outage that arrives in one
// entry go into digests whole, while an isolated transition is sent alone
// at once.
func (f *FSM) routeTransitions(index uint64, at time.Time, cfg AlertingConfig, ts []transition, fx *effects) {
	if len(ts) == 0 {
		return
	}
	names := f.sortedChannelNames()
	incoming := make(map[string]int, len(names))
	suppressed := make([]string, len(ts))
	for i, t := range ts {
		suppressed[i] = f.flapAndSuppression(index, at, cfg, t.m, fx)
		if suppressed[i] != "" {
			continue
		}
		for _, n := range names {
			if f.channels[n].Matches(t.m.Labels) {
				incoming[n]++
			}
		}
	}
	for i, t := range ts {
		for _, n := range names {
			ch := f.channels[n]
			if !ch.Matches(t.m.Labels) {
				continue
			}
			if suppressed[i] != "" {
				f.setDelivery(t.ev, ch, suppressed[i], "", at)
				f.markUnsent(t.m)
				continue
			}
			if f.toldMatches(t.m, n) {
				// The channel already believes this status (the way back was
				// held): telling it again would be a duplicate.
				f.setDelivery(t.ev, ch, DeliverySuppressed, "", at)
				continue
			}
			f.send(index, at, ch, t.m, t.ev, nil, incoming[n], fx)
		}
	}
	fx.outboxChanged = true
}

// flapAndSuppression records a transition's flip, starts flap damping when
// the machine crosses the threshold (one flapping notice per channel), and
// says whether the transition's notifications are suppressed: silenced,
// suppressed (flapping) or "" (send).
func (f *FSM) flapAndSuppression(index uint64, at time.Time, cfg AlertingConfig, m *Machine, fx *effects) string {
	a := f.alerting(m)
	window := cfg.flapWindow()
	a.Flips = append(a.Flips, at)
	cut := 0
	for cut < len(a.Flips) && !a.Flips[cut].After(at.Add(-window)) {
		cut++
	}
	if extra := len(a.Flips) - cut - cfg.flapThreshold(); extra > 0 {
		cut += extra
	}
	a.Flips = slices.Clone(a.Flips[cut:])
	silenced := f.silencedAt(m, at)
	if !m.Flapping && len(a.Flips) >= cfg.flapThreshold() {
		m.Flapping = true
		f.counters.FlappingStarted++
		if !silenced {
			f.noticeFlapping(index, at, m, fx)
		}
	}
	switch {
	case silenced:
		f.counters.SuppressedSilenced++
		return DeliverySilenced
	case m.Flapping:
		f.counters.SuppressedFlapping++
		return DeliverySuppressed
	}
	return ""
}

// send tells channel ch of machine m's current status: the transition
// event ev (in the history; nil when it left it) or the copy cp (a reminder
// or a late transition). It goes alone, or into the channel's digest when
// the channel is in a storm; incoming is how many notifications this
// command sends the channel in all. The told state follows.
func (f *FSM) send(index uint64, at time.Time, ch *Channel, m *Machine, ev *Event, cp *Event, incoming int, fx *effects) {
	body := cp
	if body == nil {
		c := eventBody(ev)
		body = &c
	}
	if digest := f.stormDigest(index, at, ch, incoming); digest != nil {
		digest.Events = append(digest.Events, *body)
		if ev != nil {
			f.setDelivery(ev, ch, DeliveryGrouped, digest.ID, at)
		}
		if len(digest.Events) >= MaxDigestEvents {
			f.closeDigest(digest)
		}
	} else if ev != nil {
		f.setDelivery(ev, ch, DeliveryPending, "", at)
	} else {
		kind := NoticeReconcile
		if body.Reminder > 0 {
			kind = NoticeReminder
		}
		f.addNotice(&Notice{
			ID: body.ID, Kind: kind, Channel: ch.Name, ChannelType: ch.Type, State: DeliveryPending,
			CreatedAt: at, UpdatedAt: at, Events: []Event{*body},
		})
	}
	f.tell(m, ch.Name, at)
	fx.outboxChanged = true
}

// toldMatches reports whether channel was last told m's current status.
func (f *FSM) toldMatches(m *Machine, channel string) bool {
	told := false
	if m.Alerting != nil {
		_, told = m.Alerting.Told[channel]
	}
	return told == (m.Status == StatusOffline)
}

// tell records that channel now knows m's current status.
func (f *FSM) tell(m *Machine, channel string, at time.Time) {
	a := f.alerting(m)
	if m.Status == StatusOffline {
		if a.Told == nil {
			a.Told = make(map[string]*Told)
		}
		if t, ok := a.Told[channel]; ok {
			t.At = at // a reminder
		} else {
			a.Told[channel] = &Told{At: at}
		}
		f.toldOffline[m.ID] = struct{}{}
		return
	}
	delete(a.Told, channel)
	if len(a.Told) == 0 {
		a.Told = nil
		delete(f.toldOffline, m.ID)
	}
}

// stormDigest returns the collecting digest a notification for ch must go
// into, opening one when ch has had more than group_after notifications
// within group_window (counting this command's); nil means send alone.
func (f *FSM) stormDigest(index uint64, at time.Time, ch *Channel, incoming int) *Notice {
	st := f.storms[ch.Name]
	if st == nil {
		st = &storm{Channel: ch.Name}
		f.storms[ch.Name] = st
	}
	after, window := ch.Policy.groupAfter(), ch.Policy.groupWindow()
	cut := 0
	for cut < len(st.Recent) && !st.Recent[cut].After(at.Add(-window)) {
		cut++
	}
	st.Recent = append(st.Recent[cut:], at)
	if st.cmdIndex != index {
		st.cmdIndex, st.cmdCount = index, 0
	}
	st.cmdCount++
	if len(st.Recent) > after+1 {
		st.Recent = slices.Clone(st.Recent[len(st.Recent)-after-1:])
	}
	if st.Open != "" {
		if d, ok := f.notices[st.Open]; ok && d.State == NoticeCollecting {
			return d
		}
		st.Open = ""
	}
	// More than group_after within the window: those before this command
	// plus all this command brings. Recent holds at most after+1, so a
	// capped Recent can only undercount the earlier ones once the rule has
	// already been met.
	if before := max(0, len(st.Recent)-st.cmdCount); before+incoming <= after {
		return nil
	}
	d := &Notice{
		ID: fmt.Sprintf("dg-%d-%d", index, f.noticeSeq), Kind: NoticeDigest,
		Channel: ch.Name, ChannelType: ch.Type, State: NoticeCollecting,
		CreatedAt: at, UpdatedAt: at, ClosesAt: at.Add(window), GroupBy: slices.Clone(ch.Policy.GroupBy),
	}
	f.noticeSeq++
	f.addNotice(d)
	st.Open = d.ID
	return d
}

// closeDigest makes a collecting digest pending: the dispatcher sends it.
func (f *FSM) closeDigest(d *Notice) {
	if d.State != NoticeCollecting {
		return
	}
	d.State = DeliveryPending
	f.pendingNotices++
	f.counters.DigestsClosed++
	if st := f.storms[d.Channel]; st != nil && st.Open == d.ID {
		st.Open = ""
	}
}

func (f *FSM) addNotice(n *Notice) {
	f.notices[n.ID] = n
	if n.State == DeliveryPending {
		f.pendingNotices++
	}
	switch n.Kind {
	case NoticeReminder:
		f.counters.RemindersQueued++
	}
}

// noticeFlapping queues one machine.flapping notice per matching channel.
func (f *FSM) noticeFlapping(index uint64, at time.Time, m *Machine, fx *effects) {
	for _, n := range f.sortedChannelNames() {
		ch := f.channels[n]
		if !ch.Matches(m.Labels) {
			continue
		}
		body := Event{
			ID: fmt.Sprintf("fl-%d-%d", index, f.noticeSeq), Type: EventFlapping, OccurredAt: at,
			Machine: machineBody(m),
		}
		f.noticeSeq++
		f.addNotice(&Notice{
			ID: body.ID, Kind: NoticeFlapping, Channel: ch.Name, ChannelType: ch.Type,
			State: DeliveryPending, CreatedAt: at, UpdatedAt: at, Events: []Event{body},
		})
		fx.outboxChanged = true
	}
}

// setDelivery sets ev's delivery for ch, adding it if missing; a pending
// delivery counts against the outbox.
func (f *FSM) setDelivery(ev *Event, ch *Channel, state, digest string, at time.Time) {
	var d *Delivery
	for i := range ev.Deliveries {
		if ev.Deliveries[i].Channel == ch.Name {
			d = &ev.Deliveries[i]
		}
	}
	if d == nil {
		ev.Deliveries = append(ev.Deliveries, Delivery{Channel: ch.Name, ChannelType: ch.Type})
		d = &ev.Deliveries[len(ev.Deliveries)-1]
	}
	if d.State == DeliveryPending {
		return
	}
	d.State, d.Digest, d.UpdatedAt = state, digest, at
	if state != DeliveryPending {
		return
	}
	if f.pendingCount >= f.opts.MaxPendingDeliveries {
		d.State = DeliveryFailed
		d.LastError = fmt.Sprintf("outbox full (%d pending deliveries)", f.pendingCount)
		f.counters.DeliveriesDropped++
		return
	}
	f.pendingCount++
	f.pendingEvents[ev.ID] = struct{}{}
}

func (f *FSM) markUnsent(m *Machine) {
	f.alerting(m).Unsent = true
	f.unsent[m.ID] = struct{}{}
}

func (f *FSM) alerting(m *Machine) *MachineAlerting {
	if m.Alerting == nil {
		m.Alerting = &MachineAlerting{}
	}
	return m.Alerting
}

// suppressedAt says why m's notifications are held at t, or "".
func (f *FSM) suppressedAt(m *Machine, t time.Time) string {
	switch {
	case m.Status == StatusPaused:
		return "paused"
	case m.Status == StatusUnknown:
		return "unknown" // resumed, no beat yet: nothing true to tell
	case f.silencedAt(m, t):
		return DeliverySilenced
	case m.Flapping:
		return DeliverySuppressed
	}
	return ""
}

// reconcile releases held notifications: for each machine whose told state
// may differ from the truth and that is no longer suppressed at `at`, every
// matching channel told something else than the current status gets exactly
// one notification of it. A flapping machine stable for the flap window
// stops flapping first.
func (f *FSM) reconcile(index uint64, at time.Time, cfg AlertingConfig, fx *effects) {
	if len(f.unsent) == 0 {
		return
	}
	ids := slices.Sorted(maps.Keys(f.unsent))
	type item struct {
		m     *Machine
		chans []*Channel
	}
	var items []item
	incoming := map[string]int{}
	for _, id := range ids {
		m, ok := f.mutableMachine(id)
		if !ok {
			delete(f.unsent, id)
			continue
		}
		a := f.alerting(m)
		if m.Flapping && f.flapStable(m, at, cfg) {
			m.Flapping = false
			a.Flips = nil
		}
		if f.suppressedAt(m, at) != "" {
			continue
		}
		var chans []*Channel
		for _, n := range f.sortedChannelNames() {
			ch := f.channels[n]
			if !ch.Matches(m.Labels) {
				continue
			}
			_, told := a.Told[n]
			if told != (m.Status == StatusOffline) {
				chans = append(chans, ch)
				incoming[n]++
			}
		}
		for n := range a.Told {
			if _, ok := f.channels[n]; !ok {
				delete(a.Told, n) // the channel is gone
			}
		}
		a.Unsent = false
		delete(f.unsent, id)
		items = append(items, item{m: m, chans: chans})
	}
	for _, it := range items {
		ev := f.events[it.m.Alerting.TransitionEvent]
		for _, ch := range it.chans {
			if ev != nil && ev.Machine.ID == it.m.ID && statusOfEvent(ev.Type) == it.m.Status {
				f.send(index, at, ch, it.m, ev, nil, incoming[ch.Name], fx)
				continue
			}
			// The transition left the history (or predates told state):
			// tell the current status as a notice of its own.
			body := Event{
				ID: fmt.Sprintf("rc-%d-%d", index, f.noticeSeq), OccurredAt: it.m.StatusChangedAt,
				Machine: machineBody(it.m), Reason: it.m.Reason, Message: it.m.Message,
			}
			f.noticeSeq++
			body.Type = EventOnline
			if it.m.Status == StatusOffline {
				body.Type = EventOffline
			}
			f.send(index, at, ch, it.m, nil, &body, incoming[ch.Name], fx)
		}
		f.counters.Reconciled += uint64(len(it.chans))
	}
}

func (f *FSM) flapStable(m *Machine, at time.Time, cfg AlertingConfig) bool {
	a := f.alerting(m)
	if len(a.Flips) == 0 {
		return true
	}
	return !at.Before(a.Flips[len(a.Flips)-1].Add(cfg.flapWindow()))
}

// remind queues the reminders due at `at`: one per (machine, channel) told
// offline whose repeat_interval has passed, while the machine is offline
// and not suppressed. Many due at once go out as a digest.
func (f *FSM) remind(index uint64, at time.Time, fx *effects) {
	type due struct {
		m  *Machine
		ch *Channel
		t  *Told
	}
	var list []due
	incoming := map[string]int{}
	for _, id := range slices.Sorted(maps.Keys(f.toldOffline)) {
		m, ok := f.mutableMachine(id)
		if !ok || m.Status != StatusOffline || f.suppressedAt(m, at) != "" {
			continue
		}
		for _, n := range slices.Sorted(maps.Keys(m.Alerting.Told)) {
			ch, ok := f.channels[n]
			t := m.Alerting.Told[n]
			if !ok || ch.Policy.RepeatInterval <= 0 || at.Before(t.At.Add(ch.Policy.RepeatInterval)) || !ch.Matches(m.Labels) {
				continue // gone, no reminders, not yet due, or no longer this machine's channel
			}
			list = append(list, due{m, ch, t})
			incoming[n]++
		}
	}
	for _, d := range list {
		d.t.Reminders++
		body := Event{
			ID: fmt.Sprintf("rm-%d-%d", index, f.noticeSeq), Type: EventOffline, OccurredAt: at,
			Machine: machineBody(d.m), Reason: d.m.Reason, Message: d.m.Message, Reminder: d.t.Reminders,
		}
		f.noticeSeq++
		f.send(index, at, d.ch, d.m, nil, &body, incoming[d.ch.Name], fx)
	}
}

// closeDue closes the collecting digests whose window has passed.
func (f *FSM) closeDue(at time.Time) bool {
	closed := false
	for _, id := range slices.Sorted(maps.Keys(f.notices)) {
		d := f.notices[id]
		if d.State == NoticeCollecting && !at.Before(d.ClosesAt) {
			f.closeDigest(d)
			closed = true
		}
	}
	return closed
}

// alertingTick runs the time-driven steps at the leader's time: close
// digests, release what reconciliation may now send, queue reminders.
func (f *FSM) alertingTick(index uint64, c AlertingTick, fx *effects) *ApplyResult {
	if c.At.IsZero() {
		return &ApplyResult{Err: fmt.Errorf("%w: alerting tick needs a time", ErrBadCommand)}
	}
	at := c.At.UTC()
	if f.closeDue(at) {
		fx.outboxChanged = true
	}
	f.reconcile(index, at, c.Alerting, fx)
	f.remind(index, at, fx)
	return &ApplyResult{}
}

// eventBody is what a channel is sent for ev: the event without its
// deliveries.
func eventBody(ev *Event) Event {
	out := *ev
	out.Deliveries = nil
	out.Machine.Labels = maps.Clone(ev.Machine.Labels)
	return out
}

// machineBody is a machine as events carry it: no key, no alerting state.
func machineBody(m *Machine) Machine {
	out := *m
	out.KeyHash = KeyHash{}
	out.Alerting = nil
	out.Labels = maps.Clone(m.Labels)
	return out
}

func statusOfEvent(typ string) Status {
	if typ == EventOffline {
		return StatusOffline
	}
	return StatusOnline
}
