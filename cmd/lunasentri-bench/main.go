// Command lunasentri-bench is the reproducible performance harness behind
// `make bench` (issue 7). It measures, in one run on one machine:
//
//   - intake: heartbeats per second accepted by a three-node loopback
//     cluster of real `lunasentri server` processes, and by a bare net/http
//     handler that only answers 202 (the ceiling), with the same load
//     generator, concurrency and request shape, and the ratio of the two;
//   - Raft entries written per second during that load, at full and at low
//     heartbeat rate;
//   - detection: N machines go silent at once; deadline → offline committed
//     and deadline → webhook received at a local receiver;
//   - failover: kill -9 of the leader, repeatedly; time until a surviving
//     node accepts a write;
//   - scale (in-process, one child process per size): memory per machine
//     (FSM + monitor + coalescer), snapshot size, persist and restore time,
//     and the monitor's tick cost with nothing due.
//
// It prints a table (target, measured, met?) and writes every number, the
// settings and the machine's conditions as JSON. BENCHMARKS.md explains the
// method and what limits each number.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// config is the harness's settings after flags and -quick.
type config struct {
	Bin             string        `json:"-"`
	Machines        int           `json:"machines"`
	Duration        time.Duration `json:"-"`
	Warmup          time.Duration `json:"-"`
	Workers         int           `json:"workers"`
	Client          string        `json:"client"`
	LowRate         int           `json:"low_rate_requested"`
	DetectMachines  int           `json:"detect_machines"`
	StormMachines   int           `json:"storm_machines"`
	BigSnapMachines int           `json:"bigsnap_machines"`
	BigSnapRounds   int           `json:"bigsnap_rounds"`
	DetectThreshold time.Duration `json:"-"`
	CheckInterval   time.Duration `json:"-"`
	FlushInterval   time.Duration `json:"-"`
	FailoverRounds  int           `json:"failover_rounds"`
	Scale1M         bool          `json:"scale_1m"`
	Quick           bool          `json:"quick"`
	Out             string        `json:"out"`
	WorkDir         string        `json:"work_dir"`
	Phases          []string      `json:"phases"`
	ServerProcs     int           `json:"server_gomaxprocs"` // 0: not set (Go's default, NumCPU)
	BareProcs       int           `json:"bare_gomaxprocs"`   // 0: not set
	ProfileDir      string        `json:"profile_dir,omitempty"`
	Keep            bool          `json:"-"`

	// Durations as text for the JSON file.
	DurationText        string `json:"duration"`
	WarmupText          string `json:"warmup"`
	DetectThresholdText string `json:"detect_threshold"`
	CheckIntervalText   string `json:"check_interval"`
	FlushIntervalText   string `json:"heartbeat_flush_interval"`
}

func (c *config) phase(name string) bool {
	for _, p := range c.Phases {
		if p == name {
			return true
		}
	}
	return false
}

