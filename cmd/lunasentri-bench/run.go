package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// run executes the selected phases. A failed phase is recorded and the
// next one still runs (unless the run was interrupted); the returned error
// says whether anything failed.
func run(ctx context.Context, cfg *config) (*Results, error) {
	res := &Results{Tool: "lunasentri-bench", Started: time.Now(), Settings: cfg, Errors: map[string]string{}}
	res.Env = envInfo{
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		CPUModel: cpuModel(), Kernel: readTrim("/proc/sys/kernel/osrelease"),
		HarnessGOMAXPROCS: gomaxprocsNow(), ServerGOMAXPROCS: gomaxprocsOf(cfg.ServerProcs), BareGOMAXPROCS: gomaxprocsOf(cfg.BareProcs),
		LoadAvgStart: loadAvg(), GitRevision: gitRevision(),
		Note: "the load generator, the webhook receiver, the three servers (or the bare handler) and anything else running share these CPUs",
	}
	defer func() {
		res.Finished = time.Now()
		res.DurationS = round1(res.Finished.Sub(res.Started).Seconds())
		res.Env.LoadAvgEnd = loadAvg()
		if len(res.Errors) == 0 {
			res.Errors = nil
		}
		evaluate(res, cfg)
	}()

	workDir := cfg.WorkDir
	if workDir == "" {
		d, err := os.MkdirTemp("", "lunasentri-bench-")
		if err != nil {
			return res, err
		}
		workDir = d
		if !cfg.Keep {
			defer func() {
				if len(res.Errors) == 0 {
					os.RemoveAll(d)
				} else {
					fmt.Fprintf(os.Stderr, "lunasentri-bench: a phase failed; server logs kept in %s\n", d)
				}
			}()
		}
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		return res, err
	}
	logf("work dir %s", workDir)

	var serverEnv, bareEnv []string
	if cfg.ServerProcs > 0 {
		serverEnv = append(serverEnv, "GOMAXPROCS="+strconv.Itoa(cfg.ServerProcs))
	}
	if cfg.BareProcs > 0 {
		bareEnv = append(bareEnv, "GOMAXPROCS="+strconv.Itoa(cfg.BareProcs))
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return res, err
		}
		if err := profileIntake(ctx, cfg, cfg.ProfileDir); err != nil {
			res.Errors["profile"] = err.Error()
		}
	}

	if cfg.phase("intake") || cfg.phase("detect") || cfg.phase("failover") {
		if err := runClusterPhases(ctx, cfg, res, workDir, serverEnv, bareEnv); err != nil {
			res.Errors["cluster"] = err.Error()
		}
	}
	// withBinary runs a phase that starts servers of its own.
	withBinary := func(phase string, run func(bin string) error) {
		if ctx.Err() != nil || !cfg.phase(phase) {
			return
		}
		bin, err := benchBinary(ctx, cfg, workDir)
		if err == nil {
			err = run(bin)
		}
		if err != nil {
			res.Errors[phase] = err.Error()
		}
	}
	withBinary("storm", func(bin string) (err error) {
		res.Storm, err = runStorm(ctx, cfg, bin, workDir, serverEnv)
		return err
	})
	withBinary("bigsnap", func(bin string) (err error) {
		res.BigSnap, err = runBigSnap(ctx, cfg, bin, workDir, serverEnv)
		return err
	})
	if ctx.Err() == nil && cfg.phase("scale") {
		sizes := []scaleRun{{n: 100_000, labels: true}, {n: 100_000, labels: false}}
		if cfg.Scale1M {
			sizes = append(sizes, scaleRun{n: 1_000_000, labels: true})
		}
		sc, err := runScale(ctx, sizes, workDir, cfg.ProfileDir)
		res.Scale = sc
		if err != nil {
			res.Errors["scale"] = err.Error()
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if len(res.Errors) > 0 {
		return res, fmt.Errorf("%d phase(s) failed", len(res.Errors))
	}
	return res, nil
}

// benchBinary is -bin, or ./cmd/lunasentri built into the work dir once.
func benchBinary(ctx context.Context, cfg *config, workDir string) (string, error) {
	bin := cfg.Bin
	if bin == "" {
		logf("building ./cmd/lunasentri")
		b, err := buildBinary(ctx, workDir)
		if err != nil {
			return "", err
		}
		bin = b
		cfg.Bin = b
	}
	return filepath.Abs(bin)
}

func runClusterPhases(ctx context.Context, cfg *config, res *Results, workDir string, serverEnv, bareEnv []string) error {
	bin, err := benchBinary(ctx, cfg, workDir)
	if err != nil {
		return err
	}
	res.Env.Binary = bin
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
		res.Env.BinaryVersion = strings.TrimSpace(string(out))
	}

	var bare *bareServer
	if cfg.phase("intake") {
		bare, err = startBare(bareEnv)
		if err != nil {
			return fmt.Errorf("bare handler: %w", err)
		}
		defer bare.stop()
	}

	// Default Raft timeouts and intervals; the cluster-wide default
	// threshold is long so the intake machines never go offline during
	// the run (the detection machines carry their own).
	extra := []string{
		"-offline-threshold", "1h",
		"-check-interval", cfg.CheckInterval.String(),
		"-heartbeat-flush-interval", cfg.FlushInterval.String(),
		"-log-level", "info",
	}
	logf("starting a three-node cluster (%s)", bin)
	pc, li, err := startCluster(ctx, bin, filepath.Join(workDir, "cluster"), extra, serverEnv)
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping the cluster")
		pc.stopAll()
	}()
	logf("cluster ready; leader %s", pc.nodes[li].name)

	if cfg.phase("intake") {
		r, err := runIntake(ctx, cfg, pc, bare, bareEnv, li, workDir)
		res.Intake = r
		if err != nil {
			res.Errors["intake"] = err.Error()
		}
		bare.stop()
	}
	if ctx.Err() != nil {
		return nil
	}
	if cfg.phase("detect") {
		if li, err = pc.waitHealthy(ctx, 60*time.Second); err != nil {
			res.Errors["detect"] = err.Error()
		} else {
			r, err := runDetection(ctx, cfg, pc, li)
			res.Detection = r
			if err != nil {
				res.Errors["detect"] = err.Error()
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if cfg.phase("failover") {
		r, err := runFailover(ctx, cfg, pc)
		res.Failover = r
		if err != nil {
			res.Errors["failover"] = err.Error()
		}
	}
	return nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func gitRevision() string {
	out, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
