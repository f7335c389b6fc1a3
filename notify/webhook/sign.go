package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the delivery contract (API.md).
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
