// Package httpx is the one HTTP request path of the JSON/text channel types
// (alertmanager, slack, pagerduty, ntfy): it makes exactly one POST and
// classifies the answer the way notify/webhook does — 2xx delivered; 408,
// 429, 5xx, network errors and timeouts retryable (with
// *notify.RetryAfterError when the receiver sent Retry-After on 429/503);
// every other status, and 3xx (redirects are never followed), permanent.
//
// It must never retry or sleep (the dispatcher owns the one retry loop),
// read more than 64 KiB of an answer, or let a URL's credentials, a token or
// a routing key into an error text: every message is scrubbed of the
// caller's secrets before it leaves.
package httpx
