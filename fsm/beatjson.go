package fsm

import (
	"encoding/json"
	"time"

	"github.com/lunasentri/lunasentri/internal/jsonscan"
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
	s := jsonscan.Scanner{B: data}
	if !s.Byte('{') {
		return false
	}
	var seen [4]bool
	for first := true; ; first = false {
		if s.Byte('}') {
			return s.End()
		}
		if !first && !s.Byte(',') {
			return false
		}
		key, ok := s.PlainString()
		if !ok || !s.Byte(':') {
			return false
		}
		field := -1
		switch key {
		case "at":
			field = 0
			v, ok := s.PlainStringRaw()
			if !ok || c.At.UnmarshalJSON(v) != nil {
				return false
			}
		case "default_threshold":
			field = 1
			n, ok := s.Int64()
			if !ok {
				return false
			}
			c.DefaultThreshold = time.Duration(n)
		case "beats":
			field = 2
			beats, ok := jsonscan.Beats(&s, 't', 28, func(id string, t int64) Beat { return Beat{ID: id, SeenAt: t} })
			if !ok {
				return false
			}
			c.Beats = beats
		case "alerting":
			field = 3
			v, ok := s.Object()
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
