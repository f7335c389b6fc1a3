package telegram_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/telegram"
)

// Rate-limit tests run in a testing/synctest bubble: the limiters' clock
// is the bubble's fake one, and the stand-in Telegram answers in process
// (a RoundTripper, no socket), so arrival times are exact and a loaded
// machine cannot blur them: no jitter allowance.

// bubbleAPI is a Telegram stand-in for a synctest bubble: it answers every
// sendMessage with ok and notes when (bubble time) and for which chat.
type bubbleAPI struct {
	mu   sync.Mutex
	reqs []bubbleRequest
}

type bubbleRequest struct {
	chat string
	at   time.Time
}

func (b *bubbleAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	var body struct {
		ChatID string `json:"chat_id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	r.Body.Close()
	b.mu.Lock()
	b.reqs = append(b.reqs, bubbleRequest{chat: body.ChatID, at: time.Now()})
	b.mu.Unlock()
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	io.WriteString(rec, `{"ok":true,"result":{"message_id":1}}`)
	return rec.Result(), nil
}

func (b *bubbleAPI) requests() []bubbleRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bubbleRequest(nil), b.reqs...)
}

func bubbleClient(t *testing.T, api *bubbleAPI, opts telegram.Options) *telegram.Client {
	t.Helper()
	opts.Token, opts.APIURL, opts.HTTPClient = testToken, "http://telegram.invalid", &http.Client{Transport: api}
	return newClient(t, opts)
}

func TestRateLimit_PerChat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		api := &bubbleAPI{}
		c := bubbleClient(t, api, telegram.Options{PerChatInterval: interval, GlobalRate: -1})

		var wg sync.WaitGroup
		start := time.Now()
		for range 4 {
			wg.Go(func() {
				if _, err := c.Chat("111").Notify(context.Background(), offlineEvent()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Go(func() {
			if _, err := c.Chat("222").Notify(context.Background(), offlineEvent()); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()

		var a []time.Duration
		b := time.Duration(-1)
		for _, r := range api.requests() {
			if r.chat == "111" {
				a = append(a, r.at.Sub(start))
			} else {
				b = r.at.Sub(start)
			}
		}
		// One message at once, then one per interval; the other chat
		// at once, not queued behind the busy one.
		want := []time.Duration{0, interval, 2 * interval, 3 * interval}
		if fmt.Sprint(a) != fmt.Sprint(want) || b != 0 {
			t.Errorf("chat 111 messages at %v, chat 222 at %v; want %v and 0s", a, b, want)
		}
	})
}

func TestRateLimit_Global(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const perSecond = 20 // one every 50ms
		api := &bubbleAPI{}
		c := bubbleClient(t, api, telegram.Options{PerChatInterval: -1, GlobalRate: rate.Limit(perSecond)})

		const n = 6
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			wg.Go(func() {
				if _, err := c.Chat(fmt.Sprint(1000+i)).Notify(context.Background(), offlineEvent()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		reqs := api.requests()
		if len(reqs) != n {
			t.Fatalf("got %d requests, want %d", len(reqs), n)
		}
		const interval = time.Second / perSecond
		for i, r := range reqs {
			if at := r.at.Sub(start); at != time.Duration(i)*interval {
				t.Errorf("message %d at %s, want %s (burst 1, then one per %s)", i, at, time.Duration(i)*interval, interval)
			}
		}
	})
}

func TestRateLimit_WaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &bubbleAPI{}
		c := bubbleClient(t, api, telegram.Options{PerChatInterval: time.Hour})
		ch := c.Chat(testChatID)
		if _, err := ch.Notify(context.Background(), offlineEvent()); err != nil {
			t.Fatal(err)
		}

		// A deadline the wait cannot meet fails at once (no time passes
		// in the bubble).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		retryable, err := ch.Notify(ctx, offlineEvent())
		if !retryable || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, telegram.ErrRateLimitWait) {
			t.Errorf("Notify with short deadline = %v, %v; want retryable ErrRateLimitWait", retryable, err)
		}
		if d, ok := notify.RetryAfter(err); !ok || d != time.Hour {
			t.Errorf("RetryAfter = %s, %v; want the 1h per-chat interval", d, ok)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("Notify waited %s for a wait that could not succeed", waited)
		}

		// Cancellation ends a wait that has no deadline.
		ctx2, cancel2 := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := ch.Notify(ctx2, offlineEvent())
			done <- err
		}()
		synctest.Wait() // the goroutine is waiting in the limiter
		cancel2()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Notify after cancel = %v, want Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Notify did not return after its context was cancelled")
		}
		if n := len(api.requests()); n != 1 {
			t.Errorf("stand-in got %d requests, want 1", n)
		}
	})
}
