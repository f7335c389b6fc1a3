package jsonscan

import "strconv"

// Scanner reads B from I. Every method skips white space first and reports
// false (leaving I anywhere) on anything it does not accept.
type Scanner struct {
	B []byte
	I int
}

// WS skips JSON white space.
func (s *Scanner) WS() {
	for s.I < len(s.B) {
		switch s.B[s.I] {
		case ' ', '\t', '\n', '\r':
			s.I++
		default:
			return
		}
	}
}

// Byte consumes c if it comes next.
func (s *Scanner) Byte(c byte) bool {
	s.WS()
	if s.I < len(s.B) && s.B[s.I] == c {
		s.I++
		return true
	}
	return false
}

// Lit consumes the token t if it comes next.
func (s *Scanner) Lit(t string) bool {
	s.WS()
	if len(s.B)-s.I >= len(t) && string(s.B[s.I:s.I+len(t)]) == t {
		s.I += len(t)
		return true
	}
	return false
}

// End: nothing but white space is left.
func (s *Scanner) End() bool {
	s.WS()
	return s.I == len(s.B)
}

// PlainStringRaw reads a string of printable ASCII without escapes and
// returns it with its quotes.
func (s *Scanner) PlainStringRaw() ([]byte, bool) {
	s.WS()
	if s.I >= len(s.B) || s.B[s.I] != '"' {
		return nil, false
	}
	start := s.I
	for j := s.I + 1; j < len(s.B); j++ {
		switch c := s.B[j]; {
		case c == '"':
			s.I = j + 1
			return s.B[start:s.I], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// PlainString is PlainStringRaw's content, as a new string.
func (s *Scanner) PlainString() (string, bool) {
	raw, ok := s.PlainStringRaw()
	if !ok {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// Int64 reads an integer without fraction or exponent that fits int64.
func (s *Scanner) Int64() (int64, bool) {
	s.WS()
	start := s.I
	if s.I < len(s.B) && s.B[s.I] == '-' {
		s.I++
	}
	digits := s.I
	for s.I < len(s.B) && s.B[s.I] >= '0' && s.B[s.I] <= '9' {
		s.I++
	}
	n := s.I - digits
	if n == 0 || n > 19 || (n > 1 && s.B[digits] == '0') { // ParseInt refuses what overflows
		return 0, false
	}
	if s.I < len(s.B) {
		switch s.B[s.I] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(s.B[start:s.I]), 10, 64)
	return v, err == nil
}

// Object returns the raw bytes of an object whose strings are plain (no
// escapes, so braces inside them are the only thing to skip).
func (s *Scanner) Object() ([]byte, bool) {
	s.WS()
	if s.I >= len(s.B) || s.B[s.I] != '{' {
		return nil, false
	}
	start, depth := s.I, 0
	for ; s.I < len(s.B); s.I++ {
		switch s.B[s.I] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				s.I++
				return s.B[start:s.I], true
			}
		case '"':
			if _, ok := s.PlainStringRaw(); !ok {
				return nil, false
			}
			s.I-- // the loop steps past the closing quote
		}
	}
	return nil, false
}

// Beats reads `[{"i":ID,"<num>":N},…]` (either key order, each key once):
// the beat list that both hand-read batches carry, fsm's Raft entries
// with "t" (a time) and transport's forwarded batches with "a" (an age).
// Each beat takes at least minLen bytes (for the capacity); mk builds one
// element from an id and its number.
func Beats[T any](s *Scanner, num byte, minLen int, mk func(id string, n int64) T) ([]T, bool) {
	if !s.Byte('[') {
		return nil, false
	}
	out := make([]T, 0, (len(s.B)-s.I)/minLen+1)
	if s.Byte(']') {
		return out, true
	}
	for {
		if !s.Byte('{') {
			return nil, false
		}
		var id string
		var n int64
		var haveID, haveNum bool
		for k := 0; k < 2; k++ {
			if k == 1 && !s.Byte(',') {
				return nil, false
			}
			key, ok := s.PlainStringRaw()
			if !ok || len(key) != 3 || !s.Byte(':') {
				return nil, false
			}
			switch key[1] {
			case 'i':
				if haveID {
					return nil, false
				}
				if id, ok = s.PlainString(); !ok {
					return nil, false
				}
				haveID = true
			case num:
				if haveNum {
					return nil, false
				}
				if n, ok = s.Int64(); !ok {
					return nil, false
				}
				haveNum = true
			default:
				return nil, false
			}
		}
		if !s.Byte('}') {
			return nil, false
		}
		out = append(out, mk(id, n))
		if s.Byte(']') {
			return out, true
		}
		if !s.Byte(',') {
			return nil, false
		}
	}
}
