package transport_test

import (
	"bytes"
	"fmt"
	"io"
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

// BenchmarkCoalescerDrainAppend is BenchmarkCoalescerDrain for the
// flusher's usual drain into a reused slice (issue 14).
func BenchmarkCoalescerDrainAppend(b *testing.B) {
	ids := benchIDs()
	c := transport.NewCoalescer()
	var dst []transport.DrainedBeat
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for _, id := range ids {
			c.Record(id, now)
		}
		b.StartTimer()
		dst = c.DrainAppend(dst[:0])
	}
	if len(dst) != benchMachines {
		b.Fatalf("drained %d, want %d", len(dst), benchMachines)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchMachines, "ns/machine")
}

// discardWriter is a ResponseWriter that keeps only the status, so the
// handler benchmarks measure the handler and not httptest's recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkHeartbeatPath is the heartbeat's path inside a node's handler
// (routing, auth, body, coalescer, answer) without the HTTP server
// around it: one reused request per goroutine, as net/http hands a
// handler its request. Each machine sends its own agent body, the same
// with every beat, as `lunasentri agent` does (issue 14).
func BenchmarkHeartbeatPath(b *testing.B) {
	n := newNode(b, true, nil)
	keys := make([]string, benchMachines)
	auth := make([][]string, benchMachines)
	bodies := make([][]byte, benchMachines)
	for i := range keys {
		name := fmt.Sprintf("m%05d", i)
		_, keys[i] = n.register(b, name)
		auth[i] = []string{"Bearer " + keys[i]}
		bodies[i] = fmt.Appendf(nil, `{"hostname":%q,"agent_version":"1.0.0"}`, name+".example")
	}
	n.runFlusher(b)
	h := n.api.Handler()
	var next, bad atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		req := httptest.NewRequest(http.MethodPost, "/v1/heartbeat", nil)
		rd := bytes.NewReader(nil)
		body := io.NopCloser(rd)
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			i++
			m := i % benchMachines
			rd.Reset(bodies[m])
			req.Body, req.ContentLength = body, int64(len(bodies[m]))
			req.Header["Authorization"] = auth[m]
			clear(w.h)
			h.ServeHTTP(w, req)
			if w.code != http.StatusAccepted {
				bad.Add(1)
			}
		}
	})
	if bad.Load() != 0 {
		b.Fatalf("%d heartbeats not accepted", bad.Load())
	}
}
