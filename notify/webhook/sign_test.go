package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify/webhook"
)

const (
	kaSecret = "whsec_0123456789abcdef"
	kaTS     = int64(1764232200) // 2025-11-27T08:30:00Z
	kaBody   = `{"event":"machine.offline","id":"evt-1"}`
	// kaHex was computed outside Go:
	//   printf '%s' '1764232200.{"event":"machine.offline","id":"evt-1"}' |
	//     openssl dgst -sha256 -hmac 'whsec_0123456789abcdef'
	kaHex = "9c6ae0ab81c6cc99cc3c9596726a4f7b24c3001022f672c18b0a29d5d52be27b"
)

func TestSign_KnownAnswer(t *testing.T) {
	got := webhook.Sign(kaSecret, kaTS, []byte(kaBody))
	if want := "sha256=" + kaHex; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	// And independently with crypto/hmac, spelling out the contract.
	m := hmac.New(sha256.New, []byte(kaSecret))
	m.Write([]byte(strconv.FormatInt(kaTS, 10) + "." + kaBody))
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("Sign = %s, crypto/hmac says %s", got, want)
	}
}

func signedHeader(secret string, ts int64, body string) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(webhook.HeaderSignature, webhook.Sign(secret, ts, []byte(body)))
	return h
}

func TestVerify_Cases(t *testing.T) {
	now := time.Unix(kaTS, 0)
	tests := []struct {
		name    string
		header  func() http.Header
		body    string
		now     time.Time
		maxSkew time.Duration
		want    error
	}{
		{"valid", func() http.Header { return signedHeader(kaSecret, kaTS, kaBody) }, kaBody, now, time.Minute, nil},
		{"valid within skew, late", func() http.Header { return signedHeader(kaSecret, kaTS, kaBody) }, kaBody, now.Add(59 * time.Second), time.Minute, nil},
		{"valid within skew, early", func() http.Header { return signedHeader(kaSecret, kaTS, kaBody) }, kaBody, now.Add(-59 * time.Second), time.Minute, nil},
		{"default skew", func() http.Header { return signedHeader(kaSecret, kaTS, kaBody) }, kaBody, now.Add(4 * time.Minute), 0, nil},
		{"stale", func() http.Header { return signedHeader(kaSecret, kaTS, kaBody) }, kaBody, now.Add(61 * time.Second), time.Minute, webhook.ErrStaleTimestamp},
		{"future", func() http.Header { return signedHeader(kaSecret, kaTS, kaBody) }, kaBody, now.Add(-61 * time.Second), time.Minute, webhook.ErrStaleTimestamp},
		{"default skew stale", func() http.Header { return signedHeader(kaSecret, kaTS, kaBody) }, kaBody, now.Add(6 * time.Minute), 0, webhook.ErrStaleTimestamp},
		{"tampered body", func() http.Header { return signedHeader(kaSecret, kaTS, kaBody) }, kaBody + " ", now, time.Minute, webhook.ErrSignatureMismatch},
		{"wrong secret", func() http.Header { return signedHeader("another-secret-0123", kaTS, kaBody) }, kaBody, now, time.Minute, webhook.ErrSignatureMismatch},
		{"timestamp swapped", func() http.Header {
			h := signedHeader(kaSecret, kaTS, kaBody)
			h.Set(webhook.HeaderTimestamp, strconv.FormatInt(kaTS+1, 10))
			return h
		}, kaBody, now, time.Minute, webhook.ErrSignatureMismatch},
		{"missing timestamp", func() http.Header {
			h := signedHeader(kaSecret, kaTS, kaBody)
			h.Del(webhook.HeaderTimestamp)
			return h
		}, kaBody, now, time.Minute, webhook.ErrMissingTimestamp},
		{"bad timestamp", func() http.Header {
			h := signedHeader(kaSecret, kaTS, kaBody)
			h.Set(webhook.HeaderTimestamp, "yesterday")
			return h
		}, kaBody, now, time.Minute, webhook.ErrInvalidTimestamp},
		{"missing signature", func() http.Header {
			h := signedHeader(kaSecret, kaTS, kaBody)
			h.Del(webhook.HeaderSignature)
			return h
		}, kaBody, now, time.Minute, webhook.ErrMissingSignature},
		{"no prefix", func() http.Header {
			h := signedHeader(kaSecret, kaTS, kaBody)
			h.Set(webhook.HeaderSignature, kaHex)
			return h
		}, kaBody, now, time.Minute, webhook.ErrInvalidSignature},
		{"not hex", func() http.Header {
			h := signedHeader(kaSecret, kaTS, kaBody)
			h.Set(webhook.HeaderSignature, "sha256=zz")
			return h
		}, kaBody, now, time.Minute, webhook.ErrInvalidSignature},
		{"short", func() http.Header {
			h := signedHeader(kaSecret, kaTS, kaBody)
			h.Set(webhook.HeaderSignature, "sha256="+kaHex[:32])
			return h
		}, kaBody, now, time.Minute, webhook.ErrInvalidSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(kaSecret, tc.header(), []byte(tc.body), tc.maxSkew, tc.now)
			if tc.want == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}
