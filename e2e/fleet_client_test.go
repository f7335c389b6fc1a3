package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/lunasentri/lunasentri/internal/rawhttp"
)

// beatClient sends the fleet's heartbeats: POST /v1/heartbeat with an
// empty JSON body and the machine's key, over plain HTTP/1.1 keep-alive
// connections it manages itself.
//
// Why not net/http's client: the fleet simulates 100 000 agents from one
// process on the same two cores as the three servers it loads, and
// net/http's client (two goroutines per connection, a context, header maps
// and a request object per call) cost about as much CPU as the servers
// (issue 14's soak, BENCHMARKS.md). This client writes one prepared
// request and reads the answer on the caller's goroutine with
// internal/rawhttp, as the bench's raw client does. It is a test tool,
// not an agent.
//
// Outcomes keep the distinction the verdict needs: a refused dial is
// "connection refused" (the beat was certainly not taken); any failure
// after the request was written is a network error (it may have been).
type beatClient struct {
	servers []*beatConns
	timeout time.Duration
}

// beatConns is one server's connections: at most max open, idle ones kept
// for reuse.
type beatConns struct {
	addr   string
	prefix []byte        // the request up to the key
	slots  chan struct{} // one per open connection
	mu     sync.Mutex
	idle   []*beatConn
	// epoch grows when a reused connection fails: idle connections of an
	// older epoch died with the same server process and are dropped
	// instead of failing one beat each.
	epoch int
}

type beatConn struct {
	c     net.Conn
	r     *bufio.Reader
	req   []byte // the request being written, reused
	epoch int
}

func newBeatClient(servers []string, timeout time.Duration, maxConnsPerServer int) (*beatClient, error) {
	bc := &beatClient{timeout: timeout}
	for _, s := range servers {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("beat client: %q is not an http:// base URL", s)
		}
		prefix := "POST /v1/heartbeat HTTP/1.1\r\nHost: " + u.Host +
			"\r\nContent-Type: application/json\r\nContent-Length: 2\r\nAuthorization: Bearer "
		bc.servers = append(bc.servers, &beatConns{
			addr: u.Host, prefix: []byte(prefix), slots: make(chan struct{}, maxConnsPerServer),
		})
	}
	return bc, nil
}

// beat sends one heartbeat for key to server idx: the HTTP status, or 0 and
// the error's text.
func (bc *beatClient) beat(ctx context.Context, idx int, key string) (int, error) {
	s := bc.servers[idx]
	deadline := time.Now().Add(bc.timeout)
	select {
	case s.slots <- struct{}{}:
	default: // every connection busy: wait, within the request's timeout
		timer := time.NewTimer(bc.timeout)
		defer timer.Stop()
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-timer.C:
			return 0, fmt.Errorf("POST %s: no connection free within %s", s.addr, bc.timeout)
		}
	}
	defer func() { <-s.slots }()
	conn, reused, err := s.get(deadline)
	if err != nil {
		return 0, err
	}
	code, keep, err := conn.roundTrip(s.prefix, key, deadline)
	if err != nil {
		conn.c.Close()
		if reused {
			s.mu.Lock()
			s.epoch++
			s.mu.Unlock()
		}
		return 0, fmt.Errorf("POST %s: %w", s.addr, err)
	}
	if keep {
		s.put(conn)
	} else {
		conn.c.Close()
	}
	return code, nil
}

// get takes an idle connection of the current epoch or dials a new one.
func (s *beatConns) get(deadline time.Time) (*beatConn, bool, error) {
	s.mu.Lock()
	for len(s.idle) > 0 {
		c := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if c.epoch == s.epoch {
			s.mu.Unlock()
			return c, true, nil
		}
		c.c.Close()
	}
	epoch := s.epoch
	s.mu.Unlock()
	d := net.Dialer{Deadline: deadline, Timeout: time.Second}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, false, fmt.Errorf("POST %s: connection refused", s.addr)
		}
		return nil, false, fmt.Errorf("POST %s: %w", s.addr, err)
	}
	return &beatConn{c: c, r: bufio.NewReaderSize(c, 1024), epoch: epoch}, false, nil
}

func (s *beatConns) put(c *beatConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.epoch != s.epoch {
		c.c.Close()
		return
	}
	s.idle = append(s.idle, c)
}

// closeIdle closes every idle connection to every server.
func (bc *beatClient) closeIdle() {
	for _, s := range bc.servers {
		s.closeIdle()
	}
}

func (s *beatConns) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.idle {
		c.c.Close()
	}
	s.idle = nil
}

// roundTrip writes the request and reads the response: its status and
// whether the connection may be used again.
func (c *beatConn) roundTrip(prefix []byte, key string, deadline time.Time) (int, bool, error) {
	if err := c.c.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	c.req = append(append(append(c.req[:0], prefix...), key...), "\r\n\r\n{}"...)
	if _, err := c.c.Write(c.req); err != nil {
		return 0, false, err
	}
	return rawhttp.ReadResponse(c.r)
}
