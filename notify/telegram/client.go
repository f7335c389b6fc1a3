package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"

	"github.com/lunasentri/lunasentri/notify"
)

// Defaults (docs/api.md: one message a second per chat, 30 a second in all,
// which are Telegram's own published bot limits).
const (
	DefaultAPIURL          = "https://api.telegram.org"
	DefaultPerChatInterval = time.Second
	DefaultGlobalRate      = rate.Limit(30)
	// DefaultTimeout bounds one request when Options.HTTPClient is nil.
	DefaultTimeout = 10 * time.Second
	// MaxRetryAfter caps Telegram's retry_after. It only guards against
	// absurd values; a real flood wait is honoured as given.
	MaxRetryAfter = time.Hour
	// maxResponseBody bounds how much of an answer we read.
	maxResponseBody = 64 << 10
	// tokenMark replaces the bot token wherever it would appear.
	tokenMark = "REDACTED"
)

// Options configures the Client.
type Options struct {
	// Token is the bot token (TELEGRAM_BOT_TOKEN). Empty is allowed, so a
	// node starts without Telegram; every Notify then fails permanently with
	// ErrTokenNotConfigured.
	Token string
	// APIURL is the Bot API base URL (TELEGRAM_API_URL). Empty:
	// DefaultAPIURL. Tests point it at a local server.
	APIURL string
	// HTTPClient sends requests. nil: a client with DefaultTimeout.
	HTTPClient *http.Client
	// PerChatInterval is the least time between two messages to one chat.
	// 0: DefaultPerChatInterval; negative: no per-chat limit.
	PerChatInterval time.Duration
	// GlobalRate is messages per second over all chats. 0:
	// DefaultGlobalRate; negative: no global limit.
	GlobalRate rate.Limit
	// Now is the clock for the rate limiters and back-off. nil: time.Now.
	Now func() time.Time
	// Logger gets rare events (Telegram's 429s). Pass it already named for
	// the subsystem (logger.Named("telegram")); New does not name it again.
	// nil: no logging.
	Logger hclog.Logger
}

// Client sends messages for all telegram channels of a node, so the rate
// limits hold across them. It is safe for concurrent use.
type Client struct {
	token    string
	endpoint string   // {APIURL}/bot{TOKEN}/sendMessage; never shown
	shown    string   // endpoint with the token replaced, for errors
	secrets  []string // forms of the token scrubbed from every error text
	http     *http.Client
	now      func() time.Time
	log      hclog.Logger

	perChatInterval time.Duration
	perChatLimit    rate.Limit
	global          *rate.Limiter

	mu        sync.Mutex
	chats     map[string]*chatState
	lastSweep time.Time
}

// New returns a Client. It fails only on an unusable APIURL; a missing
// token is reported by Notify, per delivery.
func New(opts Options) (*Client, error) {
	apiURL := strings.TrimRight(opts.APIURL, "/")
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: want http(s)://host[/path], got %q", ErrInvalidAPIURL, apiURL)
	}
	c := &Client{
		token:    opts.Token,
		endpoint: apiURL + "/bot" + opts.Token + "/sendMessage",
		shown:    apiURL + "/bot" + tokenMark + "/sendMessage",
		http:     opts.HTTPClient,
		now:      opts.Now,
		log:      opts.Logger,
		chats:    make(map[string]*chatState),
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultTimeout}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	if opts.Token != "" {
		c.secrets = tokenForms(opts.Token)
	}

	switch {
	case opts.PerChatInterval == 0:
		c.perChatInterval, c.perChatLimit = DefaultPerChatInterval, rate.Every(DefaultPerChatInterval)
	case opts.PerChatInterval < 0:
		c.perChatInterval, c.perChatLimit = 0, rate.Inf
	default:
		c.perChatInterval, c.perChatLimit = opts.PerChatInterval, rate.Every(opts.PerChatInterval)
	}
	global := opts.GlobalRate
	switch {
	case global == 0:
		global = DefaultGlobalRate
	case global < 0:
		global = rate.Inf
	}
	// Burst 1: Telegram counts messages per second, and a burst of 30 at
	// the start of a second followed by the next 30 early in the next one
	// is exactly what trips its flood control.
	c.global = rate.NewLimiter(global, 1)
	c.lastSweep = c.now()
	return c, nil
}

// tokenForms lists the spellings of token that may show up in error text:
// as is, escaped for a URL path or query, and its secret half (after the
// colon) on its own.
func tokenForms(token string) []string {
	forms := []string{token, url.PathEscape(token), url.QueryEscape(token)}
	if _, secret, ok := strings.Cut(token, ":"); ok && len(secret) >= 8 {
		forms = append(forms, secret)
	}
	return forms
}

// Chat returns the Notifier for one chat. An invalid chat id is reported by
// Notify as a permanent error.
func (c *Client) Chat(chatID string) notify.Notifier {
	return &chat{client: c, id: chatID}
}

type chat struct {
	client *Client
	id     string
}

// Notify sends ev to the chat: at most one request, after waiting for the
// per-chat and global limiters (bounded by ctx).
func (ch *chat) Notify(ctx context.Context, ev notify.Event) (bool, error) {
	return ch.client.notify(ctx, ch.id, ev)
}

func (c *Client) notify(ctx context.Context, chatID string, ev notify.Event) (bool, error) {
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("telegram: not sent: %w", err)
	}
	if c.token == "" {
		return false, ErrTokenNotConfigured
	}
	if err := ValidateChatID(chatID); err != nil {
		return false, err
	}
	text, err := formatMessage(ev)
	if err != nil {
		return false, err
	}
	return c.deliver(ctx, chatID, text)
}

