package fsm

import (
	"encoding/json"
	"strconv"
	"time"
)

// Issue 14: every node decodes every heartbeat batch, and a batch carries
// one beat per machine that beat in a flush interval. encoding/json was
// 70% of applying a batch, on every node, for every beat. decodeBody
// parses the shape our leaders write by hand; anything else (other keys,
// escapes, non-ASCII, numbers that are not plain integers, null) goes to
// encoding/json, so the result is always exactly what encoding/json gives.
// The wire format does not change.

// decodeHeartbeatBatch decodes a batch into c: by hand when data has the
// shape leaders write, else with encoding/json.
func decodeHeartbeatBatch(data []byte, c *HeartbeatBatch) error {
	tmp := *c // fields absent from data keep their values, as with encoding/json
	if tmp.fastDecode(data) {
		*c = tmp
		return nil
	}
	return json.Unmarshal(data, c)
}

// fastDecode reports false, having perhaps changed c, when data is not
// in the shape it knows.
func (c *HeartbeatBatch) fastDecode(data []byte) bool {
	s := jsonScan{b: data}
	if !s.byte('{') {
		return false
	}
	var seen [4]bool
	for first := true; ; first = false {
		if s.byte('}') {
			return s.end()
		}
		if !first && !s.byte(',') {
			return false
		}
		key, ok := s.plainString()
		if !ok || !s.byte(':') {
			return false
		}
		field := -1
		switch key {
		case "at":
			field = 0
			v, ok := s.plainStringRaw()
			if !ok || c.At.UnmarshalJSON(v) != nil {
				return false
			}
		case "default_threshold":
			field = 1
			n, ok := s.int64()
			if !ok {
				return false
			}
			c.DefaultThreshold = time.Duration(n)
		case "beats":
			field = 2
			beats, ok := s.beats('t')
			if !ok {
				return false
			}
			c.Beats = beats
		case "alerting":
			field = 3
			v, ok := s.object()
			if !ok || json.Unmarshal(v, &c.Alerting) != nil {
				return false
			}
		}
		if field < 0 || seen[field] {
			return false // unknown or repeated key: encoding/json decides
		}
		seen[field] = true
	}
}

// jsonScan reads the subset of JSON that fastDecode accepts. Every
// method skips white space first and reports false on anything else.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c if it is next.
func (s *jsonScan) byte(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end: nothing but white space is left.
func (s *jsonScan) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// plainStringRaw reads a string of printable ASCII without escapes and
// returns it with its quotes.
func (s *jsonScan) plainStringRaw() ([]byte, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:s.i], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// plainString is plainStringRaw's content, a new string.
func (s *jsonScan) plainString() (string, bool) {
	raw, ok := s.plainStringRaw()
	if !ok {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// int64 reads an integer without fraction or exponent that fits int64.
func (s *jsonScan) int64() (int64, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || n > 19 || (n > 1 && s.b[digits] == '0') { // ParseInt refuses what overflows
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return v, err == nil
}

// object returns the raw bytes of an object whose strings are plain (no
// escapes, so braces inside them are the only thing to skip).
func (s *jsonScan) object() ([]byte, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, false
	}
	start, depth := s.i, 0
	for ; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				s.i++
				return s.b[start:s.i], true
			}
		case '"':
			if _, ok := s.plainStringRaw(); !ok {
				return nil, false
			}
			s.i-- // the loop steps past the closing quote
		}
	}
	return nil, false
}

// beats reads `[{"i":ID,"<num>":N},…]` (either key order, each once), the
// beats of a batch; num is the one-letter name of the number.
func (s *jsonScan) beats(num byte) ([]Beat, bool) {
	if !s.byte('[') {
		return nil, false
	}
	out := make([]Beat, 0, (len(s.b)-s.i)/28+1)
	if s.byte(']') {
		return out, true
	}
	for {
		if !s.byte('{') {
			return nil, false
		}
		var b Beat
		var haveID, haveNum bool
		for k := 0; k < 2; k++ {
			if k == 1 && !s.byte(',') {
				return nil, false
			}
			key, ok := s.plainStringRaw()
			if !ok || len(key) != 3 || !s.byte(':') {
				return nil, false
			}
			switch key[1] {
			case 'i':
				if haveID {
					return nil, false
				}
				if b.ID, ok = s.plainString(); !ok {
					return nil, false
				}
				haveID = true
			case num:
				if haveNum {
					return nil, false
				}
				if b.SeenAt, ok = s.int64(); !ok {
					return nil, false
				}
				haveNum = true
			default:
				return nil, false
			}
		}
		if !s.byte('}') {
			return nil, false
		}
		out = append(out, b)
		if s.byte(']') {
			return out, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}
