package fsm_test

import (
	"testing"

	"github.com/lunasentri/lunasentri/fsm"
)

func TestRegisterMachine_Table(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		existing  []string
		machine   fsm.Machine
		wantErr   error
		wantCount int
	}{
		{name: "ok", machine: newMachine("web1", map[string]string{"env": "prod"}, 0), wantCount: 1},
		{name: "ok beside others", existing: []string{"a", "b"}, machine: newMachine("web1", nil, 0), wantCount: 3},
		{name: "duplicate name", existing: []string{"web1"},
			machine: fsm.Machine{ID: "other-id", Name: "web1", KeyHash: fsm.HashKey("k2")}, wantErr: fsm.ErrMachineExists, wantCount: 1},
		{name: "duplicate id", existing: []string{"web1"},
			machine: fsm.Machine{ID: machineID("web1"), Name: "web2", KeyHash: fsm.HashKey("k2")}, wantErr: fsm.ErrMachineExists, wantCount: 1},
		{name: "missing name", machine: fsm.Machine{ID: "x", KeyHash: fsm.HashKey("k")}, wantErr: fsm.ErrBadCommand},
		{name: "missing id", machine: fsm.Machine{Name: "x", KeyHash: fsm.HashKey("k")}, wantErr: fsm.ErrBadCommand},
		{name: "limit", max: 2, existing: []string{"a", "b"}, machine: newMachine("c", nil, 0), wantErr: fsm.ErrLimit, wantCount: 2},
		{name: "duplicate wins over limit", max: 1, existing: []string{"a"},
			machine: newMachine("a", nil, 0), wantErr: fsm.ErrMachineExists, wantCount: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, fsm.Options{MaxMachines: tt.max})
			for _, n := range tt.existing {
				h.register(n, nil, 0)
			}
			before := persist(t, h.f)
			res := h.apply(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: tt.machine})
			wantErrIs(t, res.Err, tt.wantErr)
			if got := h.f.MachineCount(); got != tt.wantCount {
				t.Fatalf("MachineCount = %d, want %d", got, tt.wantCount)
			}
			if tt.wantErr != nil {
				if res.Machine != nil {
					t.Fatalf("failed register returned machine %+v", res.Machine)
				}
				if string(persist(t, h.f)) != string(before) {
					t.Fatal("failed register changed the state")
				}
				return
			}
			m := h.machine(tt.machine.Name)
			if m.Status != fsm.StatusUnknown || !m.LastSeen.IsZero() || !m.StatusChangedAt.Equal(t0) {
				t.Fatalf("new machine: status %s last_seen %v changed %v", m.Status, m.LastSeen, m.StatusChangedAt)
			}
			if len(m.Labels) != len(tt.machine.Labels) {
				t.Fatalf("labels = %v, want %v", m.Labels, tt.machine.Labels)
			}
			if res.Machine == nil || res.Machine.ID != tt.machine.ID {
				t.Fatalf("result machine %+v", res.Machine)
			}
			if id, ok := h.f.Authenticate(keyOf(tt.machine.Name)); !ok || id != tt.machine.ID {
				t.Fatalf("Authenticate = %q, %v", id, ok)
			}
			if st := h.f.Stats(); st.Machines[fsm.StatusUnknown] != tt.wantCount {
				t.Fatalf("unknown count = %d", st.Machines[fsm.StatusUnknown])
			}
		})
	}
}

func TestRegisterMachine_StatusFromCommandIgnored(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	m := newMachine("web1", nil, 0)
	m.Status = fsm.StatusOnline
	h.ok(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: m})
	if got := h.machine("web1").Status; got != fsm.StatusUnknown {
		t.Fatalf("status = %s, want unknown", got)
	}
}

func TestDeleteMachine_GoneFromQueriesAndAuthenticate(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("web1", nil, 0)
	h.register("web2", nil, 0)
	h.beat(t0, t0, "web1")
	h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "web1"})

	if _, err := h.f.MachineByName("web1"); err != fsm.ErrMachineNotFound {
		t.Fatalf("MachineByName after delete: %v", err)
	}
	if ms := h.f.Machines(""); len(ms) != 1 || ms[0].Name != "web2" {
		t.Fatalf("Machines = %+v", ms)
	}
	if _, ok := h.f.Authenticate(keyOf("web1")); ok {
		t.Fatal("deleted machine's key still authenticates")
	}
	if _, ok := h.f.Authenticate(keyOf("web2")); !ok {
		t.Fatal("other machine's key stopped working")
	}
	if ol := h.f.OnlineMachines(); len(ol) != 0 {
		t.Fatalf("OnlineMachines = %+v", ol)
	}
	st := h.f.Stats()
	if st.Machines[fsm.StatusOnline] != 0 || st.Machines[fsm.StatusUnknown] != 1 {
		t.Fatalf("stats machines = %v", st.Machines)
	}
	// The name can be registered again.
	h.register("web1", nil, 0)
}

