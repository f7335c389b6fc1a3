package webhook_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/webhook"
)

func TestNotify_MachineCarriesAgentFacts(t *testing.T) {
	srv, got := receiver(t, nil)
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	ev := offlineEvent()
	ev.Machine.Agent = &notify.Agent{Hostname: "prod-01.example", AgentVersion: "1.4.0",
		Info: json.RawMessage(`{"os":"linux","kernel":"6.1.0"}`), ReportedAt: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
	if _, err := n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r := <-got
	var body struct {
		Machine struct {
			Agent map[string]any `json:"agent"`
		} `json:"machine"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	a := body.Machine.Agent
	if a["hostname"] != "prod-01.example" || a["agent_version"] != "1.4.0" || a["reported_at"] != "2026-11-27T08:00:00Z" {
		t.Fatalf("agent = %v", a)
	}
	if info, _ := a["info"].(map[string]any); info["kernel"] != "6.1.0" {
		t.Fatalf("agent.info = %v", a["info"])
	}
}
