package notify

import (
	"encoding/json"
	"time"
)

// Agent is what a machine's agent last reported (issue 13, docs/api.md
// "Machines"): channels may show it, webhooks send it as the machine's
// "agent" object.
type Agent struct {
	Hostname     string
	AgentVersion string
	Info         json.RawMessage // a JSON object, or nil
	ReportedAt   time.Time
}
