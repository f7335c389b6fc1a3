package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/monitor"
	"github.com/lunasentri/lunasentri/transport"
)

// machineProfile describes the generated machines; memory per machine
// depends on it (mostly on the labels: a map per machine).
func machineProfile(labels bool) string {
	l := "2 labels (env: 3 values, role: 5 values)"
	if !labels {
		l = "no labels"
	}
	return `id: 16 hex chars; name "web-NNNNNNN"; hostname "web-NNNNNNN.dc1.example.net"; ` +
		l + `; no description; online; last_seen set; cluster-default threshold (2m)`
}

// scaleRun is one child: a size and a machine profile.
type scaleRun struct {
	n      int
	labels bool
}

// scaleResult is one size's in-process measurements.
type scaleResult struct {
	Machines int    `json:"machines"`
	Labels   bool   `json:"labels"`
	Profile  string `json:"profile"`

	BuildSeconds        float64 `json:"fsm_build_s"` // Restore from a generated stream
	MonitorLoadSeconds  float64 `json:"monitor_load_s"`
	FSMBytesPerMachine  float64 `json:"fsm_bytes_per_machine"`
	MonitorBytesPerMach float64 `json:"monitor_bytes_per_machine"`
	CoalBytesPerMachine float64 `json:"coalescer_bytes_per_machine"`
	BytesPerMachine     float64 `json:"bytes_per_machine"` // FSM + monitor + coalescer, live heap after GC
	HeapMB              float64 `json:"heap_mb"`
	RSSMB               float64 `json:"rss_mb"`
	AuthNs              float64 `json:"authenticate_ns"` // one goroutine, every key once (includes SHA-256)
	RecordNs            float64 `json:"coalescer_record_ns"`

	SnapshotTakeMs    float64     `json:"snapshot_take_ms"`    // fsm.Snapshot(), on the applying goroutine
	SnapshotPersistMs float64     `json:"snapshot_persist_ms"` // while heartbeat batches keep coming
	ApplyStall        *applyStall `json:"apply_during_snapshot,omitempty"`
	SnapshotBytes     int64       `json:"snapshot_bytes"`
	RestoreMs         float64     `json:"restore_ms"` // raft FileSnapshotStore.Open (CRC pass) + fsm.Restore
	RestoredHeapMB    float64     `json:"restored_heap_mb"`

	TickIdleNs  float64 `json:"tick_ns_no_machines"` // a tick of a monitor tracking nothing
	TickNs      float64 `json:"tick_ns"`             // a tick tracking Machines, none due
	TickSamples int     `json:"tick_samples"`
	Error       string  `json:"error,omitempty"`
}

// runScale runs one child process per size, so each heap is measured
// alone.
func runScale(ctx context.Context, runs []scaleRun, dir, profileDir string) ([]scaleResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var out []scaleResult
	for _, run := range runs {
		n := run.n
		logf("scale: %d machines, %s (child process)", n, map[bool]string{true: "2 labels each", false: "no labels"}[run.labels])
		sdir := filepath.Join(dir, "scale-"+strconv.Itoa(n))
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			return out, err
		}
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), childEnv+"=scale", "LUNASENTRI_BENCH_SCALE_N="+strconv.Itoa(n), "LUNASENTRI_BENCH_SCALE_DIR="+sdir,
			"LUNASENTRI_BENCH_SCALE_LABELS="+strconv.FormatBool(run.labels), "LUNASENTRI_BENCH_PROFILE_DIR="+profileDir)
		cmd.Stderr = os.Stderr
		setChildAttrs(cmd)
		data, err := cmd.Output()
		var r scaleResult
		if jerr := json.Unmarshal(data, &r); jerr != nil {
			if err == nil {
				err = jerr
			}
			r = scaleResult{Machines: n, Labels: run.labels, Error: err.Error()}
		}
		out = append(out, r)
		_ = os.RemoveAll(sdir)
		if err != nil {
			return out, fmt.Errorf("scale %d: %w", n, err)
		}
		logf("scale: %d machines: %.0f B/machine (fsm %.0f, monitor %.0f, coalescer %.0f); snapshot %.1f MB, take %.1fms, persist %.0fms, restore %.0fms; tick %.0fns (idle monitor %.0fns)",
			n, r.BytesPerMachine, r.FSMBytesPerMachine, r.MonitorBytesPerMach, r.CoalBytesPerMachine,
			float64(r.SnapshotBytes)/1e6, r.SnapshotTakeMs, r.SnapshotPersistMs, r.RestoreMs, r.TickNs, r.TickIdleNs)
		if st := r.ApplyStall; st != nil {
			logf("scale: %d machines: Apply during the snapshot (%d beats/s in batches of %d): p50 %.1fms p99 %.1fms max %.1fms over %d batches (no snapshot: p99 %.1fms max %.1fms)",
				n, st.BeatsPerSec, st.BeatsPerBatch, st.During.P50Ms, st.During.P99Ms, st.During.MaxMs, st.During.N, st.Baseline.P99Ms, st.Baseline.MaxMs)
		}
	}
	return out, nil
}

