package telegram

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/lunasentri/lunasentri/notify"
)

// Bounds of the per-chat state map. Entries are dropped once idle, so the
// map holds roughly the chats used within the last PerChatInterval (at most
// GlobalRate × PerChatInterval of them, plus callers waiting).
const (
	sweepEvery = time.Minute // sweep at least this often…
	sweepAbove = 1024        // …and on every use while the map is this big
)

// chatState is one chat's limiter and Telegram-imposed back-off.
type chatState struct {
	lim *rate.Limiter
	// notBefore is when Telegram allows the next message (429 retry_after).
	notBefore time.Time
	// lastUsed is when the last Notify for this chat finished.
	lastUsed time.Time
	// users counts Notify calls holding this entry; it is never evicted
	// while one may still reserve from its limiter.
	users int
}

// acquire returns the chat's state, creating it if needed, and marks it in
// use. Callers must release it.
func (c *Client) acquire(chatID string) (s *chatState, notBefore time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.chats) >= sweepAbove || now.Sub(c.lastSweep) >= sweepEvery {
		c.sweepLocked(now)
	}
	s = c.chats[chatID]
	if s == nil {
		s = &chatState{lim: rate.NewLimiter(c.perChatLimit, 1)}
		c.chats[chatID] = s
	}
	s.users++
	return s, s.notBefore
}

func (c *Client) release(s *chatState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.users--
	s.lastUsed = c.now()
}

// backOff records Telegram's request to leave a chat alone until t.
func (c *Client) backOff(s *chatState, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(s.notBefore) {
		s.notBefore = t
	}
}

// sweepLocked drops chats whose state carries no information any more: no
// one is using them, a full PerChatInterval has passed since the last use
// (so their burst-1 limiter is full again, like a new one) and no back-off
// is pending. Dropping them changes no behaviour.
func (c *Client) sweepLocked(now time.Time) {
	c.lastSweep = now
	dropped := 0
	for id, s := range c.chats {
		if s.users == 0 && now.Sub(s.lastUsed) >= c.perChatInterval && !now.Before(s.notBefore) {
			delete(c.chats, id)
			dropped++
		}
	}
	if dropped > 0 {
		c.log.Trace("dropped idle chat limiters", "dropped", dropped, "remaining", len(c.chats))
	}
}

// wait blocks until lim allows one message or ctx ends. It is
// rate.Limiter.Wait on our injected clock: reserve now, sleep the delay,
// and hand the token back if ctx ends first, so an abandoned wait does not
// slow down the next caller.
func (c *Client) wait(ctx context.Context, lim *rate.Limiter) error {
	now := c.now()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return fmt.Errorf("telegram: rate limiter cannot grant a message") // burst is at least 1; unreachable
	}
	delay := r.DelayFrom(now)
	if delay <= 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
		// Waiting cannot succeed; say so now rather than at the deadline,
		// give the slot back, and tell the dispatcher when to come back.
		r.CancelAt(now)
		return &notify.RetryAfterError{
			After: delay,
			Err:   fmt.Errorf("%w (%s): %w", ErrRateLimitWait, delay.Round(time.Millisecond), context.DeadlineExceeded),
		}
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.CancelAt(c.now())
		return fmt.Errorf("telegram: waiting for rate limit: %w", ctx.Err())
	}
}
