package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/internal/testenv"
)

// requireTools skips the test when a binary of Debian's prometheus package
// is missing, and fails it when CI is set; `make test` installs them
// (`make tools`).
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			testenv.MissingCapability(t, "%s is not on PATH: install Debian's prometheus package (`make tools`) to run the observability tests", n)
		}
	}
}

// repoFile is a path inside the repository (tests run in e2e/).
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shipped file: %v", err)
	}
	return p
}

// promtool runs promtool with stdin and returns its combined output.
func promtool(stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "promtool", args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// eventually polls cond every `every` until it holds or timeout passes; the
// failure names the last thing cond reported.
func eventually(t *testing.T, timeout, every time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, detail)
		}
		time.Sleep(every)
	}
}

// promServer is a real Prometheus scraping a procCluster.
type promServer struct {
	url     string
	logPath string
}

// startPrometheus runs `prometheus` scraping targets every second as
// job="lunasentri" and evaluating rulesFile every second.
func startPrometheus(t *testing.T, targets []string, rulesFile string) *promServer {
	t.Helper()
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: lunasentri
    static_configs:
      - targets: [%s]
`, strconv.Quote(rulesFile), strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	p := &promServer{url: "http://" + addr, logPath: filepath.Join(dir, "prometheus.log")}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("prometheus",
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			if data, err := os.ReadFile(p.logPath); err == nil {
				t.Logf("---- prometheus log ----\n%s", data)
			}
		}
	})
	eventually(t, 30*time.Second, 100*time.Millisecond, "prometheus ready", func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("prometheus exited at startup; see its log")
		default:
		}
		code := api("GET", p.url+"/-/ready", "", nil, nil)
		return code == http.StatusOK, fmt.Sprintf("/-/ready answered %d", code)
	})
	return p
}

// promSample is one series of an instant query result.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// query runs an instant PromQL query.
func (p *promServer) query(expr string) ([]promSample, error) {
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	code := api("GET", p.url+"/api/v1/query?query="+url.QueryEscape(expr), "", nil, &out)
	if code != http.StatusOK || out.Status != "success" {
		return nil, fmt.Errorf("query %q: HTTP %d %s %s", expr, code, out.Status, out.Error)
	}
	samples := make([]promSample, 0, len(out.Data.Result))
	for _, r := range out.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %v: %w", expr, r.Value[1], err)
		}
		samples = append(samples, promSample{Metric: r.Metric, Value: v})
	}
	return samples, nil
}

// promRule is one rule as GET /api/v1/rules reports it.
type promRule struct {
	Name           string    `json:"name"`
	Type           string    `json:"type"`
	State          string    `json:"state"` // alerting rules: inactive, pending, firing
	Health         string    `json:"health"`
	LastError      string    `json:"lastError"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

// rules returns every loaded rule by name.
func (p *promServer) rules() (map[string]promRule, error) {
	var out struct {
		Status string `json:"status"`
		Data   struct {
			Groups []struct {
				Rules []promRule `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if code := api("GET", p.url+"/api/v1/rules", "", nil, &out); code != http.StatusOK || out.Status != "success" {
		return nil, fmt.Errorf("GET /api/v1/rules: HTTP %d %s", code, out.Status)
	}
	rules := map[string]promRule{}
	for _, g := range out.Data.Groups {
		for _, r := range g.Rules {
			rules[r.Name] = r
		}
	}
	return rules, nil
}

// scrape fetches a node's /metrics.
func scrape(base string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return body, err
}

// sample is one line of the text exposition format.
type sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// exposition is a parsed /metrics answer.
type exposition struct {
	Types   map[string]string // family name → counter, gauge, histogram, ...
	Samples []sample
}

// parseExposition reads the Prometheus text format (version 0.0.4).
func parseExposition(text []byte) (exposition, error) {
	exp := exposition{Types: map[string]string{}}
	for n, line := range strings.Split(string(text), "\n") {
		if line == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if name, typ, ok := strings.Cut(rest, " "); ok {
				exp.Types[name] = typ
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return exp, fmt.Errorf("line %d %q: %w", n+1, line, err)
		}
		exp.Samples = append(exp.Samples, s)
	}
	return exp, nil
}

func parseSample(line string) (sample, error) {
	s := sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no metric name")
	}
	s.Name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, ", ")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq <= 0 {
				return s, fmt.Errorf("bad label list")
			}
			name := line[:eq]
			line = line[eq+2:]
			var val strings.Builder
			for {
				if line == "" {
					return s, fmt.Errorf("unterminated label value")
				}
				c := line[0]
				line = line[1:]
				if c == '"' {
					break
				}
				if c == '\\' && line != "" {
					c, line = line[0], line[1:]
					if c == 'n' {
						c = '\n'
					}
				}
				val.WriteByte(c)
			}
			s.Labels[name] = val.String()
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	s.Value = v
	return s, err
}

// value is the single sample of name with exactly these labels.
func (e exposition) value(name string, labels map[string]string) (float64, bool) {
	for _, s := range e.Samples {
		if s.Name != name || len(s.Labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if s.Labels[k] != v {
				match = false
			}
		}
		if match {
			return s.Value, true
		}
	}
	return 0, false
}

// has reports whether a sample of name exists.
func (e exposition) has(name string) bool {
	for _, s := range e.Samples {
		if s.Name == name {
			return true
		}
	}
	return false
}

// scrapeParsed scrapes and parses one node.
func (pc *procCluster) scrapeParsed(i int) (exposition, []byte, error) {
	body, err := scrape(pc.url(i))
	if err != nil {
		return exposition{}, nil, err
	}
	exp, err := parseExposition(body)
	return exp, body, err
}

// readJSON decodes a shipped JSON file.
func readJSON(t *testing.T, path string, out any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
