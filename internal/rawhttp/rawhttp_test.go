package rawhttp

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	for _, c := range []struct {
		name, in  string
		code      int
		keepAlive bool
		err       error
		rest      string // what is left for the next response
	}{
		{"content-length", "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"status\":\"accepted\"}\nNEXT", 202, true, nil, "NEXT"},
		{"no body", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\nNEXT", 204, true, nil, "NEXT"},
		{"close", "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", 503, false, nil, ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\nNEXT", 200, true, nil, "NEXT"},
		{"to EOF", "HTTP/1.0 200 OK\r\n\r\nbody", 200, false, nil, "body"},
		{"header without colon is skipped", "HTTP/1.1 202 Accepted\r\nodd\r\nContent-Length: 0\r\n\r\n", 202, true, nil, ""},
		{"not HTTP", "SSH-2.0-x\r\n\r\n", 0, false, ErrMalformed, ""},
		{"bad status", "HTTP/1.1 2x2 Accepted\r\n\r\n", 0, false, ErrMalformed, ""},
		{"bad length", "HTTP/1.1 202 Accepted\r\nContent-Length: -1\r\n\r\n", 0, false, ErrMalformed, ""},
		{"cut short", "HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\nabc", 0, false, io.EOF, ""},
		{"nothing", "", 0, false, io.EOF, ""},
	} {
		br := bufio.NewReader(strings.NewReader(c.in))
		code, keep, err := ReadResponse(br)
		if code != c.code || keep != c.keepAlive || !errors.Is(err, c.err) {
			t.Errorf("%s: %d, %v, %v; want %d, %v, %v", c.name, code, keep, err, c.code, c.keepAlive, c.err)
			continue
		}
		if rest, _ := io.ReadAll(br); err == nil && string(rest) != c.rest {
			t.Errorf("%s: left %q, want %q", c.name, rest, c.rest)
		}
	}
}
