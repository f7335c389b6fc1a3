package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// FuzzBeatBatchJSON: a forwarded batch decodes exactly as encoding/json
// decodes it (issue 14's hand decoder), and the hand encoder writes what
// json.Marshal writes or says it cannot.
func FuzzBeatBatchJSON(f *testing.F) {
	enc, _ := json.Marshal(beatBatch{Node: "node1", Beats: []agedBeat{{ID: "9e3779b97f4a7c15", AgeUS: 250123}, {ID: "x", AgeUS: 0}}})
	for _, s := range []string{
		string(enc), ` { "node" : "n" , "beats" : [ { "i" : "a" , "a" : -1 } ] } `, `{"node":"n","beats":[]}`,
		`{"beats":[],"node":"n"}`, `{"node":"n","beats":[{"a":1,"i":"a"}]}`, `{"node":"n","beats":[{"i":"a","a":1,"x":2}],"more":1}`,
		`{"node":"n","beats":[{"i":"\u0061","a":1}]}`, `{"node":"é","beats":[]}`, `{"node":"n","beats":[{"i":"a","a":1.0}]}`,
		`{"node":"n","beats":[{"i":"a","a":9223372036854775808}]}`, `{"node":"n","beats":[{"i":"a","a":01}]}`,
		`{"node":"n","beats":null}`, `{"node":"n","beats":[]} trailing`, `{"node":"n","beats":[`, `{"NODE":"n"}`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want, got beatBatch
		wantErr := json.NewDecoder(bytes.NewReader(data)).Decode(&want)
		gotErr := decodeBeatBatch(data, &got)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, encoding/json says %v", data, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(want, got) && !(want.Node == got.Node && len(want.Beats) == 0 && len(got.Beats) == 0) {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
		}
		// Whatever decoded, encoded by hand, is what json.Marshal writes.
		if wantErr == nil && len(want.Beats) > 0 {
			std, _ := json.Marshal(want)
			if hand, ok := appendBeatBatch(nil, want.Node, want.Beats); ok && !bytes.Equal(hand, std) {
				t.Fatalf("hand encoding %s, json.Marshal %s", hand, std)
			}
			if hand, _ := encodeBeatBatch(want.Node, want.Beats); !bytes.Equal(hand, std) {
				t.Fatalf("encodeBeatBatch %s, json.Marshal %s", hand, std)
			}
		}
	})
}

// BenchmarkBeatBatchForward: a follower's batch of 10 000 beats, encoded
// on the follower and decoded on the leader, by encoding/json (before
// issue 14) and by hand.
func BenchmarkBeatBatchForward(b *testing.B) {
	batch := beatBatch{Node: "node2"}
	for i := range 10_000 {
		batch.Beats = append(batch.Beats, agedBeat{ID: fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15), AgeUS: int64(i * 25)})
	}
	for _, bc := range []struct {
		name string
		enc  func() ([]byte, error)
		dec  func([]byte, *beatBatch) error
	}{
		{"encoding-json", func() ([]byte, error) { return json.Marshal(batch) },
			func(d []byte, v *beatBatch) error { return json.NewDecoder(bytes.NewReader(d)).Decode(v) }},
		{"hand", func() ([]byte, error) { return encodeBeatBatch(batch.Node, batch.Beats) }, decodeBeatBatch},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				data, err := bc.enc()
				if err != nil {
					b.Fatal(err)
				}
				var out beatBatch
				if err := bc.dec(data, &out); err != nil || len(out.Beats) != len(batch.Beats) {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/beat")
		})
	}
}
