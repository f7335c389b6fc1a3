package transport_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/transport"
)

const benchMachines = 10_000

func benchIDs() []string {
	ids := make([]string, benchMachines)
	for i := range ids {
		ids[i] = fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	return ids
}

// BenchmarkHeartbeatHandler measures the hot path: authenticate, note the
// beat, answer 202. A flusher runs (default interval) so the coalescer is
// drained and the intake stays healthy, as on a real node.
func BenchmarkHeartbeatHandler(b *testing.B) {
	n := newNode(b, true, nil)
	keys := make([]string, benchMachines)
	for i := range keys {
		_, keys[i] = n.register(b, fmt.Sprintf("m%05d", i))
	}
	n.runFlusher(b)
	h := n.api.Handler()
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"json", []byte(`{"hostname":"web-1.example","agent_version":"1.0.0","info":{"os":"linux","arch":"amd64","uptime":12345}}`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var next, bad atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919))
				for pb.Next() {
					i++
					req := httptest.NewRequest(http.MethodPost, "/v1/heartbeat", bytes.NewReader(bc.body))
					req.Header.Set("Authorization", "Bearer "+keys[i%benchMachines])
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusAccepted {
						bad.Add(1)
					}
				}
			})
			if bad.Load() != 0 {
				b.Fatalf("%d heartbeats not accepted", bad.Load())
			}
		})
	}
}

func BenchmarkCoalescerRecord(b *testing.B) {
	ids := benchIDs()
	c := transport.NewCoalescer()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			c.Record(ids[i%benchMachines], time.Now())
		}
	})
}

// BenchmarkCoalescerDrain drains 10k machines into the flusher's pending
// map (empty, as after a successful flush).
func BenchmarkCoalescerDrain(b *testing.B) {
	ids := benchIDs()
	c := transport.NewCoalescer()
	dst := make(map[string]time.Time, benchMachines)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		clear(dst)
		for _, id := range ids {
			c.Record(id, now)
		}
		b.StartTimer()
		c.DrainInto(dst)
	}
	if len(dst) != benchMachines {
		b.Fatalf("drained %d, want %d", len(dst), benchMachines)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchMachines, "ns/machine")
}
