package telegram_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/telegram"
)

// Rate-limit tests run on the real clock with short intervals and measure
// arrival times at the stand-in; they synchronise on WaitGroups and
// channels, never on sleeps.

func TestRateLimit_PerChat(t *testing.T) {
	const interval = 100 * time.Millisecond
	api := newBotAPI(t, nil)
	c := newClient(t, telegram.Options{Token: testToken, APIURL: api.srv.URL, PerChatInterval: interval, GlobalRate: -1})

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

	var a []time.Time
	var b time.Time
	for _, r := range api.requests() {
		if r.fields["chat_id"] == "111" {
			a = append(a, r.at)
		} else {
			b = r.at
		}
	}
	if len(a) != 4 || b.IsZero() {
		t.Fatalf("got %d messages to chat 111 and %v to 222", len(a), b)
	}
	// Arrival order equals send order; allow for scheduling jitter between
	// the limiter releasing a caller and the stand-in seeing its request.
	const jitter = 25 * time.Millisecond
	for i := 1; i < len(a); i++ {
		if gap := a[i].Sub(a[i-1]); gap < interval-jitter {
			t.Errorf("messages %d and %d to one chat were %s apart, want >= %s", i-1, i, gap, interval)
		}
	}
	if total := a[3].Sub(start); total < 3*interval-jitter {
		t.Errorf("4 messages to one chat took %s, want >= %s", total, 3*interval)
	}
	// Another chat is not queued behind the busy one.
	if b.After(a[2]) {
		t.Errorf("chat 222 waited behind chat 111: arrived %s after start", b.Sub(start))
	}
}

func TestRateLimit_Global(t *testing.T) {
	const perSecond = 20 // one every 50ms
	api := newBotAPI(t, nil)
	c := newClient(t, telegram.Options{Token: testToken, APIURL: api.srv.URL, PerChatInterval: -1, GlobalRate: rate.Limit(perSecond)})

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
	const interval, jitter = time.Second / perSecond, 20 * time.Millisecond
	for i := 1; i < n; i++ {
		if gap := reqs[i].at.Sub(reqs[i-1].at); gap < interval-jitter {
			t.Errorf("messages %d and %d were %s apart, want >= %s", i-1, i, gap, interval)
		}
	}
	if total := reqs[n-1].at.Sub(start); total < (n-1)*interval-jitter {
		t.Errorf("%d messages took %s, want >= %s", n, total, (n-1)*interval)
	}
}

func TestRateLimit_WaitHonoursContext(t *testing.T) {
	api := newBotAPI(t, nil)
	c := newClient(t, telegram.Options{Token: testToken, APIURL: api.srv.URL, PerChatInterval: time.Hour})
	ch := c.Chat(testChatID)
	if _, err := ch.Notify(context.Background(), offlineEvent()); err != nil {
		t.Fatal(err)
	}

	// A deadline the wait cannot meet fails at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	retryable, err := ch.Notify(ctx, offlineEvent())
	if !retryable || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, telegram.ErrRateLimitWait) {
		t.Errorf("Notify with short deadline = %v, %v; want retryable ErrRateLimitWait", retryable, err)
	}
	if d, ok := notify.RetryAfter(err); !ok || d < 59*time.Minute || d > time.Hour {
		t.Errorf("RetryAfter = %s, %v; want about the 1h per-chat interval", d, ok)
	}
	if time.Since(start) > time.Second {
		t.Errorf("Notify waited %s for a wait that could not succeed", time.Since(start))
	}

	// Cancellation ends a wait that has no deadline.
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := ch.Notify(ctx2, offlineEvent())
		done <- err
	}()
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
}
