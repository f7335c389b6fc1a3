package httpx

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/webhook"
)

// DefaultTimeout bounds one attempt when no client is given; the same as a
// webhook's, for the same reason (one stuck receiver must not hold a
// dispatcher worker).
const DefaultTimeout = webhook.DefaultTimeout

// maxResponseBody is how much of an answer is read at most.
const maxResponseBody = 64 << 10

// redacted replaces secrets in error texts.
const redacted = "xxxxx"

// Client posts for one channel. It is safe for concurrent use.
type Client struct {
	name    string // channel type, prefixes every error ("slack: …")
	http    *http.Client
	secrets []string
	now     func() time.Time
}

// New returns a Client for a channel type. secrets are scrubbed from every
// error text (besides what RedactURL hides of each URL posted to); empty
// ones are ignored. client nil: one with DefaultTimeout. Redirects are never
// followed, whatever client says.
func New(name string, client *http.Client, now func() time.Time, secrets ...string) *Client {
	var c http.Client
	if client != nil {
		c = *client
	} else {
		c.Timeout = DefaultTimeout
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if now == nil {
		now = time.Now
	}
	var ss []string
	for _, s := range secrets {
		if len(s) >= 4 {
			ss = append(ss, s)
		}
	}
	sort.Slice(ss, func(i, j int) bool { return len(ss[i]) > len(ss[j]) })
	return &Client{name: name, http: &c, secrets: ss, now: now}
}

// Response is a 2xx answer: its status and the start of its body.
type Response struct {
	StatusCode int
	Body       []byte
}

// Post sends body to url with header and classifies the outcome. On a 2xx
// it returns the answer; otherwise retryable says whether another attempt
// may help.
func (c *Client) Post(ctx context.Context, url string, header http.Header, body []byte) (Response, bool, error) {
	shown := c.scrub(webhook.RedactURL(url), "")
	if err := ctx.Err(); err != nil {
		return Response{}, true, &Error{msg: c.name + ": not sent: " + err.Error(), err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Response{}, false, c.wrap(c.name+": build request for "+shown+": "+notify.UnwrapURLError(err).Error(), notify.UnwrapURLError(err), url)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return Response{}, true, c.wrap(c.name+": post "+shown+": "+cerr.Error(), cerr, url)
		}
		return Response{}, true, c.wrap(c.name+": post "+shown+": "+notify.UnwrapURLError(err).Error(), notify.UnwrapURLError(err), url)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return Response{StatusCode: resp.StatusCode, Body: snippet}, false, nil
	}
	se := &StatusError{
		Channel:    c.name,
		URL:        c.scrub(shown, url),
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Body:       c.scrub(notify.Excerpt(snippet), url),
	}
	if !webhook.Retryable(resp.StatusCode) {
		return Response{}, false, se
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d, ok := webhook.ParseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			return Response{}, true, &notify.RetryAfterError{After: d, Err: se}
		}
	}
	return Response{}, true, se
}

// StatusError is a receiver's non-2xx answer.
type StatusError struct {
	Channel    string
	URL        string // redacted
	StatusCode int
	Status     string
	Body       string // start of the answer, one line, scrubbed
}

func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString(e.Channel + ": " + e.URL + " answered ")
	if e.Status != "" {
		b.WriteString(e.Status)
	} else {
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		b.WriteString(" (redirects are not followed; update the channel url)")
	}
	if e.Body != "" {
		b.WriteString(": " + e.Body)
	}
	return b.String()
}

// Error carries a message already scrubbed of secrets while errors.Is/As
// still see the cause (context.DeadlineExceeded, net.Error).
type Error struct {
	msg string
	err error
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.err }

func (c *Client) wrap(msg string, cause error, url string) error {
	return &Error{msg: c.scrub(msg, url), err: cause}
}

// Scrub removes the client's secrets from s.
func (c *Client) Scrub(s string) string { return c.scrub(s, "") }

func (c *Client) scrub(s, url string) string {
	if url != "" {
		s = strings.ReplaceAll(s, url, webhook.RedactURL(url))
	}
	for _, p := range c.secrets {
		s = strings.ReplaceAll(s, p, redacted)
	}
	return s
}

// UserAgent is the User-Agent every channel sends: LunaSentri/VERSION
// ("dev" when the build has no version).
func UserAgent(version string) string {
	if version == "" {
		version = "dev"
	}
	return "LunaSentri/" + version
}
