package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lunasentri/lunasentri/notify"
)

// MaxDigestEvents is the most events one digest body carries (docs/api.md
// "Digest": at most 1000 events per digest, more → several). The leader
// splits larger storms into several digests; a bigger one reaching us is a
// bug upstream and is refused permanently rather than sent half.
const MaxDigestEvents = 1000

var _ notify.DigestNotifier = (*Notifier)(nil)

// digestPayload is the body of a digest delivery (docs/api.md "Digest, webhook").
type digestPayload struct {
	Event      string            `json:"event"`
	ID         string            `json:"id"`
	OccurredAt string            `json:"occurred_at"`
	Counts     digestCounts      `json:"counts"`
	Groups     []digestGroup     `json:"groups"`
	Events     []json.RawMessage `json:"events"`
}

type digestCounts struct {
	Offline int `json:"offline"`
	Online  int `json:"online"`
}

type digestGroup struct {
	Labels  map[string]string `json:"labels"`
	Offline int               `json:"offline"`
	Online  int               `json:"online"`
}

// NotifyDigest makes one delivery attempt of a whole digest: one signed
// POST whose events are each exactly the body the event would have had
// alone. It goes through Notify's one request path (headers, signing,
// classification of the answer), so a digest is signed and retried like any
// delivery, with X-LunaSentri-Delivery = the digest id.
func (n *Notifier) NotifyDigest(ctx context.Context, d notify.Digest) (bool, error) {
	body, err := encodeDigest(d, n.now)
	if err != nil {
		return false, err
	}
	// The pre-encoded body rides in Message of an EventDigest; encode
	// (payload.go) hands it over unchanged. Only this method builds such an
	// event.
	return n.Notify(ctx, notify.Event{Type: notify.EventDigest, ID: d.ID, Message: string(body)})
}

// encodeDigest builds a digest body. Errors are permanent.
func encodeDigest(d notify.Digest, now func() time.Time) ([]byte, error) {
	if d.ID == "" {
		return nil, ErrMissingEventID
	}
	if len(d.Events) == 0 {
		return nil, ErrEmptyDigest
	}
	if len(d.Events) > MaxDigestEvents {
		return nil, fmt.Errorf("%w: %d events, at most %d", ErrDigestTooLarge, len(d.Events), MaxDigestEvents)
	}
	t := now()
	occurred := d.OccurredAt
	if occurred.IsZero() {
		occurred = t
	}
	p := digestPayload{
		Event:      notify.EventDigest,
		ID:         d.ID,
		OccurredAt: formatTime(occurred),
		Groups:     []digestGroup{},
		Events:     make([]json.RawMessage, 0, len(d.Events)),
	}
	p.Counts.Offline, p.Counts.Online = d.Counts()
	for _, g := range d.Groups() {
		p.Groups = append(p.Groups, digestGroup{Labels: g.Labels, Offline: g.Offline, Online: g.Online})
	}
	for _, ev := range d.Events {
		if ev.Type == notify.EventDigest || ev.Type == notify.EventTest {
			return nil, fmt.Errorf("%w %q inside a digest", ErrUnknownEventType, ev.Type)
		}
		body, _, err := encode(ev, t)
		if err != nil {
			return nil, fmt.Errorf("digest event %s: %w", ev.ID, err)
		}
		p.Events = append(p.Events, body)
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("webhook: encode digest: %w", err)
	}
	return body, nil
}

// encodedDigest is encode's answer for the EventDigest that NotifyDigest
// builds: the body it already encoded, checked to be a digest.
func encodedDigest(ev notify.Event) ([]byte, payload, error) {
	p := payload{Event: notify.EventDigest, ID: ev.ID}
	body := []byte(ev.Message)
	if ev.ID == "" {
		return nil, p, ErrMissingEventID
	}
	if !bytes.HasPrefix(body, []byte(`{"event":"machine.digest",`)) || !json.Valid(body) {
		return nil, p, fmt.Errorf("%w: a digest is sent with NotifyDigest", ErrUnknownEventType)
	}
	return body, p, nil
}
