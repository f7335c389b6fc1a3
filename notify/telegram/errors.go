package telegram

import "errors"

// Sentinel errors. Callers match them with errors.Is. None of them, nor any
// error wrapping them, contains the bot token.
var (
	// ErrTokenNotConfigured: the server has no TELEGRAM_BOT_TOKEN. Permanent
	// until an operator sets one, so deliveries fail at once with a clear
	// reason instead of burning the retry budget.
	ErrTokenNotConfigured = errors.New("telegram bot token not configured")
	// ErrInvalidChatID: a chat id that is neither an integer nor an
	// @username. Returned by ValidateChatID; permanent from Notify.
	ErrInvalidChatID = errors.New("invalid telegram chat id")
	// ErrInvalidAPIURL: Options.APIURL is not an http(s) URL with a host.
	ErrInvalidAPIURL = errors.New("invalid telegram api url")
	// ErrUnknownEventType: no message text exists for the event type.
	// Permanent.
	ErrUnknownEventType = errors.New("unknown event type")
	// ErrEmptyDigest: a digest without events has nothing to say. Permanent.
	ErrEmptyDigest = errors.New("digest has no events")
	// ErrChatBackingOff: Telegram asked us (429) to leave this chat alone
	// for a while and that time has not passed; nothing was sent. Always
	// wrapped in a *notify.RetryAfterError saying how long is left.
	ErrChatBackingOff = errors.New("telegram chat is rate limited by telegram")
	// ErrRateLimitWait: our own limiters would only let the message go
	// after the caller's deadline, so nothing was sent. Wrapped, together
	// with context.DeadlineExceeded, in a *notify.RetryAfterError saying
	// how long the queue is.
	ErrRateLimitWait = errors.New("telegram rate limit wait would exceed the deadline")
)
