package jsonscan

import (
	"encoding/json"
	"testing"
)

func TestInt64_AcceptsWhatEncodingJSONReadsAsAnInteger(t *testing.T) {
	for _, in := range []string{"0", "-1", " 42", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "01", "-", "", "1.5", "1e3", "1E3", "--1", "12345678901234567890"} {
		s := Scanner{B: []byte(in)}
		got, ok := s.Int64()
		var want int64
		err := json.Unmarshal([]byte(in), &want)
		if ok && (err != nil || got != want) {
			t.Errorf("Int64(%q) = %d, accepted; encoding/json: %d, %v", in, got, want, err)
		}
		if !ok && err == nil && in != "1e3" && in != "1E3" { // exponents go to encoding/json, by design
			t.Errorf("Int64(%q) refused what encoding/json reads as %d", in, want)
		}
	}
}

func TestPlainString_RefusesEscapesAndNonASCII(t *testing.T) {
	for in, want := range map[string]bool{`"abc"`: true, ` "a b"`: true, `"a\"b"`: false, `"é"`: false, `"a`: false, `abc`: false, "\"a\tb\"": false} {
		s := Scanner{B: []byte(in)}
		if _, ok := s.PlainString(); ok != want {
			t.Errorf("PlainString(%q) ok=%v, want %v", in, ok, want)
		}
	}
}

func TestObject_SkipsBracesInsideStrings(t *testing.T) {
	s := Scanner{B: []byte(` {"a":"}{","b":{"c":1}} ,`)}
	raw, ok := s.Object()
	if !ok || string(raw) != `{"a":"}{","b":{"c":1}}` || !s.Byte(',') || !s.End() {
		t.Fatalf("Object = %q, %v; rest at %d", raw, ok, s.I)
	}
	s = Scanner{B: []byte(`{"a":"x\"}"}`)}
	if _, ok := s.Object(); ok {
		t.Fatal("accepted an object with an escaped string")
	}
}

func TestLitAndEnd(t *testing.T) {
	s := Scanner{B: []byte(" {\n\"node\" : ")}
	if !s.Lit(`{`) || !s.Lit(`"node"`) || !s.Lit(`:`) || s.Lit(`x`) || !s.End() {
		t.Fatal("tokens not read as expected")
	}
}