func TestDeleteMachine_NotFound(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("web1", nil, 0)
	res := h.apply(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "nope"})
	wantErrIs(t, res.Err, fsm.ErrMachineNotFound)
	if h.f.MachineCount() != 1 {
		t.Fatal("delete of an unknown name removed something")
	}
}

func TestDeleteMachine_DropsPendingKeepsFinished(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.channel("b", fsm.ChannelTelegram, nil)
	h.register("web1", nil, 0)
	h.register("web2", nil, 0)
	ev1, off := h.goOffline(t0, "web1")
	ev2, _ := h.goOffline(t0, "web2")
	h.record(off, fsm.DeliveryResult{EventID: ev1, Channel: "a", State: fsm.DeliveryDelivered, Attempts: 1})
	if got := h.f.Stats().PendingDeliveries; got != 3 {
		t.Fatalf("pending before delete = %d, want 3", got)
	}

	h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "web1"})

	if got := deliveryStates(h.event(ev1)); got != "a=delivered" {
		t.Fatalf("deleted machine's event deliveries = %q, want only the finished one", got)
	}
	if got := deliveryStates(h.event(ev2)); got != "a=pending b=pending" {
		t.Fatalf("other machine's deliveries = %q", got)
	}
	pd := h.f.PendingDeliveries()
	if len(pd) != 2 || h.f.Stats().PendingDeliveries != 2 {
		t.Fatalf("pending after delete = %d (stats %d), want 2", len(pd), h.f.Stats().PendingDeliveries)
	}
	for _, p := range pd {
		if p.Event.ID != ev2 {
			t.Fatalf("pending delivery of %s survived the delete", p.Event.ID)
		}
	}
}

func TestRotateKey_OldKeyStopsNewWorks(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("web1", nil, 0)
	h.register("web2", nil, 0)
	res := h.ok(fsm.CmdRotateKey, fsm.RotateKey{Name: "web1", KeyHash: fsm.HashKey("fresh")})
	if res.Machine == nil || res.Machine.KeyHash != fsm.HashKey("fresh") {
		t.Fatalf("result machine %+v", res.Machine)
	}
	if _, ok := h.f.Authenticate(keyOf("web1")); ok {
		t.Fatal("old key still authenticates")
	}
	if id, ok := h.f.Authenticate("fresh"); !ok || id != machineID("web1") {
		t.Fatalf("new key: %q %v", id, ok)
	}
	if id, ok := h.f.Authenticate(keyOf("web2")); !ok || id != machineID("web2") {
		t.Fatalf("other machine's key: %q %v", id, ok)
	}
	if _, ok := h.f.Authenticate(""); ok {
		t.Fatal("empty key authenticates")
	}
}

func TestRotateKey_NotFound(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	res := h.apply(fsm.CmdRotateKey, fsm.RotateKey{Name: "nope", KeyHash: fsm.HashKey("k")})
	wantErrIs(t, res.Err, fsm.ErrMachineNotFound)
	if _, ok := h.f.Authenticate("k"); ok {
		t.Fatal("key of a failed rotate authenticates")
	}
}

// Queries promise copies: a caller that edits what it got back (the HTTP
// layer redacting or defaulting fields, say) must not reach into the
// replicated state, which would make this node differ from the others.
func TestMachines_QueriesReturnIndependentCopies(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	res := h.ok(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: newMachine("web1", map[string]string{"env": "prod"}, 0)})
	res.Machine.Labels["env"] = "from-apply-result"
	h.f.Machines("")[0].Labels["env"] = "from-machines"
	m, _ := h.f.MachineByName("web1")
	m.Labels["env"] = "from-machine-by-name"
	if got := h.machine("web1").Labels["env"]; got != "prod" {
		t.Fatalf("stored label env = %q after callers edited their copies, want prod", got)
	}
	ev, _ := h.goOffline(t0, "web1")
	h.f.Events(1)[0].Machine.Labels["env"] = "from-events"
	if got := h.event(ev).Machine.Labels["env"]; got != "prod" {
		t.Fatalf("stored event label env = %q after a caller edited its copy, want prod", got)
	}
}

func TestMachines_FilterAndOrder(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	for _, n := range []string{"c", "a", "b"} {
		h.register(n, nil, 0)
	}
	h.beat(t0, t0, "b")
	names := func(ms []fsm.Machine) (out []string) {
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	if got := names(h.f.Machines("")); len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Fatalf("Machines = %v, want sorted by name", got)
	}
	if got := names(h.f.Machines(fsm.StatusOnline)); len(got) != 1 || got[0] != "b" {
		t.Fatalf("online = %v", got)
	}
	if got := names(h.f.Machines(fsm.StatusUnknown)); len(got) != 2 {
		t.Fatalf("unknown = %v", got)
	}
	ol := h.f.OnlineMachines()
	if len(ol) != 1 || ol[0].ID != machineID("b") || !ol[0].LastSeen.Equal(t0) {
		t.Fatalf("OnlineMachines = %+v", ol)
	}
}
