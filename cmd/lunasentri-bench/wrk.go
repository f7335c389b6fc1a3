package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Issue 14: wrk as a second judge of intake. The harness's own generator
// is lean but it is ours; wrk (Debian's package) is what an outside check
// uses. When wrk is on PATH, the intake phase loads the bare handler, one
// follower and the leader with it, with the same keys and bodies, and
// reports the ratios against the bare handler measured by wrk in the same
// run.

// wrkLua is the request script. Every thread reads the (key, body) lines,
// prebuilds its requests once (wrk.format per request would cost wrk CPU
// the servers then get less of) and starts at its own offset, so threads
// rotate through different machines. done() prints one JSON line that
// the harness parses.
const wrkLua = `
local reqs = {}
local n, i = 0, 0
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  for line in io.lines(args[1]) do
    local key, body = line:match("^([^\t]+)\t(.*)$")
    if key then
      n = n + 1
      reqs[n] = wrk.format("POST", "/v1/heartbeat", {
        ["Authorization"] = "Bearer " .. key,
        ["Content-Type"] = "application/json",
        ["User-Agent"] = "lunasentri-bench-wrk",
      }, body)
    end
  end
  local threads = tonumber(args[2]) or 1
  i = math.floor((tid or 0) * n / threads)
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKRESULT {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`

// wrkRun is one wrk measurement.
type wrkRun struct {
	Label        string       `json:"label"`
	Threads      int          `json:"threads"`
	Connections  int          `json:"connections"`
	WindowSec    float64      `json:"window_s"`
	Requests     int64        `json:"requests"`
	Non2xx       int64        `json:"non_2xx"` // wrk's "Non-2xx or 3xx": status >= 400
	SocketErrors int64        `json:"socket_errors"`
	OKPerSec     float64      `json:"ok_per_s"` // answers below 400 per second (the handlers answer 202)
	LatencyP50Ms float64      `json:"latency_p50_ms"`
	LatencyP99Ms float64      `json:"latency_p99_ms"`
	LatencyMaxMs float64      `json:"latency_max_ms"`
	GeneratorCPU float64      `json:"generator_cpu_s"` // wrk's own user+system CPU in the window
	ServerCPU    []procCPUUse `json:"server_cpu,omitempty"`
}

// wrkIntake is the wrk part of the intake phase.
type wrkIntake struct {
	Skipped       string  `json:"skipped,omitempty"`
	Version       string  `json:"version,omitempty"`
	BareBefore    wrkRun  `json:"bare_before"`
	Follower      wrkRun  `json:"follower"`
	Leader        wrkRun  `json:"leader"`
	BareAfter     wrkRun  `json:"bare_after"`
	CeilingPerSec float64 `json:"ceiling_per_s"` // the better of the two bare runs
	FollowerRatio float64 `json:"follower_ratio"`
	LeaderRatio   float64 `json:"leader_ratio"`
}

// wrkTarget is one thing to load: an address and the processes whose CPU
// to watch.
type wrkTarget struct {
	label string
	addr  string
	watch *cpuWatch
}

