package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// machineSpec is one machine to register.
type machineSpec struct {
	Name      string
	Labels    map[string]string
	Threshold time.Duration // 0: cluster default
}

// registerMachines registers machines through node i (concurrently; each
// registration is one Raft entry) and returns their API keys in order.
func registerMachines(ctx context.Context, pc *procCluster, i int, specs []machineSpec, workers int) ([]string, error) {
	keys := make([]string, len(specs))
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1)) - 1
				if j >= len(specs) || ctx.Err() != nil {
					return
				}
				s := specs[j]
				body := map[string]any{"name": s.Name, "hostname": s.Name + ".bench.example"}
				if len(s.Labels) > 0 {
					body["labels"] = s.Labels
				}
				if s.Threshold > 0 {
					body["offline_threshold"] = s.Threshold.String()
				}
				var out struct {
					APIKey string `json:"api_key"`
				}
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					var code int
					code, err = pc.call(ctx, nil, i, http.MethodPost, "/v1/machines", body, &out)
					if err == nil || (code != 0 && code < 500) {
						break
					}
					pause(ctx, 200*time.Millisecond)
				}
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				keys[j] = out.APIKey
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return keys, ctx.Err()
}

// raftWindow is Raft's commit index on the leader and the nodes' heartbeat
// counters over one load window.
type raftWindow struct {
	Seconds               float64 `json:"window_s"`
	Entries               uint64  `json:"raft_entries"`
	EntriesPerSec         float64 `json:"raft_entries_per_s"`
	ExpectedPerSec        float64 `json:"expected_per_s"` // nodes × 1/flush-interval
	ServerHeartbeats      float64 `json:"server_heartbeats"`
	ServerHeartbeatsPerS  float64 `json:"server_heartbeats_per_s"`
	HeartbeatsPerEntry    float64 `json:"heartbeats_per_entry"`
	TermBefore            uint64  `json:"term_before"`
	TermAfter             uint64  `json:"term_after"`
	LeaderChangedInWindow bool    `json:"leader_changed"`
}

// intakeResult is the intake phase.
type intakeResult struct {
	Machines        int     `json:"machines"`
	RegisterSeconds float64 `json:"register_s"`
	// Raft term before the first loaded window and after the last: equal
	// means no election during the whole full-load phase (issue 14).
	TermStart     uint64     `json:"term_start"`
	TermEnd       uint64     `json:"term_end"`
	LeaderAtEnd   string     `json:"leader_at_end"`
	LeaderChanged bool       `json:"leader_changed"`
	Leader        string     `json:"leader"`
	FollowerNode  string     `json:"follower"` // the node loaded in the follower-path run
	BareBefore    loadResult `json:"bare_before"`
	Cluster       loadResult `json:"cluster"` // the load spread over all three nodes
	BareAfter     loadResult `json:"bare_after"`
	CeilingPerSec float64    `json:"ceiling_per_s"` // the better of the two bare runs
	Ratio         float64    `json:"ratio"`         // cluster / ceiling
	RatioVsMean   float64    `json:"ratio_vs_mean"` // cluster / mean of the two bare runs (drift-neutral, less conservative)
	// Issue 14: each path on its own, the whole load on one node, as an
	// outside generator pointed at one server sees it. The follower path
	// forwards its batches to the leader; the leader path applies its own.
	FollowerPath      loadResult   `json:"follower_path"`
	FollowerPathCPU   []procCPUUse `json:"follower_path_cpu"`
	FollowerRatio     float64      `json:"follower_ratio"` // follower path / ceiling
	OneNode           loadResult   `json:"one_node"`       // the leader path: the whole load on the leader alone
	OneNodeCPU        []procCPUUse `json:"one_node_cpu"`
	LeaderRatio       float64      `json:"leader_ratio"` // leader path / ceiling
	Wrk               *wrkIntake   `json:"wrk,omitempty"`
	Raft              raftWindow   `json:"raft_full_rate"`
	BareThree         loadResult   `json:"bare_three"` // diagnostic: three bare processes, the load spread like the cluster's
	BareThreeCPU      []procCPUUse `json:"bare_three_cpu"`
	Low               loadResult   `json:"low_rate"`
	RaftLow           raftWindow   `json:"raft_low_rate"`
	ClusterCPU        []procCPUUse `json:"cluster_cpu"`
	BareCPU           []procCPUUse `json:"bare_cpu"` // the bare run before
	BareAfterCPU      []procCPUUse `json:"bare_after_cpu"`
	ServerGOMAXPROCS  int          `json:"server_gomaxprocs"`
	BareGOMAXPROCS    int          `json:"bare_gomaxprocs"`
	HarnessGOMAXPROCS int          `json:"harness_gomaxprocs"`
}

