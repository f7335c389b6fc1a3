package transport

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/lunasentri/lunasentri/fsm"
)

// errorBody is every error answer: {"error": "message"}.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, errorBody{Error: fmt.Sprintf(format, args...)})
}

// writeApplyError maps FSM sentinels and cluster trouble to status codes.
func writeApplyError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, fsm.ErrMachineExists), errors.Is(err, fsm.ErrChannelExists), errors.Is(err, fsm.ErrLimit), errors.Is(err, fsm.ErrConflict):
		writeError(w, http.StatusConflict, "%s", err.Error())
	case errors.Is(err, fsm.ErrMachineNotFound), errors.Is(err, fsm.ErrChannelNotFound), errors.Is(err, fsm.ErrSilenceNotFound):
		writeError(w, http.StatusNotFound, "%s", err.Error())
	case errors.Is(err, fsm.ErrBadCommand):
		writeError(w, http.StatusBadRequest, "%s", err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, "cluster unavailable: %s", err.Error())
	}
}

// tooLarge answers 413 before reading a body whose declared length is over
// the limit, so an oversized request costs nothing.
func tooLarge(w http.ResponseWriter, r *http.Request, limit int64) bool {
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", limit)
		return true
	}
	return false
}

// decodeJSON reads one JSON object into v, refusing unknown fields, trailing
// data and bodies over limit. It writes the 4xx itself and reports false on
// failure.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if tooLarge(w, r, limit) {
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", limit)
		case errors.Is(err, io.EOF):
			writeError(w, http.StatusBadRequest, "body is empty; a JSON object is required")
		default:
			writeError(w, http.StatusBadRequest, "%s", jsonErrorMessage(err))
		}
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "body is not JSON: unexpected data after the object")
		return false
	}
	return true
}

func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s", te.Field, te.Type.String())
		}
		return "expected " + te.Type.String()
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// bearer returns the credential from Authorization: Bearer, or X-API-Key
// (which the original agent sent).
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:])
		}
		return ""
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

// secretEqual compares in constant time, hashing first so that the length
// of the secret does not leak either.
func secretEqual(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1 && got != ""
}
