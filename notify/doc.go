// Package notify owns how LunaSentri tells people about transitions: the
// Notifier contract every channel implements (one method that says whether
// a failure is worth retrying, see notification.go) and the Dispatcher, the
// one retry loop that drains the replicated outbox into channels on the
// leader.
//
// Channel implementations live in subpackages: notify/webhook (signed HTTP
// POSTs), notify/telegram, notify/alertmanager (a bridge into Prometheus
// Alertmanager), notify/slack (Slack, Mattermost, Rocket.Chat), notify/pagerduty
// (Events API v2), notify/ntfy and notify/email (SMTP). Each implements
// Notifier and DigestNotifier. notify/internal/httpx is the one request path
// and answer classification of the HTTP ones, notify/internal/msgtext the
// wording people read in chat, push and mail. They know nothing about
// retries, leadership or Raft; the dispatcher knows nothing about HTTP.
//
// What the dispatcher must never do:
//
//   - send without confirming leadership: it runs only on the leader (after
//     raft.Barrier(), stopped when leadership is lost) and calls
//     Leadership.VerifyLeader before every single attempt, so a partitioned
//     old leader sends nothing;
//   - record as delivered what was not delivered: a delivery is recorded
//     delivered only when Notifier.Notify returned nil.
//
// Delivery is at least once, deduplicated by event ID: outcomes are
// committed through Raft in small batches after the send, so if the leader
// dies (or cannot commit) between a send and its record, the next leader
// sends again with the same event ID and receivers drop the duplicate
// (webhook X-LunaSentri-Delivery). The package does not import raft or the
// fsm package: it defines the small Outbox, Recorder, Leadership and
// Channels interfaces it consumes and the server assembly adapts the FSM
// and the cluster to them.
package notify
