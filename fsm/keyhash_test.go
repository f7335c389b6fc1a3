package fsm

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestKeyHash_JSONHexAndLegacyArray(t *testing.T) {
	h := HashKey("lsk_example")
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 66 || b[0] != '"' {
		t.Fatalf("hash encodes as %s, want a 64-char hex string", b)
	}
	var back KeyHash
	if err := json.Unmarshal(b, &back); err != nil || back != h {
		t.Fatalf("hex round trip: %v, %x", err, back)
	}
	// Entries written before the hex form carried an array of numbers.
	legacy, _ := json.Marshal([32]byte(h))
	var old KeyHash
	if err := json.Unmarshal(legacy, &old); err != nil || old != h {
		t.Fatalf("legacy array: %v, %x", err, old)
	}
	if z, _ := json.Marshal(KeyHash{}); string(z) != `""` {
		t.Fatalf("zero hash = %s, want \"\"", z)
	}
	for _, bad := range []string{`"abc"`, `[1,2]`, `[` + strings.Repeat("300,", 31) + `300]`, `{}`, `"` + strings.Repeat("zz", 32) + `"`} {
		var k KeyHash
		if err := json.Unmarshal([]byte(bad), &k); err == nil {
			t.Errorf("%s decoded without error", bad)
		}
	}
}

func TestLabels_InternedAndReleased(t *testing.T) {
	f := New(Options{})
	reg := func(idx uint64, id, name string, labels map[string]string) {
		t.Helper()
		r := f.ApplyBytes(idx, MustEncode(CmdRegisterMachine, RegisterMachine{Machine: Machine{ID: id, Name: name, KeyHash: HashKey(id), Labels: labels}}))
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	reg(1, "a", "a", map[string]string{"env": "prod", "role": "db"})
	reg(2, "b", "b", map[string]string{"role": "db", "env": "prod"})
	reg(3, "c", "c", map[string]string{"env": "dev"})
	if len(f.labelSets) != 2 {
		t.Fatalf("%d label sets, want 2 (a and b share one)", len(f.labelSets))
	}
	// Callers get copies: editing one changes nothing inside.
	m, _ := f.MachineByName("a")
	m.Labels["env"] = "hacked"
	if b, _ := f.MachineByName("b"); b.Labels["env"] != "prod" {
		t.Fatalf("shared labels were mutated through a query: %v", b.Labels)
	}
	f.ApplyBytes(4, MustEncode(CmdDeleteMachine, DeleteMachine{Name: "a"}))
	if len(f.labelSets) != 2 {
		t.Fatalf("after deleting a: %d sets, want 2 (b still uses it)", len(f.labelSets))
	}
	f.ApplyBytes(5, MustEncode(CmdDeleteMachine, DeleteMachine{Name: "b"}))
	f.ApplyBytes(6, MustEncode(CmdDeleteMachine, DeleteMachine{Name: "c"}))
	if len(f.labelSets) != 0 {
		t.Fatalf("after deleting all: %d sets, want 0", len(f.labelSets))
	}
}
