package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type member struct {
	ID           string `json:"id"`
	GossipStatus string `json:"gossip_status"`
	Voter        bool   `json:"voter"`
	Leader       bool   `json:"leader"`
}

func (pc *procCluster) members(i int) map[string]member {
	var out struct {
		Members []member `json:"members"`
	}
	getJSON(pc.t, pc.url(i)+"/v1/cluster/members", &out)
	m := map[string]member{}
	for _, mb := range out.Members {
		m[mb.ID] = mb
	}
	return m
}

// TestE2E_FourthServerJoinsThenFollowerDies: a server started with only
// -join becomes a voter; a killed follower is reported not alive within
// seconds and the cluster keeps taking writes.
func TestE2E_FourthServerJoinsThenFollowerDies(t *testing.T) {
	pc := newProcCluster(t, 3, []string{"-server-stabilization", "2s", "-dead-server-cleanup", "5s"})
	leader := pc.leader(30 * time.Second)
	start := time.Now()
	n4 := pc.addJoiner(pc.follower(leader))
	waitFor(t, 60*time.Second, "node4 listed as a voter", func() bool { return pc.members(leader)["node4"].Voter })
	t.Logf("join to voter: %s (stabilization 2s)", time.Since(start).Round(time.Millisecond))
	waitFor(t, 20*time.Second, "node4 ready", func() bool {
		return api("GET", pc.url(n4)+"/readyz", "", nil, nil) == http.StatusOK
	})

	victim := pc.follower(leader)
	name := pc.procs[victim].name
	killed := time.Now()
	pc.kill(victim)
	waitFor(t, 30*time.Second, name+" reported not alive", func() bool {
		s := pc.members(leader)[name].GossipStatus
		return s != "" && s != "alive"
	})
	t.Logf("failure detection: %s reported %q after %s", name, pc.members(leader)[name].GossipStatus, time.Since(killed).Round(time.Millisecond))
	pc.register(leader, map[string]any{"name": "written-after-kill"})
	// Four voters less one is three, not below bootstrap-expect: removed.
	waitFor(t, 60*time.Second, name+" removed from raft", func() bool {
		_, listed := pc.members(leader)[name]
		return !listed || !pc.members(leader)[name].Voter
	})
}

// TestE2E_SnapshotSurvivesWipe: save a snapshot from a running cluster, wipe
// all three data dirs, start a fresh cluster, restore, compare.
func TestE2E_SnapshotSurvivesWipe(t *testing.T) {
	pc := newProcCluster(t, 3, []string{"-offline-threshold", "3s"})
	leader := pc.leader(30 * time.Second)
	f := pc.follower(leader)
	for _, name := range []string{"snap-a", "snap-b", "snap-c"} {
		key := pc.register(f, map[string]any{"name": name, "labels": map[string]string{"team": "core"}})
		if name != "snap-c" {
			waitFor(t, 10*time.Second, name+" beat", func() bool { return pc.beat(key, 0) })
		}
	}
	code := api("POST", pc.url(f)+"/v1/channels", adminToken, map[string]any{
		"type": "webhook", "name": "hook", "url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef0123",
	}, nil)
	if code != http.StatusCreated {
		t.Fatalf("create channel = %d", code)
	}
	waitFor(t, 15*time.Second, "two offline events", func() bool {
		return len(pc.mustEvents(t, leader)) == 2
	})
	before := snapshotState(t, pc, leader)

	archive := filepath.Join(t.TempDir(), "backup.snap")
	out, err := runCLI(t, "snapshot", "save", "-address", pc.url(f), "-token", adminToken, archive)
	if err != nil {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}

	pc.stopAll()
	for _, p := range pc.procs {
		if err := os.RemoveAll(p.dataDir); err != nil {
			t.Fatal(err)
		}
	}
	for i := range pc.procs {
		pc.restart(i)
	}
	fresh := pc.leader(30 * time.Second)
	if got := snapshotState(t, pc, fresh); len(got.machines) != 0 {
		t.Fatalf("wiped cluster still has machines: %v", got.machines)
	}
	out, err = runCLI(t, "snapshot", "restore", "-address", pc.url(pc.follower(fresh)), "-token", adminToken, archive)
	if err != nil {
		t.Fatalf("snapshot restore: %v\n%s", err, out)
	}
	for i := range pc.procs {
		waitFor(t, 15*time.Second, "restored state on every node", func() bool {
			got := snapshotState(t, pc, i)
			return got.equal(before)
		})
	}
}

type clusterState struct {
	machines map[string]string // name → status
	events   []string          // id type machine
	channels []string
}

func snapshotState(t *testing.T, pc *procCluster, i int) clusterState {
	t.Helper()
	st := clusterState{machines: map[string]string{}}
	var ms struct {
		Machines []machine `json:"machines"`
	}
	getJSON(t, pc.url(i)+"/v1/machines", &ms)
	for _, m := range ms.Machines {
		st.machines[m.Name] = m.Status
	}
	for _, ev := range pc.mustEvents(t, i) {
		st.events = append(st.events, ev.ID+" "+ev.Type+" "+ev.Machine.Name)
	}
	var chs struct {
		Channels []struct {
			Name string `json:"name"`
		} `json:"channels"`
	}
	getJSON(t, pc.url(i)+"/v1/channels", &chs)
	for _, c := range chs.Channels {
		st.channels = append(st.channels, c.Name)
	}
	return st
}

func (s clusterState) equal(o clusterState) bool {
	if len(s.machines) != len(o.machines) || len(s.events) != len(o.events) || len(s.channels) != len(o.channels) {
		return false
	}
	for k, v := range s.machines {
		if o.machines[k] != v {
			return false
		}
	}
	for i := range s.events {
		if s.events[i] != o.events[i] {
			return false
		}
	}
	for i := range s.channels {
		if s.channels[i] != o.channels[i] {
			return false
		}
	}
	return true
}

// TestE2E_LeaveOnTerminate: SIGTERM on a server started with
// -leave-on-terminate removes it from Raft before it exits.
func TestE2E_LeaveOnTerminate(t *testing.T) {
	pc := newProcCluster(t, 3, []string{"-leave-on-terminate"})
	leader := pc.leader(30 * time.Second)
	f := pc.follower(leader)
	name := pc.procs[f].name
	pc.stop(f)
	var raft struct {
		Servers []struct {
			ID string `json:"id"`
		} `json:"servers"`
	}
	waitFor(t, 10*time.Second, name+" gone from the raft configuration", func() bool {
		raft.Servers = nil
		getJSON(t, pc.url(leader)+"/v1/cluster/raft", &raft)
		for _, s := range raft.Servers {
			if s.ID == name {
				return false
			}
		}
		return len(raft.Servers) == 2
	})
	if s := pc.members(leader)[name].GossipStatus; s != "left" {
		t.Fatalf("%s gossip status = %q, want left", name, s)
	}
	pc.register(leader, map[string]any{"name": "after-leave"})
}