// deliver sends one formatted message to a chat: at most one request, after
// the per-chat and global limiters (bounded by ctx).
func (c *Client) deliver(ctx context.Context, chatID, text string) (bool, error) {
	s, notBefore := c.acquire(chatID)
	defer c.release(s)
	if left := notBefore.Sub(c.now()); left > 0 {
		// Telegram told us to wait; sending now would only earn another 429.
		return true, &notify.RetryAfterError{After: left, Err: ErrChatBackingOff}
	}
	// Per chat first, then global: a chat waiting for its own slot should
	// not hold a global token that another chat could use meanwhile.
	if err := c.wait(ctx, s.lim); err != nil {
		return true, err
	}
	if err := c.wait(ctx, c.global); err != nil {
		return true, err
	}
	return c.send(ctx, s, chatID, text)
}

type sendMessage struct {
	ChatID    string `json:"chat_id"`
	Text      string `json:"text"`
	ParseMode string `json:"parse_mode"`
}

type apiResponse struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter      int64 `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

func (c *Client) send(ctx context.Context, s *chatState, chatID, text string) (bool, error) {
	body, err := json.Marshal(sendMessage{ChatID: chatID, Text: text, ParseMode: "MarkdownV2"})
	if err != nil {
		return false, fmt.Errorf("telegram: encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		// A token with characters a URL cannot hold; the error repeats the URL.
		return false, c.wrap("telegram: build request for "+c.shown+": "+reason(err), notify.UnwrapURLError(err))
	}
	req.Header.Set("Content-Type", "application/json")

	resp, err := c.http.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return true, c.wrap("telegram: post "+c.shown+": "+cerr.Error(), cerr)
		}
		return true, c.wrap("telegram: post "+c.shown+": "+reason(err), notify.UnwrapURLError(err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))

	var ar apiResponse
	jsonErr := json.Unmarshal(raw, &ar)
	if resp.StatusCode == http.StatusOK && jsonErr == nil && ar.OK {
		return false, nil
	}

	apiErr := &APIError{
		StatusCode:      resp.StatusCode,
		ErrorCode:       ar.ErrorCode,
		Description:     c.scrub(ar.Description),
		MigrateToChatID: ar.Parameters.MigrateToChatID,
	}
	if jsonErr != nil || apiErr.Description == "" {
		apiErr.Description = c.scrub(notify.Excerpt(raw))
	}
	code := resp.StatusCode
	if code == http.StatusOK {
		// 200 without {"ok":true}: trust Telegram's error_code if it gave
		// one; otherwise something in between answered, and since nothing
		// proves the message went out, try again.
		if ar.ErrorCode == 0 {
			return true, apiErr
		}
		code = ar.ErrorCode
	}
	switch {
	case code == http.StatusTooManyRequests:
		secs := ar.Parameters.RetryAfter
		if secs <= 0 {
			// Not Telegram itself (a proxy?); the HTTP header may still say.
			secs, _ = strconv.ParseInt(strings.TrimSpace(resp.Header.Get("Retry-After")), 10, 64)
		}
		if secs <= 0 {
			return true, apiErr
		}
		after := time.Duration(min(secs, int64(MaxRetryAfter/time.Second))) * time.Second
		apiErr.RetryAfter = after
		c.backOff(s, c.now().Add(after))
		c.log.Warn("telegram asked to slow down", "chat_id", chatID, "retry_after", after)
		return true, &notify.RetryAfterError{After: after, Err: apiErr}
	case code == http.StatusRequestTimeout, code >= 500 && code <= 599:
		return true, apiErr
	default:
		return false, apiErr
	}
}

// APIError is a Bot API answer other than {"ok":true}.
type APIError struct {
	StatusCode  int    // HTTP status
	ErrorCode   int    // Telegram's error_code, 0 if the body was not Telegram's
	Description string // Telegram's description, or the start of the body
	// RetryAfter is parameters.retry_after of a 429.
	RetryAfter time.Duration
	// MigrateToChatID is set when a group became a supergroup: the channel
	// must be updated to this chat id.
	MigrateToChatID int64
}

func (e *APIError) Error() string {
	code := e.ErrorCode
	if code == 0 {
		code = e.StatusCode
	}
	msg := "telegram: sendMessage failed with " + strconv.Itoa(code)
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.MigrateToChatID != 0 {
		msg += fmt.Sprintf(" (the group is now supergroup %d; update the channel's chat_id)", e.MigrateToChatID)
	}
	return msg
}

// tokenFreeError carries a message already scrubbed of the token while
// still letting errors.Is/As see the cause (context.DeadlineExceeded,
// net.Error).
type tokenFreeError struct {
	msg string
	err error
}

func (e *tokenFreeError) Error() string { return e.msg }
func (e *tokenFreeError) Unwrap() error { return e.err }

func (c *Client) wrap(msg string, cause error) error {
	return &tokenFreeError{msg: c.scrub(msg), err: cause}
}

// scrub replaces every form of the token in s. Our own texts never hold it;
// this catches texts from below us (net/http, a proxy, a stand-in server).
func (c *Client) scrub(s string) string {
	for _, f := range c.secrets {
		s = strings.ReplaceAll(s, f, tokenMark)
	}
	return s
}

func reason(err error) string { return notify.UnwrapURLError(err).Error() }
