package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lunasentri/lunasentri/internal/rawhttp"
)

// heartbeatBody is what `lunasentri agent` sends (agent.go): the same JSON
// shape for every request to both the cluster and the bare handler.
func heartbeatBody(name string) []byte {
	return fmt.Appendf(nil, `{"hostname":%q,"agent_version":"lunasentri-bench"}`, name+".bench.example")
}

// beatRequest is one machine's heartbeat as the load generator sends it.
type beatRequest struct {
	key  string
	body []byte
	raw  []byte // the whole HTTP/1.1 request, for the raw client
}

func newBeatRequest(name, key string) beatRequest {
	body := heartbeatBody(name)
	var b bytes.Buffer
	b.WriteString("POST /v1/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\n")
	b.WriteString("Authorization: Bearer " + key + "\r\n")
	b.WriteString("Content-Type: application/json\r\nUser-Agent: lunasentri-bench\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.Write(body)
	return beatRequest{key: key, body: body, raw: b.Bytes()}
}

// poster sends one heartbeat on one keep-alive connection and returns the
// status code.
type poster interface {
	post(ctx context.Context, r *beatRequest) (int, error)
	close()
}

// rawPoster is a minimal HTTP/1.1 client: one keep-alive connection, one
// request in flight, the request bytes prebuilt. It costs the generator far
// less CPU than net/http's client, which leaves more of the machine to the
// servers being measured (see BENCHMARKS.md: a heavier generator flatters
// the ratio).
type rawPoster struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
}

func (p *rawPoster) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

func (p *rawPoster) post(ctx context.Context, r *beatRequest) (int, error) {
	if p.conn == nil {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return 0, err
		}
		p.conn = c
		if p.br == nil {
			p.br = bufio.NewReaderSize(c, 8<<10)
		} else {
			p.br.Reset(c)
		}
	}
	_ = p.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := p.conn.Write(r.raw); err != nil {
		p.close()
		return 0, err
	}
	code, err := p.readResponse()
	if err != nil {
		p.close()
		return 0, err
	}
	return code, nil
}

func (p *rawPoster) readResponse() (int, error) {
	code, keepAlive, err := rawhttp.ReadResponse(p.br)
	if err != nil {
		return 0, err
	}
	if !keepAlive {
		p.close()
	}
	return code, nil
}

// netPoster uses net/http's client (a shared Transport, one connection per
// worker in practice since each worker has one request in flight).
type netPoster struct {
	url    string
	client *http.Client
}

func (p *netPoster) close() {}

