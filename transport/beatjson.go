package transport

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/lunasentri/lunasentri/internal/jsonscan"
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
	s := beatScan{jsonscan.Scanner{B: data}}
	var out beatBatch
	if s.batch(&out) {
		*into = out
		return nil
	}
	return json.NewDecoder(bytes.NewReader(data)).Decode(into)
}

// beatScan reads `{"node":"…","beats":[{"i":"…","a":N},…]}` (the beats'
// keys in either order), with any white space between tokens; each method
// reports false on anything else.
type beatScan struct{ jsonscan.Scanner }

func (s *beatScan) batch(out *beatBatch) bool {
	if !s.Lit(`{`) || !s.Lit(`"node"`) || !s.Lit(`:`) {
		return false
	}
	node, ok := s.PlainString()
	if !ok || !s.Lit(`,`) || !s.Lit(`"beats"`) || !s.Lit(`:`) {
		return false
	}
	out.Node = node
	if out.Beats, ok = jsonscan.Beats(&s.Scanner, 'a', 32, func(id string, age int64) agedBeat { return agedBeat{ID: id, AgeUS: age} }); !ok {
		return false
	}
	return s.Lit(`}`) && s.End()
}
