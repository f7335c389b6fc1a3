package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/internal/httpx"
	"github.com/lunasentri/lunasentri/notify/internal/msgtext"
)

// Colours per status.
const (
	ColorOffline  = "#d62728"
	ColorOnline   = "#2ca02c"
	ColorFlapping = "#ff7f0e"
	ColorTest     = "#1f77b4"
)

// digestGroups is how many group_by rows a digest shows.
const digestGroups = 15

// Sentinel errors.
var (
	ErrInvalidConfig    = errors.New("invalid slack channel")
	ErrUnknownEventType = errors.New("unknown event type")
	ErrEmptyDigest      = errors.New("digest has no events")
)

// Options configures a Notifier for one chat webhook.
type Options struct {
	URL     string // the incoming webhook URL
	Client  *http.Client
	Version string
	Now     func() time.Time
}

// Notifier posts to one chat webhook. Safe for concurrent use.
type Notifier struct {
	url       string
	userAgent string
	now       func() time.Time
	http      *httpx.Client
}

var (
	_ notify.Notifier       = (*Notifier)(nil)
	_ notify.DigestNotifier = (*Notifier)(nil)
)

// Validate checks the channel's url; its error is fit for a 400.
func Validate(rawURL string) error {
	if err := httpx.ValidateURL("url", rawURL); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return nil
}

// New validates opts and returns a Notifier.
func New(opts Options) (*Notifier, error) {
	if err := Validate(opts.URL); err != nil {
		return nil, err
	}
	n := &Notifier{url: opts.URL, now: opts.Now}
	if n.now == nil {
		n.now = time.Now
	}
	n.userAgent = httpx.UserAgent(opts.Version)
	secrets := httpx.URLSecrets(opts.URL)
	if u, err := url.Parse(opts.URL); err == nil {
		// The whole path is the webhook's secret (/services/T…/B…/X…,
		// /hooks/…).
		secrets = append(secrets, strings.TrimPrefix(u.EscapedPath(), "/"), strings.TrimPrefix(u.Path, "/"))
	}
	n.http = httpx.New("slack", opts.Client, n.now, secrets...)
	return n, nil
}

// Message is the incoming-webhook payload.
type Message struct {
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment is a legacy message attachment: coloured bar, title, fields.
type Attachment struct {
	Fallback   string   `json:"fallback"`
	Color      string   `json:"color"`
	Title      string   `json:"title"`
	Text       string   `json:"text,omitempty"`
	Fields     []Field  `json:"fields,omitempty"`
	Footer     string   `json:"footer"`
	Timestamp  int64    `json:"ts"`
	MarkdownIn []string `json:"mrkdwn_in,omitempty"`
}

// Field is one attachment field.
type Field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// Escape escapes text for Slack's mrkdwn: &, < and > (Slack's only
// control characters; a name like "<!channel>" must not ping anyone).
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Notify posts ev as one message.
func (n *Notifier) Notify(ctx context.Context, ev notify.Event) (bool, error) {
	msg, err := FormatEvent(ev, n.now())
	if err != nil {
		return false, err
	}
	return n.post(ctx, msg)
}

// NotifyDigest posts a digest as one message.
func (n *Notifier) NotifyDigest(ctx context.Context, d notify.Digest) (bool, error) {
	if len(d.Events) == 0 {
		return false, ErrEmptyDigest
	}
	return n.post(ctx, FormatDigest(d, n.now()))
}

func emoji(typ string) string {
	switch typ {
	case notify.EventOffline:
		return "🔴"
	case notify.EventOnline:
		return "🟢"
	case notify.EventFlapping:
		return "🟠"
	case notify.EventTest:
		return "🧪"
	}
	return "•"
}

// FormatEvent builds the message for one event.
func FormatEvent(ev notify.Event, now time.Time) (Message, error) {
	var color string
	switch ev.Type {
	case notify.EventOffline:
		color = ColorOffline
	case notify.EventOnline:
		color = ColorOnline
	case notify.EventFlapping:
		color = ColorFlapping
	case notify.EventTest:
		color = ColorTest
	default:
		return Message{}, fmt.Errorf("%w %q", ErrUnknownEventType, ev.Type)
	}
	title := msgtext.Title(ev)
	at := ev.OccurredAt
	if at.IsZero() {
		at = now
	}
	a := Attachment{Fallback: Escape(title), Color: color, Title: Escape(title), Footer: "LunaSentri", Timestamp: at.Unix()}
	for _, f := range msgtext.Fields(ev) {
		short := f.Name != "Reason" && f.Name != "Description" && f.Name != "About"
		a.Fields = append(a.Fields, Field{Title: f.Name, Value: Escape(f.Value), Short: short})
	}
	return Message{Text: emoji(ev.Type) + " " + Escape(title), Attachments: []Attachment{a}}, nil
}

// FormatDigest builds the one message of a digest.
func FormatDigest(d notify.Digest, now time.Time) Message {
	offline, _ := d.Counts()
	color := ColorOnline
	if offline > 0 {
		color = ColorOffline
	}
	title := msgtext.DigestTitle(d)
	var b strings.Builder
	if lines, more := msgtext.DigestGroups(d, digestGroups); len(lines) > 0 {
		b.WriteString("*By " + Escape(strings.Join(d.GroupBy, ", ")) + ":*\n")
		for _, l := range lines {
			b.WriteString("• " + Escape(l) + "\n")
		}
		if more > 0 {
			fmt.Fprintf(&b, "… and %d more groups\n", more)
		}
		b.WriteString("\n")
	}
	entries, more := msgtext.DigestNamesOf(d, msgtext.DigestNames)
	for _, e := range entries {
		b.WriteString(emoji(e.Type) + " " + Escape(e.Text) + "\n")
	}
	if more > 0 {
		fmt.Fprintf(&b, "… and %d more\n", more)
	}
	at := d.OccurredAt
	if at.IsZero() {
		at = now
	}
	return Message{
		Text: "📋 " + Escape(title),
		Attachments: []Attachment{{Fallback: Escape(title), Color: color, Title: Escape(title),
			Text: strings.TrimRight(b.String(), "\n"), Footer: "LunaSentri", Timestamp: at.Unix(), MarkdownIn: []string{"text"}}},
	}
}

func (n *Notifier) post(ctx context.Context, msg Message) (bool, error) {
	body, err := json.Marshal(msg)
	if err != nil {
		return false, fmt.Errorf("slack: encode message: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", n.userAgent)
	_, retryable, err := n.http.Post(ctx, n.url, h, body)
	return retryable, err
}
