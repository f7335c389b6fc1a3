// Package alertmanager bridges LunaSentri into a Prometheus Alertmanager
// (docs/api.md "More channel types"): a machine going offline becomes a firing
// alert posted to {url}/api/v2/alerts, and its recovery resolves that alert,
// so heartbeat alerts enter the routing, inhibition, silencing and receivers
// an SRE team already runs.
//
// It owns:
//   - the alert shape: labels alertname="MachineOffline", machine=NAME, the
//     machine's labels (names sanitised to Prometheus label names) and the
//     channel's extra labels; annotations hostname, last_seen, reason,
//     message; startsAt, endsAt, generatorURL;
//   - the validity of a firing alert: Alertmanager resolves an alert whose
//     endsAt passed, so a firing alert carries endsAt = now + Validity and
//     the lead's reminder machinery re-posts it (Event.Reminder > 0) every
//     policy repeat_interval while the machine stays offline, as Prometheus
//     re-sends firing alerts;
//   - fan-out to every URL of an HA Alertmanager, as Prometheus does: the
//     members gossip silences and notification logs, not alerts;
//   - validation of the channel settings (Validate), which the HTTP API
//     reuses for its 400 answers.
//
// It must never:
//   - retry or sleep: one Notify is one POST to each URL; the dispatcher owns
//     the retry loop;
//   - put the basic-auth password or URL credentials into an error or log;
//   - change the label set between an alert's firing and its resolve (the
//     fingerprint is the labels; a different set would leave the first alert
//     firing until it expires).
package alertmanager
