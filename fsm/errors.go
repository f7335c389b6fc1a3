package fsm

import "errors"

// Sentinel errors returned in ApplyResult.Err and by queries. The HTTP layer
// maps them to status codes, and they cross node boundaries by Code, so a
// forwarded write answers exactly as a local one.
var (
	// ErrMachineExists: a machine with that name is already registered (409).
	ErrMachineExists = errors.New("machine already exists")
	// ErrMachineNotFound: no machine with that name (404).
	ErrMachineNotFound = errors.New("machine not found")
	// ErrChannelExists: a channel with that name already exists (409).
	ErrChannelExists = errors.New("channel already exists")
	// ErrChannelNotFound: no channel with that name (404).
	ErrChannelNotFound = errors.New("channel not found")
	// ErrLimit: a configured limit (machines, channels) would be exceeded (409).
	ErrLimit = errors.New("limit reached")
	// ErrBadCommand: the command could not be decoded or is invalid (400).
	ErrBadCommand = errors.New("invalid command")
	// ErrSilenceNotFound: no silence with that id (404).
	ErrSilenceNotFound = errors.New("silence not found")
	// ErrConflict: the request does not fit the current state, e.g.
	// pausing a machine that is already paused (409).
	ErrConflict = errors.New("conflict")

	// Issue 11 (tokens).
	// ErrTokenNotFound: no token with that id (404).
	ErrTokenNotFound = errors.New("token not found")
	// ErrTokenExists: a token with that id, name or secret exists (409).
	ErrTokenExists = errors.New("token already exists")
	// ErrBadSnapshot: a snapshot decodes but its content is inconsistent.
	ErrBadSnapshot = errors.New("inconsistent snapshot")
)

var errorsByCode = map[string]error{
	"machine_exists":    ErrMachineExists,
	"machine_not_found": ErrMachineNotFound,
	"channel_exists":    ErrChannelExists,
	"channel_not_found": ErrChannelNotFound,
	"limit":             ErrLimit,
	"bad_command":       ErrBadCommand,
	"silence_not_found": ErrSilenceNotFound,
	"conflict":          ErrConflict,
	"token_not_found":   ErrTokenNotFound, // issue 11
	"token_exists":      ErrTokenExists,   // issue 11
}

// ErrorCode names a sentinel error for the wire; "" for nil or unknown errors.
func ErrorCode(err error) string {
	for code, e := range errorsByCode {
		if errors.Is(err, e) {
			return code
		}
	}
	return ""
}

// ErrorFromCode turns a wire code and message back into an error that
// errors.Is matches against the sentinel.
func ErrorFromCode(code, msg string) error {
	if msg == "" {
		return nil
	}
	if e, ok := errorsByCode[code]; ok {
		if msg == e.Error() {
			return e
		}
		return &codedError{sentinel: e, msg: msg}
	}
	return errors.New(msg)
}

type codedError struct {
	sentinel error
	msg      string
}

func (e *codedError) Error() string        { return e.msg }
func (e *codedError) Is(target error) bool { return target == e.sentinel }
