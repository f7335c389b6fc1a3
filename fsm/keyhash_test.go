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
