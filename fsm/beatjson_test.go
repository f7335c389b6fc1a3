package fsm_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// plainBatch has HeartbeatBatch's fields: what encoding/json alone makes
// of the bytes, to compare the FSM's decoder with.
type plainBatch struct {
	At               time.Time          `json:"at"`
	DefaultThreshold time.Duration      `json:"default_threshold"`
	Beats            []fsm.Beat         `json:"beats"`
	Alerting         fsm.AlertingConfig `json:"alerting,omitzero"`
}

func beatBatchSeeds() []string {
	many := fsm.HeartbeatBatch{At: t0, DefaultThreshold: time.Minute, Alerting: fsm.AlertingConfig{FlapThreshold: 3, FlapWindow: time.Hour}}
	for i := range 50 {
		many.Beats = append(many.Beats, fsm.Beat{ID: fmt.Sprintf("%016x", i*7919), SeenAt: t0.UnixNano() - int64(i)})
	}
	enc, _ := json.Marshal(many)
	empty, _ := json.Marshal(fsm.HeartbeatBatch{At: t0})
	return []string{
		string(enc), string(empty),
		`{"at":"2026-01-02T03:04:05Z","beats":[{"t":5,"i":"a"}],"default_threshold":-7}`,
		` { "beats" : [ { "i" : "x" , "t" : 0 } ] , "at" : "2026-01-02T03:04:05.123456789+02:00" } `,
		`{"beats":[{"i":"\u0061","t":1}]}`, `{"beats":[{"i":"é","t":1}]}`, `{"beats":[{"i":"a","t":1.5}]}`,
		`{"beats":[{"i":"a","t":1e3}]}`, `{"beats":[{"i":"a","t":99999999999999999999}]}`, `{"beats":[{"i":"a","t":01}]}`,
		`{"beats":[{"i":"a"}]}`, `{"beats":[{"i":"a","t":1,"x":2}]}`, `{"beats":[{"I":"a","T":1}]}`, `{"beats":[{"i":"a","i":"b"}]}`,
		`{"beats":null}`, `{"beats":[]}`, `{"beats":[],"beats":[{"i":"a","t":1}]}`, `{"AT":"2026-01-02T03:04:05Z"}`,
		`{"at":null}`, `{"at":"yesterday"}`, `{"default_threshold":"1m"}`, `{"alerting":{"flap_threshold":"x"}}`,
		`{"alerting":{"flap_window":60000000000,"other":{"a":"}"}}}`, `{"other":1}`, `{"beats":[{"i":"a","t":1}]} x`,
		`{"beats":[{"i":"a","t":9223372036854775807},{"i":"b","t":-9223372036854775808}]}`,
		`{"beats":[{"i":"a","t":9223372036854775808}]}`, `{"beats":[{"i":"a","t":-0}]}`, `{"beats":[{"i":"a","t":1}`, `{"beats":[{"i":"a","t":-}]}`, `[]`, `null`, `{}`, ``, `{"beats":[{"i":"a\"b","t":1}]}`,
	}
}

// FuzzHeartbeatBatchJSON: the FSM's decoder of heartbeat batches (by hand
// since issue 14) gives exactly what encoding/json gives, for any bytes:
// the same batch, and an error when and only when encoding/json has one.
func FuzzHeartbeatBatchJSON(f *testing.F) {
	for _, s := range beatBatchSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want plainBatch
		wantErr := json.Unmarshal(data, &want)
		var got fsm.HeartbeatBatch
		gotErr := fsm.DecodeBody(data, &got)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, encoding/json says %v", data, gotErr, wantErr)
		}
		if wantErr != nil {
			return
		}
		if !reflect.DeepEqual(fsm.HeartbeatBatch(want), got) && !(len(want.Beats) == 0 && len(got.Beats) == 0 &&
			reflect.DeepEqual(fsm.HeartbeatBatch{At: want.At, DefaultThreshold: want.DefaultThreshold, Alerting: want.Alerting},
				fsm.HeartbeatBatch{At: got.At, DefaultThreshold: got.DefaultThreshold, Alerting: got.Alerting})) {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
		}
		// Decoding into a batch that holds values keeps the absent ones,
		// as encoding/json does.
		prev := fsm.HeartbeatBatch{At: t0, DefaultThreshold: time.Second, Beats: []fsm.Beat{{ID: "old", SeenAt: 1}}}
		wantPrev := plainBatch(prev)
		_ = json.Unmarshal(data, &wantPrev)
		_ = fsm.DecodeBody(data, &prev)
		if !reflect.DeepEqual(fsm.HeartbeatBatch(wantPrev), prev) && !(len(wantPrev.Beats) == 0 && len(prev.Beats) == 0) {
			t.Fatalf("%q into a used batch:\n got %+v\nwant %+v", data, prev, wantPrev)
		}
	})
}

// BenchmarkHeartbeatBatchDecode: one batch of 10 000 beats, as every node
// decodes it in Apply. The plain type is encoding/json alone (before
// issue 14) and the FSM's decoder.
func BenchmarkHeartbeatBatchDecode(b *testing.B) {
	batch := fsm.HeartbeatBatch{At: t0, DefaultThreshold: time.Minute}
	for i := range 10_000 {
		batch.Beats = append(batch.Beats, fsm.Beat{ID: fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15), SeenAt: t0.UnixNano() - int64(i)*1000})
	}
	data, _ := json.Marshal(batch)
	for _, bc := range []struct {
		name   string
		decode func() error
	}{
		{"encoding-json", func() error { return json.Unmarshal(data, new(plainBatch)) }},
		{"fsm", func() error { return fsm.DecodeBody(data, new(fsm.HeartbeatBatch)) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if err := bc.decode(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/beat")
		})
	}
}
