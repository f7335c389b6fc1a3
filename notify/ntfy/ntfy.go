package ntfy

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/internal/httpx"
	"github.com/lunasentri/lunasentri/notify/internal/msgtext"
)

// Priorities (ntfy: 1 min … 5 max).
const (
	PriorityOffline = 4
	PriorityOnline  = 3
	PriorityTest    = 2
)

// maxBody stays well below ntfy's 4 KiB message limit, above which ntfy
// turns the message into an attachment.
const maxBody = 3500

// Sentinel errors.
var (
	ErrInvalidConfig    = errors.New("invalid ntfy channel")
	ErrUnknownEventType = errors.New("unknown event type")
	ErrEmptyDigest      = errors.New("digest has no events")
)

// topicRE is ntfy's own topic rule.
var topicRE = regexp.MustCompile(`^[-_A-Za-z0-9]{1,64}$`)

// Options configures a Notifier for one topic.
type Options struct {
	URL     string // server base, e.g. https://ntfy.sh
	Topic   string
	Token   string // optional access token (Authorization: Bearer)
	Client  *http.Client
	Version string
	Now     func() time.Time
}

// Notifier pushes to one topic. Safe for concurrent use.
type Notifier struct {
	endpoint, token, userAgent string
	now                        func() time.Time
	http                       *httpx.Client
}

var (
	_ notify.Notifier       = (*Notifier)(nil)
	_ notify.DigestNotifier = (*Notifier)(nil)
)

// Validate checks a channel's settings; errors are fit for a 400 and never
// repeat the token.
func Validate(url, topic, token string) error {
	if err := httpx.ValidateURL("url", url); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if topic == "" {
		return fmt.Errorf("%w: topic is required", ErrInvalidConfig)
	}
	if !topicRE.MatchString(topic) {
		return fmt.Errorf("%w: topic must be 1 to 64 letters, digits, - or _", ErrInvalidConfig)
	}
	if token != "" && (len(token) > 256 || strings.ContainsAny(token, " \t\r\n")) {
		return fmt.Errorf("%w: token must be at most 256 characters without spaces", ErrInvalidConfig)
	}
	return nil
}

// New validates opts and returns a Notifier.
func New(opts Options) (*Notifier, error) {
	if err := Validate(opts.URL, opts.Topic, opts.Token); err != nil {
		return nil, err
	}
	n := &Notifier{endpoint: strings.TrimRight(opts.URL, "/") + "/" + opts.Topic, token: opts.Token, now: opts.Now}
	if n.now == nil {
		n.now = time.Now
	}
	n.userAgent = httpx.UserAgent(opts.Version)
	n.http = httpx.New("ntfy", opts.Client, n.now, append(httpx.URLSecrets(opts.URL), opts.Token)...)
	return n, nil
}

// Push is one ntfy message.
type Push struct {
	Title    string
	Body     string
	Priority int
	Tags     []string
}

// FormatEvent builds the push for one event.
func FormatEvent(ev notify.Event) (Push, error) {
	p := Push{Title: msgtext.Title(ev)}
	switch ev.Type {
	case notify.EventOffline:
		p.Priority, p.Tags = PriorityOffline, []string{"red_circle", "lunasentri"}
	case notify.EventOnline:
		p.Priority, p.Tags = PriorityOnline, []string{"green_circle", "lunasentri"}
	case notify.EventFlapping:
		p.Priority, p.Tags = PriorityOnline, []string{"warning", "lunasentri"}
	case notify.EventTest:
		p.Priority, p.Tags = PriorityTest, []string{"test_tube", "lunasentri"}
	default:
		return p, fmt.Errorf("%w %q", ErrUnknownEventType, ev.Type)
	}
	var b strings.Builder
	for _, f := range msgtext.Fields(ev) {
		b.WriteString(f.Name + ": " + f.Value + "\n")
	}
	p.Body = msgtext.Truncate(strings.TrimRight(b.String(), "\n"), maxBody)
	return p, nil
}

// FormatDigest builds the one push of a digest.
func FormatDigest(d notify.Digest) Push {
	off, _ := d.Counts()
	p := Push{Title: msgtext.DigestTitle(d), Priority: PriorityOnline, Tags: []string{"green_circle", "lunasentri"}}
	if off > 0 {
		p.Priority, p.Tags = PriorityOffline, []string{"red_circle", "lunasentri"}
	}
	var b strings.Builder
	if lines, more := msgtext.DigestGroups(d, 10); len(lines) > 0 {
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		if more > 0 {
			fmt.Fprintf(&b, "… and %d more groups\n", more)
		}
		b.WriteString("\n")
	}
	entries, more := msgtext.DigestNamesOf(d, msgtext.DigestNames)
	for _, e := range entries {
		b.WriteString(msgtext.Verb(e.Type) + ": " + e.Text + "\n")
	}
	if more > 0 {
		fmt.Fprintf(&b, "… and %d more\n", more)
	}
	p.Body = msgtext.Truncate(strings.TrimRight(b.String(), "\n"), maxBody)
	return p
}

// Notify pushes ev.
func (n *Notifier) Notify(ctx context.Context, ev notify.Event) (bool, error) {
	p, err := FormatEvent(ev)
	if err != nil {
		return false, err
	}
	return n.push(ctx, p)
}

// NotifyDigest pushes a digest as one message.
func (n *Notifier) NotifyDigest(ctx context.Context, d notify.Digest) (bool, error) {
	if len(d.Events) == 0 {
		return false, ErrEmptyDigest
	}
	return n.push(ctx, FormatDigest(d))
}

// headerText makes s a safe header value: one line, and RFC 2047 encoded
// when it is not plain ASCII.
func headerText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return mime.BEncoding.Encode("utf-8", s)
		}
	}
	return s
}

func (n *Notifier) push(ctx context.Context, p Push) (bool, error) {
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("User-Agent", n.userAgent)
	h.Set("Title", headerText(msgtext.Truncate(p.Title, 250)))
	h.Set("Priority", strconv.Itoa(p.Priority))
	h.Set("Tags", strings.Join(p.Tags, ","))
	if n.token != "" {
		h.Set("Authorization", "Bearer "+n.token)
	}
	_, retryable, err := n.http.Post(ctx, n.endpoint, h, []byte(p.Body))
	return retryable, err
}
