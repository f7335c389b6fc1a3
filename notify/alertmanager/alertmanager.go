package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/internal/httpx"
)

// Defaults.
const (
	// DefaultRepeatInterval is the channel policy repeat_interval an
	// alertmanager channel gets when none is set: how often a firing alert
	// is re-posted. One minute is Prometheus's default resend delay.
	DefaultRepeatInterval = time.Minute
	// ValidityFactor: a firing alert is valid for this many re-post
	// intervals, so three lost re-posts in a row still do not resolve it (as
	// Prometheus: 4 × max(evaluation interval, resend delay)).
	ValidityFactor = 4
	// DefaultValidity is the endsAt horizon of a firing alert when
	// Options.Validity is zero.
	DefaultValidity = ValidityFactor * DefaultRepeatInterval
	// AlertName is the alertname of an offline machine.
	AlertName = "MachineOffline"
	// FlappingAlertName is the alertname of a flapping notice; it is never
	// re-posted, so it resolves itself after the validity.
	FlappingAlertName = "MachineFlapping"
	// TestAlertName is the alertname of `channels test`; valid one minute.
	TestAlertName = "LunaSentriTest"
	testValidity  = time.Minute
	alertsPath    = "/api/v2/alerts"
	// maxLabels bounds the extra labels of a channel.
	maxLabels = 32
)

// Options configures a Notifier for one alertmanager channel.
type Options struct {
	// URLs are the Alertmanager base URLs (http(s)://host:9093[/prefix]);
	// every alert goes to each of them. At least one.
	URLs []string
	// Labels are added to every alert (the channel's "labels"); they win
	// over machine labels of the same name. alertname and machine are
	// reserved.
	Labels map[string]string
	// Username and Password: HTTP basic auth, both or neither.
	Username, Password string
	// GeneratorURL is the alert's generatorURL (the node's dashboard or API
	// URL). Optional.
	GeneratorURL string
	// Validity is how long a firing alert stays firing without a re-post.
	// 0: DefaultValidity. The server sets ValidityFactor × the channel's
	// repeat_interval + its group_window (a re-post caught in a storm waits
	// for its digest).
	Validity time.Duration
	Client   *http.Client
	Version  string
	Now      func() time.Time
	// Logger gets partial failures of an HA set (one Alertmanager down
	// while another took the alert). nil: no logging.
	Logger hclog.Logger
}

// Notifier posts alerts to one channel's Alertmanagers. Safe for
// concurrent use.
type Notifier struct {
	urls      []string
	labels    map[string]string
	username  string
	password  string
	generator string
	validity  time.Duration
	userAgent string
	now       func() time.Time
	log       hclog.Logger
	http      *httpx.Client
}

var (
	_ notify.Notifier       = (*Notifier)(nil)
	_ notify.DigestNotifier = (*Notifier)(nil)
)

// Sentinel errors.
var (
	ErrInvalidConfig    = errors.New("invalid alertmanager channel")
	ErrUnknownEventType = errors.New("unknown event type")
	ErrEmptyDigest      = errors.New("digest has no events")
)

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Validate checks a channel's settings; its errors are fit for a 400.
func Validate(urls []string, labels map[string]string, username, password string) error {
	if len(urls) == 0 {
		return fmt.Errorf("%w: url (or urls) is required", ErrInvalidConfig)
	}
	if len(urls) > 10 {
		return fmt.Errorf("%w: at most 10 urls, got %d", ErrInvalidConfig, len(urls))
	}
	seen := map[string]bool{}
	for i, u := range urls {
		field := "url"
		if len(urls) > 1 {
			field = fmt.Sprintf("urls[%d]", i)
		}
		if err := httpx.ValidateURL(field, u); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
		if strings.HasSuffix(strings.TrimRight(u, "/"), alertsPath) {
			return fmt.Errorf("%w: %s is the Alertmanager base URL (http://am:9093), without %s", ErrInvalidConfig, field, alertsPath)
		}
		if seen[u] {
			return fmt.Errorf("%w: %s repeats another url", ErrInvalidConfig, field)
		}
		seen[u] = true
	}
	if len(labels) > maxLabels {
		return fmt.Errorf("%w: at most %d labels, got %d", ErrInvalidConfig, maxLabels, len(labels))
	}
	for k, v := range labels {
		if !labelName.MatchString(k) || strings.HasPrefix(k, "__") {
			return fmt.Errorf("%w: label name %q is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)", ErrInvalidConfig, k)
		}
		if k == "alertname" || k == "machine" {
			return fmt.Errorf("%w: label %q is set by LunaSentri", ErrInvalidConfig, k)
		}
		if v == "" || len(v) > 1024 {
			return fmt.Errorf("%w: label %q needs a value of 1 to 1024 bytes", ErrInvalidConfig, k)
		}
	}
	if (username == "") != (password == "") {
		return fmt.Errorf("%w: basic_auth needs both username and password", ErrInvalidConfig)
	}
	return nil
}

