package main

import "testing"

func TestSafeCell_EscapesControlCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"web-1":           "web-1",
		"evil\nFAKE LINE": `evil\x0aFAKE LINE`,
		"\x1b[31mred":     `\x1b[31mred`,
		"tab\there":       `tab\x09here`,
		"ünïcode":         "ünïcode",
	} {
		if got := safeCell(in); got != want {
			t.Errorf("safeCell(%q) = %q, want %q", in, got, want)
		}
	}
}
