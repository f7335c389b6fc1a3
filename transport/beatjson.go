package transport

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Issue 14: a follower forwards one beat per machine that beat in a flush
// interval, and the leader decodes them all; encoding/json (reflection)
// was a quarter of the leader's CPU when the load came through a
// follower. The batch is written and read by hand in the shape below;
// the leader hands anything else (other keys from a newer node, escapes,
// non-ASCII) to encoding/json, so a mixed-version cluster still works and
// the result is always what encoding/json gives. The wire format is the
// same JSON as before.

// appendBeatBatch appends the JSON of a batch, the same bytes as
// json.Marshal(beatBatch{node, beats}) gives for a non-empty batch; ok is
// false (and dst
// unusable) when an id or the node name needs escaping.
func appendBeatBatch(dst []byte, node string, beats []agedBeat) ([]byte, bool) {
	if !plainJSONString(node) {
		return dst, false
	}
	dst = append(dst, `{"node":"`...)
	dst = append(dst, node...)
	dst = append(dst, `","beats":[`...)
	for i, b := range beats {
		if !plainJSONString(b.ID) {
			return dst, false
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"i":"`...)
		dst = append(dst, b.ID...)
		dst = append(dst, `","a":`...)
		dst = strconv.AppendInt(dst, b.AgeUS, 10)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...), true
}

// plainJSONString: s is printable ASCII that encoding/json writes as it is
// (it escapes <, > and & for HTML).
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// encodeBeatBatch is the body a follower forwards.
func encodeBeatBatch(node string, beats []agedBeat) ([]byte, error) {
	if b, ok := appendBeatBatch(make([]byte, 0, 64+len(beats)*40), node, beats); ok {
		return b, nil
	}
	return json.Marshal(beatBatch{Node: node, Beats: beats})
}

// decodeBeatBatch reads a forwarded batch: by hand when it has the shape
// appendBeatBatch writes, else with encoding/json (unknown fields are
// tolerated there: a newer node may send more).
func decodeBeatBatch(data []byte, into *beatBatch) error {
	s := beatScan{b: data}
	var out beatBatch
	if s.batch(&out) {
		*into = out
		return nil
	}
	return json.NewDecoder(bytes.NewReader(data)).Decode(into)
}

// beatScan reads exactly `{"node":"…","beats":[{"i":"…","a":N},…]}`, with
// any white space between tokens; each method reports false on anything
// else.
type beatScan struct {
	b []byte
	i int
}

func (s *beatScan) batch(out *beatBatch) bool {
	if !s.lit(`{`) || !s.lit(`"node"`) || !s.lit(`:`) {
		return false
	}
	node, ok := s.str()
	if !ok || !s.lit(`,`) || !s.lit(`"beats"`) || !s.lit(`:`) || !s.lit(`[`) {
		return false
	}
	out.Node = node
	out.Beats = make([]agedBeat, 0, (len(s.b)-s.i)/32+1)
	if s.lit(`]`) {
		return s.lit(`}`) && s.end()
	}
	for {
		var b agedBeat
		if !s.lit(`{`) || !s.lit(`"i"`) || !s.lit(`:`) {
			return false
		}
		if b.ID, ok = s.str(); !ok || !s.lit(`,`) || !s.lit(`"a"`) || !s.lit(`:`) {
			return false
		}
		if b.AgeUS, ok = s.int(); !ok || !s.lit(`}`) {
			return false
		}
		out.Beats = append(out.Beats, b)
		if s.lit(`]`) {
			return s.lit(`}`) && s.end()
		}
		if !s.lit(`,`) {
			return false
		}
	}
}

func (s *beatScan) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// lit consumes the token t if it comes next.
func (s *beatScan) lit(t string) bool {
	s.ws()
	if len(s.b)-s.i >= len(t) && string(s.b[s.i:s.i+len(t)]) == t {
		s.i += len(t)
		return true
	}
	return false
}

func (s *beatScan) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// str reads a string of printable ASCII without escapes.
func (s *beatScan) str() (string, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := string(s.b[s.i+1 : j])
			s.i = j + 1
			return v, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", false
		}
	}
	return "", false
}

// int reads an integer without fraction or exponent that fits int64.
func (s *beatScan) int() (int64, bool) {
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
	if n == 0 || n > 19 || (n > 1 && s.b[digits] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return v, err == nil
}
