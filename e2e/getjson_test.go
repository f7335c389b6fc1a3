package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// getJSON GETs url with the admin token and decodes the answer into out;
// anything but 200 (or a body that is not JSON) fails the test. Helpers
// that return decoded state use it: with api, an HTTP error decodes to
// nothing, and a check such as "not a member" or "wiped" passes on it.
func getJSON(t testing.TB, url string, out any) {
	t.Helper()
	if code, body := getJSONStatus(t, url, out); code != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200: %s", url, code, body)
	}
}

// getJSONStatus is getJSON for a caller that accepts other answers (a 404
// that means "no such machine"): it decodes only a 200 and fails the test
// only when the node cannot be reached.
func getJSONStatus(t testing.TB, url string, out any) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(bytes.NewReader(data)).Decode(out); err != nil {
			t.Fatalf("GET %s: decode %q: %v", url, data, err)
		}
	}
	return resp.StatusCode, string(bytes.TrimSpace(data))
}

// mustEvents is pc.events that fails the test instead of answering false.
func (pc *procCluster) mustEvents(t testing.TB, i int) []event {
	t.Helper()
	var out struct {
		Events []event `json:"events"`
	}
	getJSON(t, pc.url(i)+"/v1/events?limit=10000", &out)
	return out.Events
}

// mustMachine is pc.machine that fails the test on any answer but 200 and
// 404 (found is false then).
func (pc *procCluster) mustMachine(t testing.TB, i int, name string) (m machine, found bool) {
	t.Helper()
	var out struct {
		Machine machine `json:"machine"`
	}
	switch code, body := getJSONStatus(t, pc.url(i)+"/v1/machines/"+name, &out); code {
	case http.StatusOK:
		return out.Machine, true
	case http.StatusNotFound:
		return machine{}, false
	default:
		t.Fatalf("GET machine %s on node%d = %d: %s", name, i+1, code, body)
	}
	return
}
