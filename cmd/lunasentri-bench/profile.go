package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport"
)

// -profile DIR: CPU profiles of the hot paths, for `go tool pprof`.
//
//   - intake.cpu: one in-process node (the real transport.API and FSM, a
//     single-voter "consensus" that applies locally) behind a real
//     loopback http.Server, loaded by the same generator as the intake
//     phase. The generator is in the profile too; focus on
//     transport/fsm/net/http server frames.
//   - scale-N-{build,persist,restore}.cpu: the scale child's phases.
//
// The servers of the cluster phases expose no pprof endpoint, hence the
// in-process stand-in.

// localConsensus is a one-node transport.Consensus: Apply goes straight to
// the FSM, as on a leader whose followers answer at once.
type localConsensus struct {
	mu  sync.Mutex
	f   *fsm.FSM
	idx uint64
}

func (c *localConsensus) IsLeader() bool                             { return true }
func (c *localConsensus) Leader() (string, string, bool)             { return "local", "127.0.0.1:0", true }
func (c *localConsensus) WaitForIndex(context.Context, uint64) error { return nil }
func (c *localConsensus) Ready() (bool, string)                      { return true, "" }
func (c *localConsensus) Members() ([]transport.Member, error) {
	return []transport.Member{{ID: "local", Voter: true, Leader: true}}, nil
}
func (c *localConsensus) Status() transport.NodeStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return transport.NodeStatus{NodeID: "local", RaftState: "Leader", LeaderID: "local", CommitIndex: c.idx, AppliedIndex: c.idx}
}
func (c *localConsensus) Apply(_ context.Context, cmd []byte) (any, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idx++
	return c.f.ApplyBytes(c.idx, cmd), c.idx, nil
}

func profileIntake(ctx context.Context, cfg *config, dir string) error {
	f := fsm.New(fsm.Options{})
	cons := &localConsensus{f: f}
	api, err := transport.New(transport.Options{
		FSM: f, Consensus: cons, AdminToken: adminToken, ClusterSecret: "profile-cluster-secret",
		OfflineThreshold: time.Hour, FlushInterval: cfg.FlushInterval,
	})
	if err != nil {
		return err
	}
	reqs := make([]beatRequest, cfg.Machines)
	for i := range reqs {
		name := fmt.Sprintf("load-%06d", i)
		key := fmt.Sprintf("lsk_profile_%06d_0123456789abcdefghijklmnopqrstuvw", i)
		m := fsm.Machine{ID: fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15), Name: name, Hostname: name + ".bench.example",
			KeyHash: fsm.HashKey(key), CreatedAt: time.Now().UTC()}
		if _, _, err := cons.Apply(ctx, fsm.MustEncode(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: m})); err != nil {
			return err
		}
		reqs[i] = newBeatRequest(name, key)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fctx, stopFlusher := context.WithCancel(ctx)
	defer stopFlusher()
	go api.RunFlusher(fctx)

	out, err := os.Create(filepath.Join(dir, "intake.cpu"))
	if err != nil {
		return err
	}
	defer out.Close()
	spec := loadSpec{Label: "in-process node (profiled)", Targets: []string{ln.Addr().String()}, Reqs: reqs,
		Workers: cfg.Workers, Client: cfg.Client, Warmup: cfg.Warmup, Window: cfg.Duration,
		OnWindow: func(start bool) {
			if start {
				_ = pprof.StartCPUProfile(out)
			} else {
				pprof.StopCPUProfile()
			}
		}}
	logf("profile: in-process node, %d machines, %s window", cfg.Machines, cfg.Duration)
	r, err := runLoad(ctx, spec)
	if err != nil {
		return err
	}
	logf("profile: in-process node: %.0f/s; profile in %s", r.AcceptedPerSec, out.Name())
	return nil
}

// startChildProfile starts a CPU profile named name in
// $LUNASENTRI_BENCH_PROFILE_DIR, if set; the returned func stops it.
func startChildProfile(name string) func() {
	dir := os.Getenv("LUNASENTRI_BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".cpu"))
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
