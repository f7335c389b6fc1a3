package fsm

import (
	"fmt"
	"maps"
	"time"
)

func (f *FSM) registerMachine(c RegisterMachine) *ApplyResult {
	m := c.Machine
	if m.ID == "" || m.Name == "" {
		return &ApplyResult{Err: fmt.Errorf("%w: machine id and name are required", ErrBadCommand)}
	}
	if _, ok := f.byName[m.Name]; ok {
		return &ApplyResult{Err: ErrMachineExists}
	}
	if f.machines.has(m.ID) {
		return &ApplyResult{Err: ErrMachineExists}
	}
	if f.machines.len() >= f.opts.MaxMachines {
		return &ApplyResult{Err: fmt.Errorf("%w: at most %d machines", ErrLimit, f.opts.MaxMachines)}
	}
	if len(m.Labels) == 0 {
		// No labels: no map. An empty map per machine costs ~50 bytes at a
		// million machines for nothing; the API shows {} either way.
		m.Labels = nil
	}
	m.Status = StatusUnknown
	m.StatusChangedAt = m.CreatedAt
	m.LastSeen = time.Time{} // null until the first heartbeat (docs/api.md)
	f.insertMachine(&m)
	out := m
	out.Labels = maps.Clone(m.Labels)
	return &ApplyResult{Machine: &out}
}

// insertMachine indexes a machine; the caller holds the write lock.
func (f *FSM) insertMachine(m *Machine) {
	f.indexMachine(m)
	f.keys.put(m.KeyHash, m.ID)
}

// indexMachine is insertMachine without the key index, which Restore
// builds once for all machines.
func (f *FSM) indexMachine(m *Machine) {
	m.Labels = f.internLabels(m.Labels)
	f.noteMachine(m.ID, nil)
	f.machines.put(m.ID, m)
	f.byName[m.Name] = m.ID
	f.statusCount[m.Status]++
}

func (f *FSM) deleteMachine(c DeleteMachine, fx *effects) *ApplyResult {
	id, ok := f.byName[c.Name]
	if !ok {
		return &ApplyResult{Err: ErrMachineNotFound}
	}
	m, _ := f.mutableMachine(id)
	f.machines.del(id)
	delete(f.byName, c.Name)
	f.statusCount[m.Status]--
	f.keys.remove(m.KeyHash, id)
	f.releaseLabels(m.Labels)
	f.forgetHistory(id) // issue 12
	// Its pending notifications go with it (docs/api.md).
	if f.dropPending(func(ev *Event, _ *Delivery) bool { return ev.Machine.ID == id }) {
		fx.outboxChanged = true
	}
	if f.forgetMachine(id) {
		fx.outboxChanged = true
	}
	fx.gone = append(fx.gone, id)
	return &ApplyResult{}
}

func (f *FSM) rotateKey(c RotateKey) *ApplyResult {
	id, ok := f.byName[c.Name]
	if !ok {
		return &ApplyResult{Err: ErrMachineNotFound}
	}
	m, _ := f.mutableMachine(id)
	f.keys.remove(m.KeyHash, id)
	m.KeyHash = c.KeyHash
	f.keys.put(m.KeyHash, id)
	out := *m
	out.Labels = maps.Clone(m.Labels)
	out.Alerting = nil
	return &ApplyResult{Machine: &out}
}

func (f *FSM) createChannel(c CreateChannel) *ApplyResult {
	ch := c.Channel
	if ch.Name == "" || !knownChannelType(ch.Type) {
		return &ApplyResult{Err: fmt.Errorf("%w: channel name and a known type are required", ErrBadCommand)}
	}
	if _, ok := f.channels[ch.Name]; ok {
		return &ApplyResult{Err: ErrChannelExists}
	}
	if len(f.channels) >= f.opts.MaxChannels {
		return &ApplyResult{Err: fmt.Errorf("%w: at most %d channels", ErrLimit, f.opts.MaxChannels)}
	}
	if ch.Match == nil {
		ch.Match = map[string]string{}
	} else {
		ch.Match = maps.Clone(ch.Match)
	}
	f.channels[ch.Name] = &ch
	out := ch
	return &ApplyResult{Channel: &out}
}

func (f *FSM) deleteChannel(c DeleteChannel, fx *effects) *ApplyResult {
	if _, ok := f.channels[c.Name]; !ok {
		return &ApplyResult{Err: ErrChannelNotFound}
	}
	delete(f.channels, c.Name)
	if f.dropPending(func(_ *Event, d *Delivery) bool { return d.Channel == c.Name }) {
		fx.outboxChanged = true
	}
	if f.forgetChannel(c.Name) {
		fx.outboxChanged = true
	}
	return &ApplyResult{}
}

func knownChannelType(t string) bool {
	switch t {
	case ChannelWebhook, ChannelTelegram, ChannelAlertmanager, ChannelSlack, ChannelPagerDuty, ChannelNtfy, ChannelEmail:
		return true
	}
	return false
}
