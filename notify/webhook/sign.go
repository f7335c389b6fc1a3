package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the delivery contract (docs/api.md).
const (
	HeaderEvent     = "X-LunaSentri-Event"
	HeaderDelivery  = "X-LunaSentri-Delivery"
	HeaderTimestamp = "X-LunaSentri-Timestamp"
	HeaderSignature = "X-LunaSentri-Signature"
)

// DefaultMaxSkew is the timestamp tolerance Verify uses when given zero.
// Five minutes, like Stripe and Slack: wide enough for clock drift and slow
// networks, narrow enough that a captured request cannot be replayed later.
const DefaultMaxSkew = 5 * time.Minute

const signaturePrefix = "sha256="

// Sign returns the X-LunaSentri-Signature value for a body sent at
// timestamp (Unix seconds): "sha256=" + hex(HMAC-SHA256(secret,
// TIMESTAMP + "." + BODY)). Binding the timestamp into the MAC is what lets
// receivers reject replays.
func Sign(secret string, timestamp int64, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret string, timestamp int64, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery the way a receiver should: the timestamp header
// parses and is within maxSkew of now (either direction), and the signature
// header matches body under secret. maxSkew <= 0 means DefaultMaxSkew. The
// comparison is constant-time so a receiver does not leak how much of a
// forged signature was right.
func Verify(secret string, header http.Header, body []byte, maxSkew time.Duration, now time.Time) error {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	tsText := header.Get(HeaderTimestamp)
	if tsText == "" {
		return ErrMissingTimestamp
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(tsText), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not Unix seconds", ErrInvalidTimestamp, tsText)
	}
	sigText := header.Get(HeaderSignature)
	if sigText == "" {
		return ErrMissingSignature
	}
	hexPart, ok := strings.CutPrefix(strings.TrimSpace(sigText), signaturePrefix)
	if !ok {
		return fmt.Errorf("%w: want %q prefix", ErrInvalidSignature, signaturePrefix)
	}
	got, err := hex.DecodeString(hexPart)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: want %d hex-encoded bytes", ErrInvalidSignature, sha256.Size)
	}
	// Check the MAC before the clock so that a forged request learns nothing
	// about our clock from the error it gets.
	if !hmac.Equal(got, mac(secret, ts, body)) {
		return ErrSignatureMismatch
	}
	skew := now.Sub(time.Unix(ts, 0))
	if skew < 0 {
		skew = -skew
	}
	if skew > maxSkew {
		return fmt.Errorf("%w: timestamp is %s away from now, limit %s",
			ErrStaleTimestamp, skew.Truncate(time.Second), maxSkew)
	}
	return nil
}

// Standard Webhooks (https://www.standardwebhooks.com, docs/api.md "Webhooks:
// Standard Webhooks too"). Every delivery carries these beside the
// X-LunaSentri-* headers, so a receiver can check it with the official
// verifier in any language. Lower case as the specification spells them;
// net/http canonicalises names on the wire, and header names are
// case-insensitive for every receiver.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// standardSecretPrefix marks a secret that is itself base64 of the key
// bytes, the form Standard Webhooks libraries generate ("whsec_" + base64).
const standardSecretPrefix = "whsec_"

// StandardKey returns the HMAC key Standard Webhooks signs with for a
// channel secret: the decoded bytes of a "whsec_BASE64" secret, otherwise
// the secret's own bytes. A "whsec_" secret whose rest is not valid base64
// is not of that form and is used as it is, so every secret the API accepts
// signs something a receiver can verify (with NewWebhookRaw).
func StandardKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, standardSecretPrefix); ok && rest != "" {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil && len(key) > 0 {
			return key
		}
	}
	return []byte(secret)
}

// SignStandard returns the webhook-signature value for a delivery:
// "v1," + base64(HMAC-SHA256(StandardKey(secret), ID + "." + TIMESTAMP + "." + BODY)).
func SignStandard(secret, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, StandardKey(secret))
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// setStandardHeaders adds the three Standard Webhooks headers for a delivery
// with id (the X-LunaSentri-Delivery value), sent at timestamp (Unix seconds).
func setStandardHeaders(h http.Header, secret, id string, timestamp int64, body []byte) {
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(timestamp, 10))
	h.Set(HeaderWebhookSignature, SignStandard(secret, id, timestamp, body))
}