// procCPUUse is one process's CPU use during a window, in cores.
type procCPUUse struct {
	Name  string  `json:"name"`
	Cores float64 `json:"cores"`
}

// cpuWatch samples the CPU time of some processes at window start and end.
type cpuWatch struct {
	names []string
	pids  []int
	start []time.Duration
	t0    time.Time
	out   []procCPUUse
}

func (w *cpuWatch) begin() {
	w.start = make([]time.Duration, len(w.pids))
	for i, p := range w.pids {
		w.start[i] = pidCPU(p)
	}
	w.t0 = time.Now()
}

func (w *cpuWatch) end() {
	el := time.Since(w.t0).Seconds()
	w.out = nil
	for i, p := range w.pids {
		w.out = append(w.out, procCPUUse{Name: w.names[i], Cores: round3((pidCPU(p) - w.start[i]).Seconds() / el)})
	}
}

type raftSample struct {
	at      time.Time
	commit  uint64
	term    uint64
	leader  string
	beats   float64
	scraped bool
}

func sampleRaft(ctx context.Context, pc *procCluster, li int) raftSample {
	s := raftSample{at: time.Now()}
	if st, err := pc.status(ctx, li); err == nil {
		s.commit, s.term, s.leader = st.CommitIndex, st.Term, st.LeaderID
	}
	s.scraped = true
	for i := range pc.nodes {
		m, err := pc.scrape(ctx, nil, i, "lunasentri_heartbeats_received_total")
		if err != nil {
			s.scraped = false
			continue
		}
		s.beats += m["lunasentri_heartbeats_received_total"]
	}
	return s
}

func raftDelta(a, b raftSample, expected float64) raftWindow {
	w := raftWindow{
		Seconds: b.at.Sub(a.at).Seconds(), TermBefore: a.term, TermAfter: b.term,
		LeaderChangedInWindow: a.term != b.term || a.leader != b.leader, ExpectedPerSec: expected,
	}
	if b.commit >= a.commit {
		w.Entries = b.commit - a.commit
	}
	w.EntriesPerSec = round3(float64(w.Entries) / w.Seconds)
	w.ServerHeartbeats = b.beats - a.beats
	w.ServerHeartbeatsPerS = round1(w.ServerHeartbeats / w.Seconds)
	if w.Entries > 0 {
		w.HeartbeatsPerEntry = round1(w.ServerHeartbeats / float64(w.Entries))
	}
	return w
}

