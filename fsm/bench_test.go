package fsm_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// benchFixture registers n machines named m0000000… with two labels each,
// two channels, brings them all online and takes 1% through an
// offline/online cycle so the history and outbox are not empty.
func benchFixture(tb testing.TB, n int) *fsm.FSM {
	tb.Helper()
	f := fsm.New(fsm.Options{})
	var idx uint64
	apply := func(typ fsm.CommandType, body any) *fsm.ApplyResult {
		idx++
		res := f.ApplyBytes(idx, fsm.MustEncode(typ, body))
		if res.Err != nil {
			tb.Fatalf("fixture: %v", res.Err)
		}
		return res
	}
	for i := range n {
		name := fmt.Sprintf("m%07d", i)
		apply(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: newMachine(name,
			map[string]string{"env": []string{"prod", "dev"}[i%2], "rack": fmt.Sprintf("r%d", i%40)}, 0)})
	}
	apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "hook", Type: fsm.ChannelWebhook, URL: "https://h.example/x", Secret: "s"}})
	apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "tg", Type: fsm.ChannelTelegram, ChatID: "1", Match: map[string]string{"env": "prod"}}})
	batch := fsm.HeartbeatBatch{At: t0, DefaultThreshold: defThreshold}
	for i := range n {
		batch.Beats = append(batch.Beats, fsm.Beat{ID: machineID(fmt.Sprintf("m%07d", i)), SeenAt: t0.UnixNano()})
	}
	apply(fsm.CmdHeartbeatBatch, batch)
	off := fsm.MarkOffline{At: t0.Add(time.Hour)}
	back := fsm.HeartbeatBatch{At: t0.Add(2 * time.Hour), DefaultThreshold: defThreshold}
	for i := 0; i < n; i += 100 {
		id := machineID(fmt.Sprintf("m%07d", i))
		off.Machines = append(off.Machines, fsm.OfflineMark{ID: id, LastSeen: t0})
		back.Beats = append(back.Beats, fsm.Beat{ID: id, SeenAt: back.At.UnixNano()})
	}
	apply(fsm.CmdMarkOffline, off)
	apply(fsm.CmdHeartbeatBatch, back)
	return f
}

// machineStream is a snapshot of n unknown machines, generated as it is
// read: the fastest honest way to load a million machines (Restore).
type machineStream struct {
	n, i int
	buf  []byte
}

func (s *machineStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		switch {
		case s.i > s.n:
			return 0, io.EOF
		case s.i == 0:
			s.buf = fmt.Appendf(s.buf[:0], `{"format":"lunasentri-fsm","version":1,"machines":%d}`+"\n", s.n)
		default:
			name := fmt.Sprintf("m%07d", s.i-1)
			s.buf = fmt.Appendf(s.buf[:0], `{"id":%q,"name":%q,"status":"unknown","created_at":"2030-01-02T03:04:05Z","key_hash":[`, machineID(name), name)
			for j, c := range fsm.HashKey(keyOf(name)) {
				if j > 0 {
					s.buf = append(s.buf, ',')
				}
				s.buf = strconv.AppendUint(s.buf, uint64(c), 10)
			}
			s.buf = append(s.buf, "]}\n"...)
		}
		s.i++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// BenchmarkAuthenticate: every heartbeat request authenticates; 1M
// machines. The fixture lives only while the sub-benchmark runs, so its heap
// does not slow the benchmarks after it.
func BenchmarkAuthenticate(b *testing.B) {
	const n = 1_000_000
	f := fsm.New(fsm.Options{})
	if err := f.Restore(io.NopCloser(&machineStream{n: n})); err != nil {
		b.Fatal(err)
	}
	if got := f.MachineCount(); got != n {
		b.Fatalf("fixture has %d machines", got)
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = keyOf(fmt.Sprintf("m%07d", i))
	}
	runtime.GC()
	b.Run("machines=1M", func(b *testing.B) {
		var seed atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(1) * 104729)
			for pb.Next() {
				if _, ok := f.Authenticate(keys[i%n]); !ok {
					b.Error("valid key refused")
					return
				}
				i += 7919
			}
		})
	})
}

// BenchmarkApplyHeartbeatBatch: one flush of 1000 beats into 100k online
// machines, decoding included (that is what a follower does too).
func BenchmarkApplyHeartbeatBatch(b *testing.B) {
	const machines, batchSize = 100_000, 1000
	f := benchFixture(b, machines)
	runtime.GC()
	ids := make([]string, machines)
	for i := range ids {
		ids[i] = machineID(fmt.Sprintf("m%07d", i))
	}
	idx := uint64(1 << 32)
	at := t0.Add(3 * time.Hour)
	beats := make([]fsm.Beat, batchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		at = at.Add(time.Millisecond)
		for j := range beats {
			beats[j] = fsm.Beat{ID: ids[(i*batchSize+j)%machines], SeenAt: at.Add(-time.Duration(j) * time.Microsecond).UnixNano()}
		}
		data := fsm.MustEncode(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{At: at, DefaultThreshold: defThreshold, Beats: beats})
		idx++
		b.StartTimer()
		if res := f.ApplyBytes(idx, data); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}

// snapFixture is benchFixture at 100k machines and its persisted snapshot.
func snapFixture(b *testing.B) (*fsm.FSM, []byte) {
	f := benchFixture(b, 100_000)
	data := persist(b, f)
	runtime.GC()
	return f, data
}

// BenchmarkSnapshotPersist: Snapshot (on the applying goroutine, so it
// delays Apply: the "take" sub-benchmark, which copies no machine since
// issue 14) plus Persist (shard by shard, off the applying goroutine).
func BenchmarkSnapshotPersist(b *testing.B) {
	f, data := snapFixture(b)
	b.Run("machines=100k", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			snap, err := f.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			if err := snap.Persist(&discardSink{}); err != nil {
				b.Fatal(err)
			}
			snap.Release()
		}
	})
	b.Run("machines=100k/take", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			snap, err := f.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			snap.Release()
		}
	})
}

// BenchmarkRestore: a follower installing a 100k-machine snapshot.
func BenchmarkRestore(b *testing.B) {
	_, data := snapFixture(b)
	b.Run("machines=100k", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f := fsm.New(fsm.Options{})
			if err := f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
				b.Fatal(err)
			}
		}
	})
}