// New validates opts and returns a Notifier.
func New(opts Options) (*Notifier, error) {
	if err := Validate(opts.URLs, opts.Labels, opts.Username, opts.Password); err != nil {
		return nil, err
	}
	if opts.Validity < 0 {
		return nil, fmt.Errorf("%w: negative validity", ErrInvalidConfig)
	}
	n := &Notifier{
		labels: opts.Labels, username: opts.Username, password: opts.Password,
		generator: opts.GeneratorURL, validity: opts.Validity, now: opts.Now, log: opts.Logger,
	}
	if n.validity == 0 {
		n.validity = DefaultValidity
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.log == nil {
		n.log = hclog.NewNullLogger()
	}
	n.userAgent = httpx.UserAgent(opts.Version)
	secrets := []string{opts.Password}
	for _, u := range opts.URLs {
		n.urls = append(n.urls, strings.TrimRight(u, "/")+alertsPath)
		secrets = append(secrets, httpx.URLSecrets(u)...)
	}
	n.http = httpx.New("alertmanager", opts.Client, n.now, secrets...)
	return n, nil
}

// Alert is one element of Alertmanager's POST /api/v2/alerts body
// (postableAlert).
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Notify posts ev as one alert to every Alertmanager.
func (n *Notifier) Notify(ctx context.Context, ev notify.Event) (bool, error) {
	a, err := n.alert(ev, n.now())
	if err != nil {
		return false, err
	}
	return n.post(ctx, []Alert{a})
}

// NotifyDigest posts all of a digest's alerts in one POST to every
// Alertmanager; Alertmanager applies them in order.
func (n *Notifier) NotifyDigest(ctx context.Context, d notify.Digest) (bool, error) {
	if len(d.Events) == 0 {
		return false, ErrEmptyDigest
	}
	now := n.now()
	alerts := make([]Alert, 0, len(d.Events))
	for _, ev := range d.Events {
		a, err := n.alert(ev, now)
		if err != nil {
			return false, err
		}
		alerts = append(alerts, a)
	}
	return n.post(ctx, alerts)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// alert builds the alert for ev at now.
func (n *Notifier) alert(ev notify.Event, now time.Time) (Alert, error) {
	m := ev.Machine
	name := m.Name
	if name == "" {
		name = m.ID
	}
	labels := map[string]string{}
	for k, v := range m.Labels {
		if v == "" {
			continue // an empty label value is no label in Prometheus
		}
		k = SanitizeLabelName(k)
		if k == "alertname" || k == "machine" || strings.HasPrefix(k, "__") {
			k = "exported_" + strings.TrimLeft(k, "_")
		}
		labels[k] = v
	}
	for k, v := range n.labels {
		labels[k] = v
	}
	labels["alertname"] = AlertName
	labels["machine"] = name

	ann := map[string]string{}
	if m.Hostname != "" {
		ann["hostname"] = m.Hostname
	}
	if m.LastSeen != nil && !m.LastSeen.IsZero() {
		ann["last_seen"] = rfc3339(*m.LastSeen)
	}
	if m.Description != "" {
		ann["description"] = m.Description
	}
	at := ev.OccurredAt
	if at.IsZero() {
		at = now
	}
	a := Alert{Labels: labels, Annotations: ann, GeneratorURL: n.generator}
	switch ev.Type {
	case notify.EventOffline:
		reason := ev.Reason
		if reason == "" {
			reason = notify.ReasonSilence
		}
		ann["reason"] = reason
		if ev.Message != "" {
			ann["message"] = ev.Message
		}
		ann["summary"] = name + " is offline"
		start := at
		if ev.Reminder > 0 && ev.DownFor > 0 {
			// A re-post: keep the outage's start (Alertmanager keeps the
			// earliest startsAt anyway; this matters after it restarted).
			start = at.Add(-ev.DownFor)
		}
		a.StartsAt = rfc3339(start)
		a.EndsAt = rfc3339(now.Add(n.validity))
	case notify.EventOnline:
		// The same labels, with endsAt = the recovery: resolved.
		ann["summary"] = name + " is back online"
		start := at
		if ev.DownFor > 0 {
			start = at.Add(-ev.DownFor)
		}
		a.StartsAt, a.EndsAt = rfc3339(start), rfc3339(at)
	case notify.EventFlapping:
		labels["alertname"] = FlappingAlertName
		ann["summary"] = name + " is flapping"
		a.StartsAt, a.EndsAt = rfc3339(at), rfc3339(now.Add(n.validity))
	case notify.EventTest:
		labels["alertname"] = TestAlertName
		ann["summary"] = "LunaSentri test alert; no machine changed state"
		a.StartsAt, a.EndsAt = rfc3339(now), rfc3339(now.Add(testValidity))
	default:
		return a, fmt.Errorf("%w %q", ErrUnknownEventType, ev.Type)
	}
	return a, nil
}

// SanitizeLabelName turns a LunaSentri label name into a Prometheus one:
// every character outside [a-zA-Z0-9_] becomes '_', and a leading digit
// gets a '_' in front.
func SanitizeLabelName(k string) string {
	if labelName.MatchString(k) {
		return k
	}
	var b strings.Builder
	for i, r := range k {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// post sends alerts to every URL. Delivered when at least one Alertmanager
// took them: an HA set deduplicates notifications among its members, and a
// member that missed this post gets the next re-post. When all fail, the
// error is retryable if any failure was.
func (n *Notifier) post(ctx context.Context, alerts []Alert) (bool, error) {
	body, err := json.Marshal(alerts)
	if err != nil {
		return false, fmt.Errorf("alertmanager: encode alerts: %w", err)
	}
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", n.userAgent)
	if n.username != "" {
		req, _ := http.NewRequest(http.MethodPost, "http://x", nil)
		req.SetBasicAuth(n.username, n.password)
		header.Set("Authorization", req.Header.Get("Authorization"))
	}
	type result struct {
		retryable bool
		err       error
	}
	results := make([]result, len(n.urls))
	done := make(chan int, len(n.urls))
	for i, u := range n.urls {
		go func() {
			_, retryable, err := n.http.Post(ctx, u, header, body)
			results[i] = result{retryable, err}
			done <- i
		}()
	}
	for range n.urls {
		<-done
	}
	var errs []error
	retryable, ok := false, 0
	for _, r := range results {
		if r.err == nil {
			ok++
			continue
		}
		errs = append(errs, r.err)
		retryable = retryable || r.retryable
	}
	if ok > 0 {
		for _, e := range errs {
			n.log.Warn("an alertmanager of the set did not take the alerts; it gets the next re-post", "error", e)
		}
		return false, nil
	}
	if len(errs) == 1 {
		return retryable, errs[0]
	}
	return retryable, errors.Join(errs...)
}