// runIntake registers cfg.Machines machines and measures the intake of the
// cluster and of the bare handler, and Raft entries at full and low rate.
func runIntake(ctx context.Context, cfg *config, pc *procCluster, bare *bareServer, bareEnv []string, li int, workDir string) (*intakeResult, error) {
	res := &intakeResult{Machines: cfg.Machines, Leader: pc.nodes[li].name,
		ServerGOMAXPROCS: gomaxprocsOf(cfg.ServerProcs), BareGOMAXPROCS: gomaxprocsOf(cfg.BareProcs), HarnessGOMAXPROCS: gomaxprocsNow()}
	specs := make([]machineSpec, cfg.Machines)
	for i := range specs {
		specs[i] = machineSpec{Name: fmt.Sprintf("load-%06d", i)}
	}
	logf("intake: registering %d machines through the leader (%s)", cfg.Machines, pc.nodes[li].name)
	t0 := time.Now()
	keys, err := registerMachines(ctx, pc, li, specs, 32)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	res.RegisterSeconds = round3(time.Since(t0).Seconds())
	logf("intake: registered in %.1fs", res.RegisterSeconds)
	// Issue 14: no leader change under full load. The term and leader at
	// the start and the end of every loaded window, all nodes asked.
	leaderAtStart := ""
	if st, err := pc.status(ctx, li); err == nil {
		res.TermStart, leaderAtStart = st.Term, st.LeaderID
	}
	reqs := make([]beatRequest, len(keys))
	for i, k := range keys {
		reqs[i] = newBeatRequest(specs[i].Name, k)
	}
	var clusterTargets []string
	var clusterPIDs []int
	var clusterNames []string
	for i, n := range pc.nodes {
		clusterTargets = append(clusterTargets, n.httpAddr)
		clusterPIDs = append(clusterPIDs, pc.pid(i))
		clusterNames = append(clusterNames, n.name)
	}
	// All machines online before measuring, so the window sees steady state.
	if acc, other := beatAll(ctx, clusterTargets, reqs, cfg.Workers); acc != int64(len(reqs)) {
		return nil, fmt.Errorf("first heartbeat: %d of %d accepted (%v)", acc, len(reqs), other)
	}
	spec := func(label string, targets []string) loadSpec {
		return loadSpec{Label: label, Targets: targets, Reqs: reqs, Workers: cfg.Workers, Client: cfg.Client,
			Warmup: cfg.Warmup, Window: cfg.Duration}
	}
	bareRun := func(label string) (loadResult, []procCPUUse, error) {
		s := spec(label, []string{bare.addr})
		w := &cpuWatch{names: []string{"bare"}, pids: []int{bare.cmd.Process.Pid}}
		s.OnWindow = func(start bool) {
			if start {
				w.begin()
			} else {
				w.end()
			}
		}
		logf("intake: %s: bare net/http handler, %d workers, %s client, %s window", label, cfg.Workers, cfg.Client, cfg.Duration)
		r, err := runLoad(ctx, s)
		if err == nil {
			logf("intake: %s: %.0f/s", label, r.AcceptedPerSec)
		}
		return r, w.out, err
	}
	expected := float64(len(pc.nodes)) / cfg.FlushInterval.Seconds()

	if res.BareBefore, res.BareCPU, err = bareRun("bare (before)"); err != nil {
		return nil, err
	}

	fi := (li + 1) % len(pc.nodes)
	res.FollowerNode = pc.nodes[fi].name
	onePath := func(label string, i int) (loadResult, []procCPUUse, error) {
		s := spec(label, []string{pc.nodes[i].httpAddr})
		w := &cpuWatch{names: clusterNames, pids: clusterPIDs}
		s.OnWindow = func(start bool) {
			if start {
				w.begin()
			} else {
				w.end()
			}
		}
		logf("intake: %s: the whole load on %s", label, pc.nodes[i].name)
		r, err := runLoad(ctx, s)
		if err == nil {
			logf("intake: %s: %.0f/s", label, r.AcceptedPerSec)
		}
		return r, w.out, err
	}
	// Issue 14: the follower path and the leader path, each on its own.
	if res.FollowerPath, res.FollowerPathCPU, err = onePath("follower path", fi); err != nil {
		return nil, err
	}
	if res.OneNode, res.OneNodeCPU, err = onePath("leader path", li); err != nil {
		return nil, err
	}

	// Full rate against the cluster.
	s := spec("cluster", clusterTargets)
	var a, b raftSample
	cw := &cpuWatch{names: clusterNames, pids: clusterPIDs}
	s.OnWindow = func(start bool) {
		if start {
			a = sampleRaft(ctx, pc, li)
			cw.begin()
		} else {
			cw.end()
			b = sampleRaft(ctx, pc, li)
		}
	}
	logf("intake: three-node cluster, %d workers, %s client, %s window", cfg.Workers, cfg.Client, cfg.Duration)
	if res.Cluster, err = runLoad(ctx, s); err != nil {
		return nil, err
	}
	res.ClusterCPU = cw.out
	res.Raft = raftDelta(a, b, expected)
	logf("intake: cluster: %.0f/s; raft %.2f entries/s", res.Cluster.AcceptedPerSec, res.Raft.EntriesPerSec)

	// Diagnostic: three bare processes, the load spread over them as over
	// the cluster: the cost of three Go processes sharing the cores,
	// without anything LunaSentri does.
	var three []*bareServer
	for range 3 {
		b, err := startBare(bareEnv)
		if err != nil {
			return nil, err
		}
		defer b.stop()
		three = append(three, b)
	}
	s = spec("three bare processes", []string{three[0].addr, three[1].addr, three[2].addr})
	cw3 := &cpuWatch{names: []string{"bare1", "bare2", "bare3"}, pids: []int{three[0].cmd.Process.Pid, three[1].cmd.Process.Pid, three[2].cmd.Process.Pid}}
	s.OnWindow = func(start bool) {
		if start {
			cw3.begin()
		} else {
			cw3.end()
		}
	}
	logf("intake: diagnostic: three bare processes")
	if res.BareThree, err = runLoad(ctx, s); err != nil {
		return nil, err
	}
	res.BareThreeCPU = cw3.out
	for _, b := range three {
		b.stop()
	}
	logf("intake: three bare processes: %.0f/s", res.BareThree.AcceptedPerSec)

	if res.BareAfter, res.BareAfterCPU, err = bareRun("bare (after)"); err != nil {
		return nil, err
	}
	res.CeilingPerSec = max(res.BareBefore.AcceptedPerSec, res.BareAfter.AcceptedPerSec)
	if res.CeilingPerSec > 0 {
		res.Ratio = round3(res.Cluster.AcceptedPerSec / res.CeilingPerSec)
		res.RatioVsMean = round3(2 * res.Cluster.AcceptedPerSec / (res.BareBefore.AcceptedPerSec + res.BareAfter.AcceptedPerSec))
		res.FollowerRatio = round3(res.FollowerPath.AcceptedPerSec / res.CeilingPerSec)
		res.LeaderRatio = round3(res.OneNode.AcceptedPerSec / res.CeilingPerSec)
	}

	// Issue 14: the same paths judged by wrk, against the bare handler
	// measured by wrk in the same run.
	watch := func(names []string, pids []int) *cpuWatch { return &cpuWatch{names: names, pids: pids} }
	res.Wrk, err = runWrkIntake(ctx, cfg, reqs, workDir,
		wrkTarget{label: "bare (before)", addr: bare.addr, watch: watch([]string{"bare"}, []int{bare.cmd.Process.Pid})},
		wrkTarget{label: "follower path", addr: pc.nodes[fi].httpAddr, watch: watch(clusterNames, clusterPIDs)},
		wrkTarget{label: "leader path", addr: pc.nodes[li].httpAddr, watch: watch(clusterNames, clusterPIDs)})
	if err != nil {
		return res, err
	}

	// Low rate: the same cluster at a small fraction of the heartbeats.
	low := float64(cfg.LowRate)
	if low <= 0 {
		low = max(300, 0.05*res.Cluster.AcceptedPerSec)
	}
	s = spec("cluster (low rate)", clusterTargets)
	s.Rate = low
	s.OnWindow = func(start bool) {
		if start {
			a = sampleRaft(ctx, pc, li)
		} else {
			b = sampleRaft(ctx, pc, li)
		}
	}
	logf("intake: low rate, %.0f heartbeats/s", low)
	if res.Low, err = runLoad(ctx, s); err != nil {
		return nil, err
	}
	res.RaftLow = raftDelta(a, b, expected)
	logf("intake: low rate: %.0f/s; raft %.2f entries/s", res.Low.AcceptedPerSec, res.RaftLow.EntriesPerSec)
	if st, err := pc.status(ctx, li); err == nil {
		res.TermEnd, res.LeaderAtEnd = st.Term, st.LeaderID
		res.LeaderChanged = st.LeaderID != leaderAtStart
	}
	logf("intake: term %d at the start, %d at the end (leader %s)", res.TermStart, res.TermEnd, res.LeaderAtEnd)
	return res, nil
}
