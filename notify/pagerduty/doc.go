// Package pagerduty opens and resolves PagerDuty incidents through the
// Events API v2 (docs/api.md "More channel types").
//
// It owns the event shape: "trigger" on offline (and on a reminder, which
// PagerDuty folds into the open alert), "resolve" on online, both with the
// same dedup_key derived from the machine's id, so PagerDuty's own
// deduplication follows our transitions; a flapping notice is a "warning"
// trigger on that same key (resolved by the machine's next recovery); the
// severity (Options, default "critical") and custom_details with everything
// the webhook body carries. A digest is sent as its events in order, one
// request each, because Events v2 has no batch endpoint; PagerDuty drops
// repeats of a (dedup_key, action), so a digest retried after a partial
// send does no harm.
//
// It must never retry or sleep, nor put the routing key into an error or a
// log line.
package pagerduty
