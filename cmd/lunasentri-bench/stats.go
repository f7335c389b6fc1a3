package main

import (
	"math"
	"runtime"
	"slices"
	"time"
)

func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func gomaxprocsNow() int { return runtime.GOMAXPROCS(0) }

// dist summarises durations, in milliseconds.
type dist struct {
	N     int     `json:"n"`
	MinMs float64 `json:"min_ms"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func summarize(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return round1(float64(d) / float64(time.Millisecond)) }
	return dist{
		N:     len(s),
		MinMs: ms(s[0]),
		P50Ms: ms(quantile(s, 0.50)),
		P90Ms: ms(quantile(s, 0.90)),
		P99Ms: ms(quantile(s, 0.99)),
		MaxMs: ms(s[len(s)-1]),
	}
}

// quantile of sorted s: the nearest-rank method (the smallest value with at
// least q of the samples at or below it).
func quantile(s []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
