// Package webhook delivers LunaSentri notifications as signed HTTP POSTs
// (docs/api.md, "Webhook delivery").
//
// It owns:
//   - the exact wire format: the JSON body (with reason, message and
//     reminder at the top level, and the digest body of NotifyDigest), the
//     X-LunaSentri-* headers and the HMAC-SHA256 signature over
//     TIMESTAMP + "." + BODY (Sign, Verify);
//   - validation of a channel's URL and secret (ValidateURL, ValidateSecret),
//     which the HTTP API reuses for its 400 answers;
//   - classifying one attempt's outcome: 2xx delivered; 408, 429, 5xx,
//     network errors and timeouts retryable (with *notify.RetryAfterError when
//     the receiver sent Retry-After); every other status permanent;
//   - redacting URLs (RedactURL) so that errors never carry credentials.
//
// It must never:
//   - retry, back off or sleep: the dispatcher in package notify owns the one
//     retry loop; a Notifier makes exactly one attempt per Notify call;
//   - follow redirects (a POST turned into a GET would lose the body and
//     could leak the signature to another host), so 3xx is a permanent failure;
//   - put a URL's password, query values or the signing secret into an error
//     or a log line;
//   - read an unbounded response body.
package webhook
