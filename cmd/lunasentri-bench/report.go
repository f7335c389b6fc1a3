package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Results is everything one run measured; it is written as JSON.
type Results struct {
	Tool      string            `json:"tool"`
	Started   time.Time         `json:"started"`
	Finished  time.Time         `json:"finished"`
	DurationS float64           `json:"duration_s"`
	Env       envInfo           `json:"environment"`
	Settings  *config           `json:"settings"`
	Targets   []targetRow       `json:"targets"`
	Intake    *intakeResult     `json:"intake,omitempty"`
	Detection *detectionResult  `json:"detection,omitempty"`
	Failover  *failoverResult   `json:"failover,omitempty"`
	Storm     *stormResult      `json:"storm,omitempty"`
	Scale     []scaleResult     `json:"scale,omitempty"`
	BigSnap   *bigSnapResult    `json:"bigsnap,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
}

type envInfo struct {
	GoVersion         string `json:"go_version"`
	OS                string `json:"os"`
	Arch              string `json:"arch"`
	NumCPU            int    `json:"num_cpu"`
	CPUModel          string `json:"cpu_model,omitempty"`
	Kernel            string `json:"kernel,omitempty"`
	HarnessGOMAXPROCS int    `json:"harness_gomaxprocs"`
	ServerGOMAXPROCS  int    `json:"server_gomaxprocs"`
	BareGOMAXPROCS    int    `json:"bare_gomaxprocs"`
	LoadAvgStart      string `json:"loadavg_start,omitempty"`
	LoadAvgEnd        string `json:"loadavg_end,omitempty"`
	Binary            string `json:"binary,omitempty"`
	BinaryVersion     string `json:"binary_version,omitempty"`
	GitRevision       string `json:"git_revision,omitempty"`
	Note              string `json:"note"`
}

// targetRow is one line of the table.
type targetRow struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      string `json:"met"` // yes, NO, info, not run
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// evaluate fills res.Targets from the measurements.
func evaluate(res *Results, cfg *config) {
	var rows []targetRow
	add := func(name, target, measured, met string) {
		rows = append(rows, targetRow{Name: name, Target: target, Measured: measured, Met: met})
	}
	notRun := func(name, target, why string) { add(name, target, why, "not run") }

	if in := res.Intake; in != nil {
		add("intake, 3-node cluster", "", fmt.Sprintf("%.0f heartbeats/s (%d machines, %d workers, %s client)", in.Cluster.AcceptedPerSec, in.Machines, in.Cluster.Workers, in.Cluster.Client), "info")
		add("bare net/http 202 (ceiling)", "", fmt.Sprintf("%.0f/s (runs: %.0f before, %.0f after)", in.CeilingPerSec, in.BareBefore.AcceptedPerSec, in.BareAfter.AcceptedPerSec), "info")
		add("diagnostic: three bare processes", "", fmt.Sprintf("%.0f/s (%.2f of ceiling; cluster / this = %.2f)", in.BareThree.AcceptedPerSec, in.BareThree.AcceptedPerSec/max(in.CeilingPerSec, 1), in.Cluster.AcceptedPerSec/max(in.BareThree.AcceptedPerSec, 1)), "info")
		add("intake / ceiling, load spread over 3 nodes", ">= 0.60", fmt.Sprintf("%.2f (%.2f against the mean of the two bare runs)", in.Ratio, in.RatioVsMean), yesNo(in.Ratio >= 0.6))
		add(fmt.Sprintf("follower path (%s), harness client", in.FollowerNode), ">= 0.80 of ceiling",
			fmt.Sprintf("%.2f (%.0f/s)", in.FollowerRatio, in.FollowerPath.AcceptedPerSec), yesNo(in.FollowerRatio >= 0.8))
		add(fmt.Sprintf("leader path (%s), harness client", in.Leader), ">= 0.80 of ceiling",
			fmt.Sprintf("%.2f (%.0f/s)", in.LeaderRatio, in.OneNode.AcceptedPerSec), yesNo(in.LeaderRatio >= 0.8))
		switch w := in.Wrk; {
		case w == nil:
			notRun("follower / leader path, wrk", ">= 0.80 of wrk's ceiling", "no result")
		case w.Skipped != "":
			notRun("follower / leader path, wrk", ">= 0.80 of wrk's ceiling", w.Skipped)
		default:
			add("bare net/http 202, wrk (ceiling)", "", fmt.Sprintf("%.0f/s (runs: %.0f before, %.0f after; %d threads, %d connections)",
				w.CeilingPerSec, w.BareBefore.OKPerSec, w.BareAfter.OKPerSec, w.BareBefore.Threads, w.BareBefore.Connections), "info")
			wrkOK := func(r wrkRun) bool { return r.Non2xx == 0 && r.SocketErrors == 0 }
			add("follower path, wrk", ">= 0.80 of wrk's ceiling", fmt.Sprintf("%.2f (%.0f/s, %d non-2xx)", w.FollowerRatio, w.Follower.OKPerSec, w.Follower.Non2xx),
				yesNo(w.FollowerRatio >= 0.8 && wrkOK(w.Follower)))
			add("leader path, wrk", ">= 0.80 of wrk's ceiling", fmt.Sprintf("%.2f (%.0f/s, %d non-2xx)", w.LeaderRatio, w.Leader.OKPerSec, w.Leader.Non2xx),
				yesNo(w.LeaderRatio >= 0.8 && wrkOK(w.Leader)))
		}
		add("elections during the whole intake phase (every load, wrk too)", "0",
			fmt.Sprintf("term %d → %d, leader %s", in.TermStart, in.TermEnd, in.LeaderAtEnd),
			yesNo(in.TermStart != 0 && in.TermStart == in.TermEnd && !in.LeaderChanged))
		exp := in.Raft.ExpectedPerSec
		add("Raft entries/s at full load", fmt.Sprintf("near nodes x 1/flush = %.0f/s (<= %.0f)", exp, 1.5*exp),
			fmt.Sprintf("%.1f/s for %.0f heartbeats/s (%.0f beats/entry)", in.Raft.EntriesPerSec, in.Raft.ServerHeartbeatsPerS, in.Raft.HeartbeatsPerEntry),
			yesNo(in.Raft.EntriesPerSec <= 1.5*exp && !in.Raft.LeaderChangedInWindow))
		hi, lo := in.Raft.EntriesPerSec, in.RaftLow.EntriesPerSec
		indep := max(hi, lo) > 0 && abs(hi-lo) <= 0.25*max(hi, lo)
		factor := 0.0
		if in.RaftLow.ServerHeartbeatsPerS > 0 {
			factor = in.Raft.ServerHeartbeatsPerS / in.RaftLow.ServerHeartbeatsPerS
		}
		add("Raft entries vs heartbeat rate", "independent (within 25%)",
			fmt.Sprintf("%.1f/s at %.0f hb/s vs %.1f/s at %.0f hb/s (x%.0f beats)", hi, in.Raft.ServerHeartbeatsPerS, lo, in.RaftLow.ServerHeartbeatsPerS, factor),
			yesNo(indep))
	} else {
		notRun("intake / ceiling", ">= 0.60", phaseNote(res, cfg, "intake"))
		notRun("follower / leader path", ">= 0.80 of ceiling", phaseNote(res, cfg, "intake"))
		notRun("Raft entries/s", "near nodes x 1/flush", phaseNote(res, cfg, "intake"))
	}

	if d := res.Detection; d != nil {
		limit := cfg.CheckInterval + cfg.FlushInterval + 100*time.Millisecond
		c := d.DeadlineToCommitted
		add(fmt.Sprintf("detection, %d silent at once: deadline -> offline committed", d.Machines),
			fmt.Sprintf("p99 <= %s", limit),
			fmt.Sprintf("p50 %.0fms  p99 %.0fms  max %.0fms (%d/%d offline)", c.P50Ms, c.P99Ms, c.MaxMs, d.OfflineCommitted, d.Machines),
			yesNo(d.OfflineCommitted == d.Machines && c.N == d.Machines && c.P99Ms <= float64(limit.Milliseconds())))
		w := d.DeadlineToWebhook
		add("deadline -> webhook received", "", fmt.Sprintf("p50 %.0fms  p99 %.0fms  max %.0fms", w.P50Ms, w.P99Ms, w.MaxMs), "info")
		t := d.TransitionToWebhook
		add("webhooks delivered", "all, each <= 5s after its transition",
			fmt.Sprintf("%d/%d; transition -> received max %.0fms; %d dup, %d bad sig", d.Delivered, d.Machines, t.MaxMs, d.Duplicates, d.BadSignatures),
			yesNo(d.Delivered == d.Machines && d.LateOver5s == 0 && d.MissingWebhooks == 0 && d.BadSignatures == 0))
	} else {
		notRun("detection p99", "<= check + flush + 100ms", phaseNote(res, cfg, "detect"))
	}

	if f := res.Failover; f != nil && f.Write.N > 0 {
		add(fmt.Sprintf("failover, kill -9 leader x%d: write accepted", f.Write.N), "p50 <= 1s, max <= 2s",
			fmt.Sprintf("p50 %.0fms  max %.0fms (new leader known p50 %.0fms)", f.Write.P50Ms, f.Write.MaxMs, f.Elected.P50Ms),
			yesNo(f.Write.P50Ms <= 1000 && f.Write.MaxMs <= 2000 && f.Write.N == len(f.Rounds) && f.Write.N == cfg.FailoverRounds))
	} else {
		notRun("failover p50", "<= 1s", phaseNote(res, cfg, "failover"))
	}

	if s := res.Storm; s != nil {
		limit := cfg.CheckInterval + 500*time.Millisecond
		add("isolated outage: deadline -> webhook", fmt.Sprintf("<= check interval + 0.5s = %s, sent alone", limit),
			fmt.Sprintf("%.0fms (alone: %v)", s.IsolatedDelayMs, s.IsolatedSingle),
			yesNo(s.IsolatedSingle && s.IsolatedDelayMs > 0 && s.IsolatedDelayMs <= float64(limit.Milliseconds())))
		for _, r := range []struct {
			name string
			run  stormRun
			kill bool
		}{{"storm", s.Storm, false}, {"storm + kill -9 leader", s.KillStorm, true}} {
			if r.run.Transitions == 0 {
				continue
			}
			add(fmt.Sprintf("%s, %d silent: Telegram", r.name, r.run.Transitions), "complete picture <= 60s, <= 20 messages",
				fmt.Sprintf("%d offline told in %d messages, complete %.1fs after the first transition (%d answered 429)", r.run.TgOfflineCounted, r.run.TgMessages, r.run.TgCompleteAfterS, r.run.TgRateLimited),
				yesNo(r.run.TgOfflineCounted >= r.run.Transitions && r.run.TgMessages <= 20 && r.run.TgCompleteAfterS <= 60))
			dupOK := r.run.HookDupEvents == 0
			if r.kill {
				dupOK = true // a digest in flight at the kill may come twice (counted once above)
			}
			add(fmt.Sprintf("%s, %d silent: webhook", r.name, r.run.Transitions), "every transition once, in digests, <= 10s after it",
				fmt.Sprintf("%d/%d received (%d in %d digests), %d missing, %d duplicate digest ids, max lag %.1fs", r.run.HookReceived, r.run.Transitions, r.run.HookInDigests, r.run.HookDigests, r.run.HookMissing, r.run.HookDupDigestIDs, r.run.HookMaxLagMs/1000),
				yesNo(r.run.HookMissing == 0 && r.run.HookInDigests == r.run.Transitions && dupOK && (r.kill || r.run.HookMaxLagMs <= 10000)))
		}
	} else {
		notRun("storm", "digests at fleet scale", phaseNote(res, cfg, "storm"))
	}

	var s100k, s100kBare, s1m, largest *scaleResult
	for i := range res.Scale {
		s := &res.Scale[i]
		if s.Error != "" {
			continue
		}
		switch {
		case s.Machines == 100_000 && s.Labels:
			s100k = s
		case s.Machines == 100_000:
			s100kBare = s
		case s.Machines == 1_000_000 && s.Labels:
			s1m = s
		}
		if largest == nil || s.Machines > largest.Machines {
			largest = s
		}
	}
	for _, s := range []*scaleResult{s100k, s100kBare} {
		if s == nil {
			continue
		}
		what := "2 labels"
		if !s.Labels {
			what = "no labels"
		}
		add(fmt.Sprintf("memory per machine at 100k (%s)", what), "",
			fmt.Sprintf("%.0f B (fsm %.0f + monitor %.0f + coalescer %.0f)", s.BytesPerMachine, s.FSMBytesPerMachine, s.MonitorBytesPerMach, s.CoalBytesPerMachine), "info")
	}
	if s1m != nil {
		add("memory per machine at 1M (2 labels)", "<= 1024 B",
			fmt.Sprintf("%.0f B (fsm %.0f + monitor %.0f + coalescer %.0f)", s1m.BytesPerMachine, s1m.FSMBytesPerMachine, s1m.MonitorBytesPerMach, s1m.CoalBytesPerMachine),
			yesNo(s1m.BytesPerMachine <= 1024))
		add("snapshot at 1M", "", fmt.Sprintf("%.0f MB; take %.1fms (on the applying goroutine), persist %.0fms (under load)", float64(s1m.SnapshotBytes)/1e6, s1m.SnapshotTakeMs, s1m.SnapshotPersistMs), "info")
		if st := s1m.ApplyStall; st != nil {
			add("Apply during a 1M snapshot (100k beats/s)", "max <= 50ms",
				fmt.Sprintf("p99 %.1fms, max %.1fms over %d batches (no snapshot: p99 %.1fms, max %.1fms)", st.During.P99Ms, st.During.MaxMs, st.During.N, st.Baseline.P99Ms, st.Baseline.MaxMs),
				yesNo(st.During.MaxMs <= 50))
		}
		add("restore of a 1M-machine snapshot", "<= 10s", fmt.Sprintf("%.2fs", s1m.RestoreMs/1000), yesNo(s1m.RestoreMs <= 10_000))
	} else {
		why := "not run (-scale-1m=false)"
		if !cfg.phase("scale") {
			why = phaseNote(res, cfg, "scale")
		}
		notRun("memory per machine at 1M", "<= 1024 B", why)
		notRun("restore of a 1M-machine snapshot", "<= 10s", why)
	}
	if b := res.BigSnap; b != nil && len(b.Snapshots) > 0 {
		var took []string
		for _, s := range b.Snapshots {
			took = append(took, fmt.Sprintf("%.1fs", s.TookMs/1000))
		}
		add(fmt.Sprintf("leader changes, %d snapshots of %s machines, 3-node cluster", len(b.Snapshots), count(b.Machines)), "0",
			fmt.Sprintf("%d elections, %d leader changes; %.0f beats/s through all nodes; snapshots took %s", b.Elections, b.LeaderChanges, b.BeatsPerSec, strings.Join(took, ", ")),
			yesNo(b.Elections == 0 && b.LeaderChanges == 0))
	} else {
		notRun("leader changes during 1M snapshots", "0", phaseNote(res, cfg, "bigsnap"))
	}
	if largest != nil {
		var parts []string
		flat := true
		for _, s := range res.Scale {
			if s.Error != "" || !s.Labels {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s: %.0fns", count(s.Machines), s.TickNs))
			if s.TickNs > 1.5*s.TickIdleNs+500 {
				flat = false
			}
		}
		add("monitor tick, none due", "flat: <= 1.5 x empty monitor + 0.5us",
			fmt.Sprintf("empty: %.0fns; %s", largest.TickIdleNs, strings.Join(parts, "; ")), yesNo(flat))
	} else {
		notRun("monitor tick, none due", "flat", phaseNote(res, cfg, "scale"))
	}
	res.Targets = rows
}

func phaseNote(res *Results, cfg *config, phase string) string {
	if e, ok := res.Errors[phase]; ok {
		if len(e) > 80 {
			e = e[:80] + "..."
		}
		return "failed: " + e
	}
	if !cfg.phase(phase) {
		return "phase not selected"
	}
	return "no result"
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func printTable(w io.Writer, res *Results) {
	fmt.Fprintf(w, "\nLunaSentri benchmark — %s, %d CPUs (%s), Go %s, load average at start %s, at end %s\n",
		res.Started.Format("2006-01-02 15:04 MST"), res.Env.NumCPU, res.Env.CPUModel, res.Env.GoVersion, res.Env.LoadAvgStart, res.Env.LoadAvgEnd)
	if res.Settings.Quick {
		fmt.Fprintln(w, "QUICK RUN (smoke test): small scale, short windows; not the numbers of record.")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASURE\tTARGET\tMEASURED\tMET")
	for _, r := range res.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Target, r.Measured, r.Met)
	}
	tw.Flush()
	for phase, e := range res.Errors {
		fmt.Fprintf(w, "\nphase %s failed: %s\n", phase, e)
	}
}

func writeJSON(path string, res *Results) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
