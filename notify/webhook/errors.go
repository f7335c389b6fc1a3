package webhook

import "errors"

// Sentinel errors. Callers match them with errors.Is; the wrapped messages
// add detail but never the URL's secrets or the signing secret.
var (
	// ErrInvalidURL: the channel URL does not parse, is not http(s) or has
	// no host. Returned by ValidateURL and New.
	ErrInvalidURL = errors.New("invalid webhook url")
	// ErrInvalidSecret: the signing secret is too short or too long.
	// Returned by ValidateSecret and New.
	ErrInvalidSecret = errors.New("invalid webhook secret")
	// ErrUnknownEventType: Notify was given an event type that has no wire
	// form. Permanent: retrying cannot help.
	ErrUnknownEventType = errors.New("unknown event type")
	// ErrMissingEventID: a transition event without an ID cannot be
	// deduplicated by receivers, so it is not sent. Permanent.
	ErrMissingEventID = errors.New("event has no id")
	// ErrEmptyDigest: a digest without events has nothing to say. Permanent.
	ErrEmptyDigest = errors.New("digest has no events")
	// ErrDigestTooLarge: more than MaxDigestEvents events. Permanent.
	ErrDigestTooLarge = errors.New("digest too large")

	// Verify errors: a receiver answers 401 to all of them.

	// ErrMissingTimestamp: no X-LunaSentri-Timestamp header.
	ErrMissingTimestamp = errors.New("missing " + HeaderTimestamp + " header")
	// ErrInvalidTimestamp: the timestamp is not Unix seconds.
	ErrInvalidTimestamp = errors.New("invalid " + HeaderTimestamp + " header")
	// ErrStaleTimestamp: the timestamp is too far from the receiver's clock;
	// the request may be a replay.
	ErrStaleTimestamp = errors.New("stale webhook timestamp")
	// ErrMissingSignature: no X-LunaSentri-Signature header.
	ErrMissingSignature = errors.New("missing " + HeaderSignature + " header")
	// ErrInvalidSignature: the signature header is not "sha256=" + 64 hex.
	ErrInvalidSignature = errors.New("malformed " + HeaderSignature + " header")
	// ErrSignatureMismatch: the signature does not match body and secret.
	ErrSignatureMismatch = errors.New("webhook signature mismatch")
)