func runScaleChild() {
	n, err := strconv.Atoi(os.Getenv("LUNASENTRI_BENCH_SCALE_N"))
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "scale: bad LUNASENTRI_BENCH_SCALE_N")
		os.Exit(2)
	}
	labels, _ := strconv.ParseBool(os.Getenv("LUNASENTRI_BENCH_SCALE_LABELS"))
	r, err := scaleChild(n, labels, os.Getenv("LUNASENTRI_BENCH_SCALE_DIR"))
	if err != nil {
		r.Error = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	if err != nil {
		os.Exit(1)
	}
}

var scaleT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func scaleID(i int) string    { return fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15) }
func scaleName(i int) string  { return fmt.Sprintf("web-%07d", i) }
func scaleKey(i int) string   { return fmt.Sprintf("lsk_bench_%07d_0123456789abcdefghijklmnopqrstu", i) }
func scaleLastSeen(i int) int { return i % 10_000 } // ms before scaleT0

// genStream is a snapshot of n online machines, generated as it is read.
type genStream struct {
	n, i   int
	labels bool
	buf    []byte
	// now, when set, dates the machines around it (a cluster that will
	// take beats from them); zero: the fixed scaleT0 of the in-process runs.
	now time.Time
}

var (
	scaleEnvs  = []string{"prod", "staging", "dev"}
	scaleRoles = []string{"web", "db", "cache", "queue", "batch"}
)

