package telegram

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
)

// manualClock is Options.Now moved by hand; not a synctest bubble because
// these tests use real httptest servers (see fakeClock in client_test.go).
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (m *manualClock) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

func (m *manualClock) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = m.t.Add(d)
}

func (c *Client) chatCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.chats)
}

func okServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestChatLimiters_StayBounded(t *testing.T) {
	clock := &manualClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c, err := New(Options{Token: "1:x", APIURL: okServer(t).URL, Now: clock.Now, GlobalRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	ev := notify.Event{Type: notify.EventTest}
	peak := 0
	// One new chat every 1.1 s of clock time: each chat's limiter is idle
	// (and so droppable) long before the next sweep.
	for i := range 200 {
		if _, err := c.Chat(strconv.Itoa(1000+i)).Notify(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, c.chatCount())
		clock.Advance(1100 * time.Millisecond)
	}
	if limit := int(sweepEvery/(1100*time.Millisecond)) + 2; peak > limit {
		t.Errorf("chat map peaked at %d entries, want <= %d", peak, limit)
	}
}

func TestChatLimiters_KeepStateThatMatters(t *testing.T) {
	clock := &manualClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c, err := New(Options{Token: "1:x", APIURL: okServer(t).URL, Now: clock.Now, GlobalRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	ev := notify.Event{Type: notify.EventTest}
	for _, id := range []string{"1", "2", "3"} {
		if _, err := c.Chat(id).Notify(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	// Chat 2 is backing off for an hour (as after a 429).
	s, _ := c.acquire("2")
	c.backOff(s, clock.Now().Add(time.Hour))
	c.release(s)

	clock.Advance(2 * sweepEvery)
	if _, err := c.Chat("4").Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	_, kept := c.chats["2"]
	n := len(c.chats)
	c.mu.Unlock()
	if !kept || n != 2 {
		t.Errorf("after a sweep: %d chats, back-off kept %v; want chats 2 and 4 only", n, kept)
	}
	if _, err := c.Chat("2").Notify(context.Background(), ev); err == nil {
		t.Error("chat 2 sent during its back-off")
	}
}
