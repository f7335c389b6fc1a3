package fsm_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lunasentri/lunasentri/fsm"
)

// populated returns a harness with a bit of every kind of state, so a bad
// command has something to spoil.
func populated(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.register("web1", map[string]string{"env": "prod"}, 0)
	h.register("web2", nil, time.Minute)
	h.goOffline(t0, "web1")
	h.beat(t0, t0, "web2")
	return h
}

func TestApply_BadCommandsChangeNothing(t *testing.T) {
	type badCase struct {
		name string
		data []byte
	}
	tests := []badCase{
		{"empty", nil},
		{"empty slice", []byte{}},
		{"type only", []byte{byte(fsm.CmdRegisterMachine)}},
		{"unknown type 0", append([]byte{0}, `{}`...)},
		{"unknown type from the future", append([]byte{200}, `{}`...)},
		{"type 200 not yet assigned", append([]byte{200}, `{}`...)},
	}
	for typ := fsm.CmdRegisterMachine; typ <= fsm.CmdAlertingTick; typ++ {
		tests = append(tests,
			badCase{fmt.Sprintf("malformed json type %d", typ), append([]byte{byte(typ)}, `{"name":`...)},
			badCase{fmt.Sprintf("wrong json types type %d", typ), append([]byte{byte(typ)},
				`{"machine":1,"name":2,"key_hash":"x","at":3,"beats":{},"machines":"x","channel":[],"results":7}`...)},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := populated(t)
			before := persist(t, h.f)
			res := h.raw(tt.data)
			if !errors.Is(res.Err, fsm.ErrBadCommand) {
				t.Fatalf("err = %v, want ErrBadCommand", res.Err)
			}
			if fsm.ErrorCode(res.Err) != "bad_command" {
				t.Fatalf("ErrorCode = %q", fsm.ErrorCode(res.Err))
			}
			if len(res.Events) != 0 || res.Machine != nil || res.Channel != nil {
				t.Fatalf("result = %+v", res)
			}
			if string(persist(t, h.f)) != string(before) {
				t.Fatal("a rejected command changed the state")
			}
		})
	}
}

func TestApply_NonCommandLogIgnored(t *testing.T) {
	h := populated(t)
	before := persist(t, h.f)
	for _, typ := range []raft.LogType{raft.LogNoop, raft.LogBarrier, raft.LogConfiguration} {
		if res := h.f.Apply(&raft.Log{Index: 1000, Type: typ, Data: fsm.MustEncode(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "web1"})}); res != nil {
			t.Fatalf("log type %v: Apply returned %v", typ, res)
		}
	}
	if string(persist(t, h.f)) != string(before) {
		t.Fatal("a non-command log entry changed the state")
	}
}

func TestApply_ReturnsApplyResult(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	data := fsm.MustEncode(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: newMachine("web1", nil, 0)})
	res, ok := h.f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(*fsm.ApplyResult)
	if !ok || res.Err != nil || res.Machine == nil {
		t.Fatalf("Apply = %#v", res)
	}
}

func TestEncode_FramesTypeByte(t *testing.T) {
	data, err := fsm.Encode(fsm.CmdDeleteChannel, fsm.DeleteChannel{Name: "a"})
	if err != nil || data[0] != byte(fsm.CmdDeleteChannel) || string(data[1:]) != `{"name":"a"}` {
		t.Fatalf("Encode = %q, %v", data, err)
	}
	if _, err := fsm.Encode(fsm.CmdDeleteChannel, func() {}); err == nil {
		t.Fatal("Encode of an unmarshalable body succeeded")
	}
}

// Command numbers are append-only (invariant 2): old logs must still decode.
func TestCommandType_NumbersNeverChange(t *testing.T) {
	want := map[fsm.CommandType]byte{
		fsm.CmdRegisterMachine: 1, fsm.CmdDeleteMachine: 2, fsm.CmdRotateKey: 3, fsm.CmdHeartbeatBatch: 4,
		fsm.CmdMarkOffline: 5, fsm.CmdCreateChannel: 6, fsm.CmdDeleteChannel: 7, fsm.CmdRecordDeliveries: 8,
	}
	for c, n := range want {
		if byte(c) != n {
			t.Errorf("command %d renumbered to %d", n, c)
		}
	}
}

// A log entry written by an earlier build, byte for byte, still applies.
func TestApply_OldLogEntriesDecode(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.raw(append([]byte{1}, `{"machine":{"id":"m1","name":"web1","labels":null,"key_hash":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32],"created_at":"2030-01-02T03:04:05Z"}}`...))
	h.raw(append([]byte{4}, `{"at":"2030-01-02T03:05:00Z","default_threshold":120000000000,"beats":[{"i":"m1","t":1893553500000000000}]}`...))
	m := h.machine("web1")
	if m.Status != fsm.StatusOnline || m.LastSeen.UnixNano() != 1893553500000000000 {
		t.Fatalf("machine = %+v", m)
	}
}

func TestErrorCode_RoundTrip(t *testing.T) {
	for _, e := range []error{fsm.ErrMachineExists, fsm.ErrMachineNotFound, fsm.ErrChannelExists,
		fsm.ErrChannelNotFound, fsm.ErrLimit, fsm.ErrBadCommand} {
		code := fsm.ErrorCode(e)
		if code == "" {
			t.Fatalf("no code for %v", e)
		}
		if got := fsm.ErrorFromCode(code, e.Error()); got != e {
			t.Fatalf("ErrorFromCode(%s) = %v", code, got)
		}
		wrapped := fsm.ErrorFromCode(code, "custom: "+e.Error())
		if !errors.Is(wrapped, e) || wrapped.Error() != "custom: "+e.Error() {
			t.Fatalf("wrapped = %v", wrapped)
		}
	}
	if fsm.ErrorFromCode("", "") != nil || fsm.ErrorCode(nil) != "" {
		t.Fatal("nil error did not round-trip")
	}
	if err := fsm.ErrorFromCode("unknown", "boom"); err == nil || err.Error() != "boom" {
		t.Fatalf("unknown code: %v", err)
	}
}