func main() {
	// The harness re-executes itself for the bare handler and for the
	// in-process scale measurements, so each runs in a process of its own.
	switch os.Getenv(childEnv) {
	case "bare":
		runBareChild()
		return
	case "scale":
		runScaleChild()
		return
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "lunasentri-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg)
	if res != nil {
		printTable(os.Stdout, res)
		if werr := writeJSON(cfg.Out, res); werr != nil {
			fmt.Fprintln(os.Stderr, "lunasentri-bench: writing results:", werr)
			os.Exit(1)
		}
		fmt.Printf("\nresults written to %s\n", cfg.Out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lunasentri-bench:", err)
		os.Exit(1)
	}
}

const childEnv = "LUNASENTRI_BENCH_CHILD"

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("lunasentri-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	var phases string
	fs.StringVar(&c.Bin, "bin", "", "lunasentri binary to benchmark (default: go build ./cmd/lunasentri into the work dir)")
	fs.IntVar(&c.Machines, "machines", 10000, "registered machines for the intake measurement")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measurement window of each intake run")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "warm-up before each intake window")
	fs.IntVar(&c.Workers, "workers", 64, "concurrent load-generator workers (one keep-alive connection each)")
	fs.StringVar(&c.Client, "client", "raw", "load generator client: raw (minimal HTTP/1.1 over keep-alive TCP) or nethttp (net/http.Client)")
	fs.IntVar(&c.LowRate, "low-rate", 0, "heartbeats/s of the low-rate Raft-entries run (0: 5% of the full rate, at least 300)")
	fs.IntVar(&c.DetectMachines, "detect-machines", 0, "machines that go silent at once in the detection run (0: same as -machines)")
	fs.IntVar(&c.StormMachines, "storm-machines", 10000, "machines that go silent at once in the storm phase (digests)")
	fs.IntVar(&c.BigSnapMachines, "bigsnap-machines", 1_000_000, "machines a real cluster holds while the bigsnap phase takes snapshots under load")
	fs.IntVar(&c.BigSnapRounds, "bigsnap-rounds", 3, "snapshots the bigsnap phase takes")
	fs.DurationVar(&c.DetectThreshold, "detect-threshold", 5*time.Second, "per-machine offline_threshold of the detection machines")
	fs.DurationVar(&c.CheckInterval, "check-interval", time.Second, "servers' -check-interval (the default is 1s)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", 250*time.Millisecond, "servers' -heartbeat-flush-interval (the default is 250ms)")
	fs.IntVar(&c.FailoverRounds, "failover-rounds", 10, "kill -9 of the leader, this many times")
	fs.BoolVar(&c.Scale1M, "scale-1m", true, "also measure the scale numbers at 1M machines (100k is always measured)")
	fs.BoolVar(&c.Quick, "quick", false, "smoke run: 2000 machines, 3s windows, 3 failovers, no 1M scale run (explicit flags still win)")
	fs.StringVar(&c.Out, "out", ".bench/results.json", "where to write the JSON results")
	fs.StringVar(&c.WorkDir, "work-dir", "", "data dirs and server logs (default: a new temp dir, removed unless -keep)")
	fs.StringVar(&phases, "phases", "intake,detect,failover,storm,scale,bigsnap", "comma-separated phases to run")
	fs.IntVar(&c.ServerProcs, "server-gomaxprocs", 0, "GOMAXPROCS of the three server processes (0: Go's default, the number of CPUs)")
	fs.IntVar(&c.BareProcs, "bare-gomaxprocs", 0, "GOMAXPROCS of the bare-handler process (0: Go's default)")
	fs.StringVar(&c.ProfileDir, "profile", "", "write CPU profiles to this dir: an in-process node under the intake load, and the scale phases")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work dir (data dirs and server logs)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.Quick {
		quick := map[string]func(){
			"machines":         func() { c.Machines = 2000 },
			"duration":         func() { c.Duration = 3 * time.Second },
			"warmup":           func() { c.Warmup = time.Second },
			"failover-rounds":  func() { c.FailoverRounds = 3 },
			"scale-1m":         func() { c.Scale1M = false },
			"storm-machines":   func() { c.StormMachines = 2000 },
			"bigsnap-machines": func() { c.BigSnapMachines = 20000 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	if c.DetectMachines <= 0 {
		c.DetectMachines = c.Machines
	}
	for _, p := range strings.Split(phases, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case "":
		case "intake", "detect", "failover", "storm", "scale", "bigsnap":
			c.Phases = append(c.Phases, p)
		default:
			return nil, fmt.Errorf("unknown phase %q (want intake, detect, failover, storm, scale, bigsnap)", p)
		}
	}
	switch {
	case c.Machines < 1:
		return nil, fmt.Errorf("-machines must be positive")
	case c.Workers < 1:
		return nil, fmt.Errorf("-workers must be positive")
	case c.Client != "raw" && c.Client != "nethttp":
		return nil, fmt.Errorf("-client must be raw or nethttp")
	case c.Duration <= 0 || c.Warmup < 0:
		return nil, fmt.Errorf("-duration must be positive and -warmup not negative")
	case c.DetectThreshold < time.Second:
		return nil, fmt.Errorf("-detect-threshold must be at least 1s (the API's minimum)")
	}
	c.DurationText = c.Duration.String()
	c.WarmupText = c.Warmup.String()
	c.DetectThresholdText = c.DetectThreshold.String()
	c.CheckIntervalText = c.CheckInterval.String()
	c.FlushIntervalText = c.FlushInterval.String()
	return c, nil
}

// logf prints progress to stderr, so stdout holds only the table.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
