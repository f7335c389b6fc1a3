package ui_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkFleet_10k renders the fleet view of 10,000 machines (100 offline)
// the way a browser asks for it. Target (issue 12): ≤ 100 ms a render and
// ≤ 150 KB a page without images. Run: go test -run '^$' -bench Fleet ./transport/ui/
func BenchmarkFleet_10k(b *testing.B) {
	fl := newFleet(b)
	var names []string
	for i := range 10000 {
		n := fmt.Sprintf("node-%05d", i)
		fl.register(n, map[string]string{"env": []string{"prod", "staging"}[i%2], "dc": fmt.Sprintf("dc%d", i%4), "role": "worker"})
		names = append(names, n)
	}
	fl.beat(fl.now, names...)
	for i := 0; i < 10000; i += 100 {
		fl.offline(fl.now.Add(time.Duration(i)*time.Second), names[i])
	}
	s := newSite(b, fl, nil)
	for _, path := range []string{"/ui/", "/ui/?label=env%3Dprod&q=node-0", "/ui/machines/node-00100"} {
		b.Run(path, func(b *testing.B) {
			size := 0
			for b.Loop() {
				req := httptest.NewRequest("GET", path, nil)
				req.Header.Set("Authorization", "Bearer "+readTok)
				rec := httptest.NewRecorder()
				s.ui.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d", rec.Code)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size)/1024, "KiB/page")
		})
	}
}