// runWrkIntake measures bare, follower, leader, bare with wrk. A missing
// wrk is not an error: the result says it was skipped.
func runWrkIntake(ctx context.Context, cfg *config, reqs []beatRequest, workDir string, bare, follower, leader wrkTarget) (*wrkIntake, error) {
	path, err := exec.LookPath("wrk")
	if err != nil {
		return &wrkIntake{Skipped: "wrk not on PATH (Debian: apt-get install wrk)"}, nil
	}
	res := &wrkIntake{}
	if out, _ := exec.Command(path, "--version").CombinedOutput(); len(out) > 0 {
		res.Version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	dir := filepath.Join(workDir, "wrk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "heartbeat.lua")
	if err := os.WriteFile(script, []byte(wrkLua), 0o644); err != nil {
		return nil, err
	}
	var lines bytes.Buffer
	for i := range reqs {
		lines.WriteString(reqs[i].key)
		lines.WriteByte('\t')
		lines.Write(reqs[i].body)
		lines.WriteByte('\n')
	}
	data := filepath.Join(dir, "beats.tsv")
	if err := os.WriteFile(data, lines.Bytes(), 0o644); err != nil {
		return nil, err
	}
	threads := max(1, gomaxprocsNow())
	one := func(t wrkTarget) (wrkRun, error) {
		logf("intake: wrk: %s, %d threads, %d connections, %s window", t.label, threads, cfg.Workers, cfg.Duration)
		if cfg.Warmup > 0 {
			if _, err := runWrk(ctx, path, script, data, t.addr, threads, cfg.Workers, cfg.Warmup, nil); err != nil {
				return wrkRun{}, fmt.Errorf("wrk %s (warm-up): %w", t.label, err)
			}
		}
		r, err := runWrk(ctx, path, script, data, t.addr, threads, cfg.Workers, cfg.Duration, t.watch)
		if err != nil {
			return wrkRun{}, fmt.Errorf("wrk %s: %w", t.label, err)
		}
		r.Label = t.label
		logf("intake: wrk: %s: %.0f/s (%d non-2xx, %d socket errors)", t.label, r.OKPerSec, r.Non2xx, r.SocketErrors)
		return r, nil
	}
	if res.BareBefore, err = one(bare); err != nil {
		return res, err
	}
	if res.Follower, err = one(follower); err != nil {
		return res, err
	}
	if res.Leader, err = one(leader); err != nil {
		return res, err
	}
	bare.label = "bare (after)"
	if res.BareAfter, err = one(bare); err != nil {
		return res, err
	}
	res.BareBefore.Label = "bare (before)"
	res.CeilingPerSec = max(res.BareBefore.OKPerSec, res.BareAfter.OKPerSec)
	if res.CeilingPerSec > 0 {
		res.FollowerRatio = round3(res.Follower.OKPerSec / res.CeilingPerSec)
		res.LeaderRatio = round3(res.Leader.OKPerSec / res.CeilingPerSec)
	}
	return res, nil
}

// runWrk runs wrk once against addr and parses the script's result line.
func runWrk(ctx context.Context, path, script, data, addr string, threads, conns int, d time.Duration, watch *cpuWatch) (wrkRun, error) {
	secs := max(1, int(d.Round(time.Second).Seconds()))
	cmd := exec.CommandContext(ctx, path, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(max(conns, threads)),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "10s", "-s", script,
		"http://"+addr+"/v1/heartbeat", "--", data, strconv.Itoa(threads))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	setChildAttrs(cmd)
	if watch != nil {
		watch.begin()
	}
	if err := cmd.Run(); err != nil {
		return wrkRun{}, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	r := wrkRun{Threads: threads, Connections: max(conns, threads)}
	if watch != nil {
		watch.end()
		r.ServerCPU = watch.out
	}
	if ps := cmd.ProcessState; ps != nil {
		r.GeneratorCPU = round3((ps.UserTime() + ps.SystemTime()).Seconds())
	}
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if s, ok := strings.CutPrefix(l, "WRKRESULT "); ok {
			line = s
		}
	}
	if line == "" {
		return wrkRun{}, errors.New("no result line in wrk's output: " + strings.TrimSpace(out.String()))
	}
	var p struct {
		Requests   int64 `json:"requests"`
		DurationUS int64 `json:"duration_us"`
		Non2xx     int64 `json:"non_2xx"`
		Connect    int64 `json:"connect_errors"`
		Read       int64 `json:"read_errors"`
		Write      int64 `json:"write_errors"`
		Timeouts   int64 `json:"timeouts"`
		P50        int64 `json:"p50_us"`
		P99        int64 `json:"p99_us"`
		Max        int64 `json:"max_us"`
	}
	if err := json.Unmarshal([]byte(line), &p); err != nil {
		return wrkRun{}, fmt.Errorf("wrk result %q: %w", line, err)
	}
	if p.DurationUS <= 0 {
		return wrkRun{}, fmt.Errorf("wrk result %q: no duration", line)
	}
	r.WindowSec = round3(float64(p.DurationUS) / 1e6)
	r.Requests, r.Non2xx = p.Requests, p.Non2xx
	r.SocketErrors = p.Connect + p.Read + p.Write + p.Timeouts
	r.OKPerSec = round1(float64(p.Requests-p.Non2xx) / r.WindowSec)
	r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs = float64(p.P50)/1000, float64(p.P99)/1000, float64(p.Max)/1000
	return r, nil
}
