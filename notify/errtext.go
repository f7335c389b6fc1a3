package notify

import (
	"errors"
	"net/url"
	"strings"
	"unicode"
)

// MaxErrorExcerpt is how much of a receiver's answer goes into an error.
const MaxErrorExcerpt = 256

// UnwrapURLError drops *url.Error, whose text repeats the full request URL
// (with any token or credentials in it). Channels build their own messages
// around what is left.
func UnwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Excerpt turns the start of a receiver's answer into one short, printable
// line for last_error and logs.
func Excerpt(b []byte) string {
	truncated := len(b) > MaxErrorExcerpt
	if truncated {
		b = b[:MaxErrorExcerpt]
	}
	// The cut may have split a multi-byte rune; ToValidUTF8 drops it.
	s := strings.ToValidUTF8(string(b), "")
	if truncated {
		s += "…"
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
