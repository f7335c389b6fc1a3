package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/notify"
)

const (
	// DefaultTimeout bounds one attempt when Options.Client is nil. A
	// receiver slower than this is treated like a network error (retryable),
	// so one stuck endpoint cannot hold a dispatcher worker for long.
	DefaultTimeout = 10 * time.Second
	// MaxRetryAfter caps a receiver's Retry-After, so a misconfigured
	// receiver cannot park a delivery for days.
	MaxRetryAfter = 10 * time.Minute
	// maxResponseBody is how much of a response we read at most; the rest is
	// dropped with the connection. A receiver returning megabytes must not
	// cost us memory.
	maxResponseBody = 64 << 10
)

// Options configures a Notifier for one webhook channel.
type Options struct {
	URL    string // http(s) URL of the receiver; see ValidateURL
	Secret string // HMAC key, MinSecretLength..MaxSecretLength characters
	// Client sends the requests. nil: a client with DefaultTimeout per
	// attempt. Redirects are never followed, whatever the client says.
	Client *http.Client
	// Version goes into the User-Agent: LunaSentri-Webhook/VERSION.
	// Empty: "dev".
	Version string
	// Now stamps X-LunaSentri-Timestamp. nil: time.Now.
	Now func() time.Time
}

// Notifier delivers events to one webhook. It is safe for concurrent use.
type Notifier struct {
	url       string
	redacted  string   // url as it may appear in errors
	secrets   []string // substrings scrubbed from every error text
	secret    string
	client    *http.Client
	userAgent string
	now       func() time.Time
}

var _ notify.Notifier = (*Notifier)(nil)

// New validates opts and returns a Notifier.
func New(opts Options) (*Notifier, error) {
	if err := ValidateURL(opts.URL); err != nil {
		return nil, err
	}
	if err := ValidateSecret(opts.Secret); err != nil {
		return nil, err
	}
	var client http.Client
	if opts.Client != nil {
		// A shallow copy, so we can switch redirects off without changing
		// the caller's client. http.Client holds no locks; copying is safe.
		client = *opts.Client
	} else {
		client.Timeout = DefaultTimeout
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Notifier{
		url:       opts.URL,
		redacted:  RedactURL(opts.URL),
		secrets:   secretParts(opts.URL),
		secret:    opts.Secret,
		client:    &client,
		userAgent: "LunaSentri-Webhook/" + version,
		now:       now,
	}, nil
}

// Notify makes one delivery attempt of ev and classifies the outcome (see
// the package doc). It never retries; the dispatcher does.
func (n *Notifier) Notify(ctx context.Context, ev notify.Event) (bool, error) {
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("webhook: not sent: %w", err)
	}
	now := n.now()
	body, p, err := encode(ev, now)
	if err != nil {
		return false, err
	}
	ts := now.Unix()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return false, n.wrap("webhook: build request for "+n.redacted+": "+reason(err), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.userAgent)
	req.Header.Set(HeaderEvent, p.Event)
	req.Header.Set(HeaderDelivery, p.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(n.secret, ts, body))
	setStandardHeaders(req.Header, n.secret, p.ID, ts, body)

	resp, err := n.client.Do(req)
	if err != nil {
		// Network errors, timeouts and cancellation are all worth another
		// try: the receiver may be fine by then, or a new leader will send.
		if cerr := ctx.Err(); cerr != nil {
			return true, n.wrap("webhook: post "+n.redacted+": "+cerr.Error(), cerr)
		}
		return true, n.wrap("webhook: post "+n.redacted+": "+reason(err), notify.UnwrapURLError(err))
	}
	defer resp.Body.Close()
	// Read a bounded prefix only. Closing without draining the rest costs the
	// keep-alive connection, which is the right trade for a huge body.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	se := &StatusError{
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Body:       n.scrub(notify.Excerpt(snippet)),
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if loc := resp.Header.Get("Location"); loc != "" {
			se.Location = RedactURL(loc)
		}
	}
	if !Retryable(resp.StatusCode) {
		return false, se
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
			return true, &notify.RetryAfterError{After: d, Err: se}
		}
	}
	return true, se
}

// Retryable reports whether an HTTP status is worth another attempt: 408,
// 429 and 5xx (docs/api.md). 2xx is success and never reaches this question.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout ||
		status == http.StatusTooManyRequests ||
		status >= 500 && status <= 599
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). The result is capped at MaxRetryAfter; ok is false for
// an absent, malformed or zero value, since "retry now" needs no special
// wait.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0, false
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	if d <= 0 {
		return 0, false
	}
	return min(d, MaxRetryAfter), true
}

// StatusError is a receiver's non-2xx answer.
type StatusError struct {
	StatusCode int
	Status     string // e.g. "503 Service Unavailable"
	// Body is the start of the response body (at most 256 bytes, one line,
	// URL secrets scrubbed), because receivers often explain themselves.
	Body string
	// Location is the redacted redirect target of a 3xx answer.
	Location string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString("webhook: receiver answered ")
	if e.Status != "" {
		b.WriteString(e.Status)
	} else {
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		b.WriteString(" (redirects are not followed; update the channel url")
		if e.Location != "" {
			b.WriteString(", it points to " + e.Location)
		}
		b.WriteString(")")
	}
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	return b.String()
}

// deliveryError carries a message already scrubbed of secrets while still
// letting errors.Is/As see the cause (context.DeadlineExceeded, net.Error).
type deliveryError struct {
	msg string
	err error
}

func (e *deliveryError) Error() string { return e.msg }
func (e *deliveryError) Unwrap() error { return e.err }

func (n *Notifier) wrap(msg string, cause error) error {
	return &deliveryError{msg: n.scrub(msg), err: cause}
}

// scrub removes any remaining secret part of the URL from s. Our own texts
// only use the redacted URL; this is a second line of defence against
// messages from below (net/http, a receiver echoing its URL).
func (n *Notifier) scrub(s string) string {
	for _, p := range n.secrets {
		if p == n.url {
			s = strings.ReplaceAll(s, p, n.redacted)
		} else {
			s = strings.ReplaceAll(s, p, redactedMark)
		}
	}
	return s
}

func reason(err error) string { return notify.UnwrapURLError(err).Error() }
