package rawhttp

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
)

// ErrMalformed is a response that is not HTTP/1.x as net/http writes it.
var ErrMalformed = errors.New("malformed HTTP response")

// ReadResponse reads one response from br, discards its body, and returns
// its status and whether the connection may be used again (false after
// "Connection: close" or a body that runs to the end of the stream). An
// error leaves the connection unusable.
func ReadResponse(br *bufio.Reader) (code int, keepAlive bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 202 Accepted\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, ErrMalformed
	}
	if code, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, ErrMalformed
	}
	clen, chunked, closeConn := -1, false, false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if clen, err = strconv.Atoi(string(v)); err != nil || clen < 0 {
				return 0, false, ErrMalformed
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closeConn = bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			l, err := br.ReadSlice('\n')
			if err != nil {
				return 0, false, err
			}
			sz, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(l, []byte(";"), 2)[0])), 16, 64)
			if err != nil || sz < 0 {
				return 0, false, ErrMalformed
			}
			if _, err := br.Discard(int(sz) + 2); err != nil { // data + CRLF
				return 0, false, err
			}
			if sz == 0 {
				break
			}
		}
	case clen > 0:
		if _, err := br.Discard(clen); err != nil {
			return 0, false, err
		}
	case clen < 0:
		closeConn = true // the body runs to EOF: net/http never answers so here
	}
	return code, !closeConn, nil
}