func (p *netPoster) post(ctx context.Context, r *beatRequest) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(r.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+r.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lunasentri-bench")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// loadSpec is one run of the load generator.
type loadSpec struct {
	Label   string
	Targets []string // host:port; worker w talks to Targets[w % len]
	Reqs    []beatRequest
	Workers int
	Client  string
	Warmup  time.Duration
	Window  time.Duration
	// Rate, if > 0, paces the generator to about this many requests per
	// second in total; 0 sends as fast as the servers answer.
	Rate float64
	// OnWindow, if set, runs at the start (true) and end (false) of the
	// measurement window, on the goroutine that switches phases.
	OnWindow func(start bool)
}

// loadResult is what the generator saw during the window.
type loadResult struct {
	Label          string           `json:"label"`
	Client         string           `json:"client"`
	Workers        int              `json:"workers"`
	Targets        int              `json:"targets"`
	RateLimit      float64          `json:"rate_limit,omitempty"`
	WindowSec      float64          `json:"window_s"`
	Accepted       int64            `json:"accepted_202"`
	AcceptedPerSec float64          `json:"accepted_per_s"`
	Other          map[string]int64 `json:"other_outcomes,omitempty"`
	LatencyP50Ms   float64          `json:"latency_p50_ms"`
	LatencyP99Ms   float64          `json:"latency_p99_ms"`
	LatencyMaxMs   float64          `json:"latency_max_ms"`
	GeneratorCPU   float64          `json:"generator_cpu_s"` // harness process CPU during the window (generator + anything else in it)
}

type workerStats struct {
	accepted int64
	other    map[string]int64
	lat      []uint32 // microseconds, window only
	_        [64]byte
}

// runLoad drives the targets for Warmup+Window and reports the window.
func runLoad(ctx context.Context, spec loadSpec) (loadResult, error) {
	if len(spec.Reqs) == 0 || len(spec.Targets) == 0 {
		return loadResult{}, errors.New("load: no requests or targets")
	}
	const (
		phaseWarmup = iota
		phaseWindow
		phaseStop
	)
	var phase atomic.Int32
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var transport *http.Transport
	if spec.Client == "nethttp" {
		transport = &http.Transport{
			MaxIdleConns: spec.Workers * 2, MaxIdleConnsPerHost: spec.Workers,
			DisableCompression: true, IdleConnTimeout: time.Minute,
		}
		defer transport.CloseIdleConnections()
	}
	stats := make([]*workerStats, spec.Workers)
	var wg sync.WaitGroup
	for w := range spec.Workers {
		st := &workerStats{other: map[string]int64{}, lat: make([]uint32, 0, 1<<14)}
		stats[w] = st
		addr := spec.Targets[w%len(spec.Targets)]
		var p poster
		if spec.Client == "nethttp" {
			p = &netPoster{url: "http://" + addr + "/v1/heartbeat", client: &http.Client{Transport: transport, Timeout: 30 * time.Second}}
		} else {
			p = &rawPoster{addr: addr}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.close()
			n := len(spec.Reqs)
			i := w % n
			var interval time.Duration
			var next time.Time
			if spec.Rate > 0 {
				interval = time.Duration(float64(spec.Workers) / spec.Rate * float64(time.Second))
				next = time.Now().Add(time.Duration(w) * interval / time.Duration(spec.Workers))
			}
			for {
				ph := phase.Load()
				if ph == phaseStop {
					return
				}
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
					next = next.Add(interval)
				}
				r := &spec.Reqs[i]
				i += spec.Workers
				if i >= n {
					i = (i % n)
				}
				t0 := time.Now()
				code, err := p.post(ctx, r)
				el := time.Since(t0)
				if phase.Load() != phaseWindow {
					if err != nil {
						pause(ctx, 10*time.Millisecond)
					}
					continue
				}
				switch {
				case err != nil:
					st.other["error: "+shortErr(err)]++
					pause(ctx, 10*time.Millisecond)
				case code == http.StatusAccepted:
					st.accepted++
					st.lat = append(st.lat, uint32(min(el.Microseconds(), 1<<31)))
				default:
					st.other[strconv.Itoa(code)]++
				}
			}
		}()
	}

	sleepCtx(ctx, spec.Warmup)
	if spec.OnWindow != nil {
		spec.OnWindow(true)
	}
	cpu0 := processCPU()
	t0 := time.Now()
	phase.Store(phaseWindow)
	sleepCtx(ctx, spec.Window)
	phase.Store(phaseStop)
	window := time.Since(t0)
	cpu1 := processCPU()
	if spec.OnWindow != nil {
		spec.OnWindow(false)
	}
	cancel()
	wg.Wait()
	if err := ctx.Err(); err != nil && window < spec.Window {
		return loadResult{}, err
	}

	res := loadResult{
		Label: spec.Label, Client: spec.Client, Workers: spec.Workers, Targets: len(spec.Targets),
		RateLimit: spec.Rate, WindowSec: window.Seconds(), Other: map[string]int64{},
		GeneratorCPU: (cpu1 - cpu0).Seconds(),
	}
	var lat []uint32
	for _, st := range stats {
		res.Accepted += st.accepted
		for k, v := range st.other {
			res.Other[k] += v
		}
		lat = append(lat, st.lat...)
	}
	res.AcceptedPerSec = float64(res.Accepted) / window.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.LatencyP50Ms = float64(lat[len(lat)*50/100]) / 1000
		res.LatencyP99Ms = float64(lat[min(len(lat)*99/100, len(lat)-1)]) / 1000
		res.LatencyMaxMs = float64(lat[len(lat)-1]) / 1000
	}
	if len(res.Other) == 0 {
		res.Other = nil
	}
	return res, nil
}

// beatAll sends one heartbeat for every request, spread over the targets
// with the given concurrency, and returns how many were accepted.
func beatAll(ctx context.Context, targets []string, reqs []beatRequest, workers int) (int64, map[string]int64) {
	var next atomic.Int64
	var accepted atomic.Int64
	var mu sync.Mutex
	other := map[string]int64{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &rawPoster{addr: targets[w%len(targets)]}
			defer p.close()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) || ctx.Err() != nil {
					return
				}
				var code int
				var err error
				for attempt := 0; attempt < 3; attempt++ {
					code, err = p.post(ctx, &reqs[i])
					if err == nil {
						break
					}
				}
				if err == nil && code == http.StatusAccepted {
					accepted.Add(1)
					continue
				}
				mu.Lock()
				if err != nil {
					other["error: "+shortErr(err)]++
				} else {
					other[strconv.Itoa(code)]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return accepted.Load(), other
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// bareServer is the ceiling: a separate process whose net/http handler
// reads the body and answers 202, with the same http.Server settings as a
// LunaSentri node.
type bareServer struct {
	addr string
	cmd  *exec.Cmd
	in   io.WriteCloser
	done chan struct{}
	once sync.Once
}

func startBare(env []string) (*bareServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), childEnv+"=bare"), env...)
	cmd.Stderr = os.Stderr
	setChildAttrs(cmd)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &bareServer{cmd: cmd, in: in, done: make(chan struct{})}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("bare server did not start: %w", err)
	}
	b.addr = strings.TrimSpace(line)
	go func() {
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(b.done)
	}()
	return b, nil
}

func (b *bareServer) stop() {
	b.once.Do(func() {
		b.in.Close() // the child exits when its stdin closes
		select {
		case <-b.done:
		case <-time.After(5 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
}

// runBareChild is the bare handler's process.
func runBareChild() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusAccepted)
		}),
		// The same settings as a LunaSentri node's http.Server (node.go).
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	_ = srv.Serve(ln)
}

// gomaxprocsOf is what a child gets with env (GOMAXPROCS=n or Go's default).
func gomaxprocsOf(n int) int {
	if n > 0 {
		return n
	}
	return runtime.NumCPU()
}