func (s *genStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		switch {
		case s.i > s.n:
			return 0, io.EOF
		case s.i == 0:
			s.buf = fmt.Appendf(s.buf[:0], `{"format":"lunasentri-fsm","version":1,"counters":{},"machines":%d,"channels":0,"events":0}`+"\n", s.n)
		default:
			i := s.i - 1
			h := sha256.Sum256([]byte(scaleKey(i)))
			t0, changed, created := scaleT0, "2029-12-01T00:00:00.123456789Z", "2029-11-01T00:00:00.987654321Z"
			if !s.now.IsZero() {
				t0 = s.now
				changed, created = s.now.Add(-24*time.Hour).Format(time.RFC3339Nano), s.now.Add(-30*24*time.Hour).Format(time.RFC3339Nano)
			}
			seen := t0.Add(-time.Duration(scaleLastSeen(i))*time.Millisecond - 123456*time.Nanosecond).Format(time.RFC3339Nano)
			labels := "{}"
			if s.labels {
				labels = fmt.Sprintf(`{"env":%q,"role":%q}`, scaleEnvs[i%3], scaleRoles[i%5])
			}
			s.buf = fmt.Appendf(s.buf[:0],
				`{"id":%q,"name":%q,"hostname":%q,"description":"","labels":%s,"offline_threshold":0,"key_hash":%q,"status":"online","last_seen":%q,"status_changed_at":%q,"created_at":%q}`+"\n",
				scaleID(i), scaleName(i), scaleName(i)+".dc1.example.net", labels,
				hex.EncodeToString(h[:]), seen, changed, created)
		}
		s.i++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// liveHeap is the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// benchClock is a monitor.Clock whose time stands still and whose ticks the
// harness sends by hand.
type benchClock struct {
	now time.Time
	ch  chan time.Time
}

func (c *benchClock) Now() time.Time                         { return c.now }
func (c *benchClock) NewTicker(time.Duration) monitor.Ticker { return benchTicker{c.ch} }

type benchTicker struct{ ch chan time.Time }

func (t benchTicker) C() <-chan time.Time { return t.ch }
func (t benchTicker) Stop()               {}

type fsmSource struct {
	f   *fsm.FSM
	def time.Duration
}

func (s fsmSource) OnlineMachines() []monitor.Machine {
	ls := s.f.OnlineMachines()
	out := make([]monitor.Machine, len(ls))
	for i, l := range ls {
		th := l.OfflineThreshold
		if th <= 0 {
			th = s.def
		}
		out[i] = monitor.Machine{ID: l.ID, LastSeen: l.LastSeen, Threshold: th}
	}
	return out
}

type emptySource struct{}

func (emptySource) OnlineMachines() []monitor.Machine { return nil }

type countingProposer struct{ n int }

func (p *countingProposer) ProposeOffline(context.Context, []monitor.Expired) error {
	p.n++
	return nil
}

// startMonitor runs a monitor on a still clock and waits until it tracks
// want machines.
func startMonitor(ctx context.Context, src monitor.Source, want int) (*monitor.Monitor, *benchClock, *countingProposer, func(), error) {
	clk := &benchClock{now: scaleT0.Add(time.Second), ch: make(chan time.Time)}
	prop := &countingProposer{}
	m, err := monitor.New(monitor.Options{Clock: clk, Source: src, Proposer: prop})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	for m.Tracked() < want {
		time.Sleep(2 * time.Millisecond)
	}
	// Run is active once it tracks everything; with want == 0 give it a
	// moment to reach its loop.
	if want == 0 {
		clk.ch <- clk.now
	}
	return m, clk, prop, func() { cancel(); <-done }, nil
}

// tickCost sends k ticks; each send completes when Run's loop receives it,
// i.e. after the previous check finished, so the time per send is the cost
// of a check plus one channel handoff between goroutines.
func tickCost(clk *benchClock, k int) float64 {
	for range k / 10 { // warm up
		clk.ch <- clk.now
	}
	t0 := time.Now()
	for range k {
		clk.ch <- clk.now
	}
	clk.ch <- clk.now // the k-th check has finished once this is received
	return float64(time.Since(t0).Nanoseconds()) / float64(k)
}

func scaleChild(n int, labels bool, dir string) (scaleResult, error) {
	r := scaleResult{Machines: n, Labels: labels, Profile: machineProfile(labels), TickSamples: 200_000}
	prof := func(phase string) func() {
		return startChildProfile(fmt.Sprintf("scale-%d-labels-%t-%s", n, labels, phase))
	}
	ctx := context.Background()
	debug.SetGCPercent(100)
	progress := func(format string, args ...any) { logf("scale %d: "+format, append([]any{n}, args...)...) }

	// Tick cost of a monitor that tracks nothing: the floor (the handoff).
	{
		_, clk, _, stop, err := startMonitor(ctx, emptySource{}, 0)
		if err != nil {
			return r, err
		}
		r.TickIdleNs = round1(tickCost(clk, r.TickSamples))
		stop()
	}

	base := liveHeap()
	progress("building the FSM from a generated snapshot")
	f := fsm.New(fsm.Options{MaxMachines: max(n, fsm.DefaultMaxMachines)})
	t0 := time.Now()
	stop := prof("build")
	if err := f.Restore(io.NopCloser(bufio.NewReaderSize(&genStream{n: n, labels: labels}, 1<<20))); err != nil {
		return r, err
	}
	stop()
	r.BuildSeconds = round3(time.Since(t0).Seconds())
	if got := f.MachineCount(); got != n {
		return r, fmt.Errorf("FSM has %d machines, want %d", got, n)
	}
	hFSM := liveHeap()

	progress("loading the monitor")
	t0 = time.Now()
	mon, clk, prop, stopMon, err := startMonitor(ctx, fsmSource{f: f, def: 2 * time.Minute}, n)
	if err != nil {
		return r, err
	}
	r.MonitorLoadSeconds = round3(time.Since(t0).Seconds())
	hMon := liveHeap()

	progress("authenticating every key and recording a beat for each")
	co := transport.NewCoalescer()
	var authNs, recNs time.Duration
	const chunk = 10_000
	keys := make([]string, 0, chunk)
	ids := make([]string, chunk)
	now := time.Now()
	for lo := 0; lo < n; lo += chunk {
		keys = keys[:0]
		for i := lo; i < min(lo+chunk, n); i++ {
			keys = append(keys, scaleKey(i))
		}
		t := time.Now()
		for j, k := range keys {
			id, ok := f.Authenticate(k)
			if !ok {
				return r, fmt.Errorf("key of machine %d refused", lo+j)
			}
			ids[j] = id
		}
		authNs += time.Since(t)
		t = time.Now()
		for j := range keys {
			co.Record(ids[j], now)
		}
		recNs += time.Since(t)
	}
	clear(ids)
	keys = nil
	r.AuthNs = round1(float64(authNs.Nanoseconds()) / float64(n))
	r.RecordNs = round1(float64(recNs.Nanoseconds()) / float64(n))
	hCo := liveHeap()
	if co.Len() != n {
		return r, fmt.Errorf("coalescer holds %d, want %d", co.Len(), n)
	}

	per := func(a, b uint64) float64 { return round1((float64(b) - float64(a)) / float64(n)) }
	r.FSMBytesPerMachine = per(base, hFSM)
	r.MonitorBytesPerMach = per(hFSM, hMon)
	r.CoalBytesPerMachine = per(hMon, hCo)
	r.BytesPerMachine = per(base, hCo)
	r.HeapMB = round1(float64(hCo) / (1 << 20))
	r.RSSMB = round1(float64(pidRSS(os.Getpid())) / (1 << 20))

	progress("timing idle ticks")
	r.TickNs = round1(tickCost(clk, r.TickSamples))
	if prop.n != 0 {
		return r, fmt.Errorf("a tick proposed %d batches; nothing should be due", prop.n)
	}
	if mon.Tracked() != n {
		return r, fmt.Errorf("monitor tracks %d, want %d", mon.Tracked(), n)
	}
	stopMon()

	progress("snapshot persist")
	store, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		return r, err
	}
	stop = prof("persist")
	stall, err := measureApplyStall(f, n, store, 3*time.Second)
	stop()
	if err != nil {
		return r, err
	}
	r.ApplyStall = &stall
	r.SnapshotTakeMs, r.SnapshotPersistMs = stall.TakeMs, stall.PersistMs
	metas, err := store.List()
	if err != nil || len(metas) == 0 {
		return r, fmt.Errorf("list snapshots: %v", err)
	}
	r.SnapshotBytes = metas[0].Size

	// Restore into a fresh FSM, as a follower installing the snapshot or a
	// node restarting does; the old FSM is no longer referenced, so it is
	// collected first.
	liveHeap()
	progress("restore")
	f2 := fsm.New(fsm.Options{MaxMachines: max(n, fsm.DefaultMaxMachines)})
	t0 = time.Now()
	stop = prof("restore")
	_, rc, err := store.Open(metas[0].ID)
	if err != nil {
		return r, err
	}
	if err := f2.Restore(rc); err != nil {
		return r, err
	}
	stop()
	r.RestoreMs = ms(time.Since(t0))
	if got := f2.MachineCount(); got != n {
		return r, fmt.Errorf("restored %d machines, want %d", got, n)
	}
	r.RestoredHeapMB = round1(float64(liveHeap()) / (1 << 20))
	runtime.KeepAlive(f2)
	return r, nil
}
