package transport

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Input limits. Every one is explicit and answered with a 400 naming it.
const (
	maxNameLen        = 64
	maxHostnameLen    = 253
	maxDescriptionLen = 1024
	maxLabels         = 32
	maxLabelKeyLen    = 63
	maxLabelValueLen  = 256
	minThreshold      = time.Second
	maxThreshold      = 30 * 24 * time.Hour
	maxEventsLimit    = 10000
	defaultEventLimit = 100
)

var (
	nameRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	labelKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

func validateName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is required", kind)
	case len(name) > maxNameLen:
		return fmt.Errorf("%s name is longer than %d characters", kind, maxNameLen)
	case !nameRe.MatchString(name):
		return fmt.Errorf("%s name %q must start with a letter or digit and contain only letters, digits, '.', '_' and '-'", kind, name)
	}
	return nil
}

func validateText(field, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%s is longer than %d bytes", field, limit)
	}
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00") {
		return fmt.Errorf("%s must be valid UTF-8 text", field)
	}
	return nil
}

func validateLabels(field string, labels map[string]string) error {
	if len(labels) > maxLabels {
		return fmt.Errorf("%s: at most %d labels", field, maxLabels)
	}
	for k, v := range labels {
		if len(k) > maxLabelKeyLen || !labelKeyRe.MatchString(k) {
			return fmt.Errorf("%s: key %q must match %s and be at most %d characters", field, k, labelKeyRe, maxLabelKeyLen)
		}
		if err := validateText(field+" value of "+k, v, maxLabelValueLen); err != nil {
			return err
		}
		if hasControl(v, false) { // issue 11
			return fmt.Errorf("%s value of %s must not contain control characters such as newlines", field, k)
		}
	}
	return nil
}

// flexDuration accepts a Go duration string ("90s", "2m") or a number of
// seconds.
type flexDuration struct {
	D   time.Duration
	Set bool
}

func (d *flexDuration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (use Go syntax like 90s or 2m)", s)
		}
		d.D, d.Set = v, true
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("must be a duration string like \"2m\" or a number of seconds")
	}
	d.D, d.Set = time.Duration(secs*float64(time.Second)), true
	return nil
}

func validateThreshold(d flexDuration) error {
	if !d.Set {
		return nil
	}
	if d.D < minThreshold || d.D > maxThreshold {
		return fmt.Errorf("offline_threshold must be between %s and %s", minThreshold, maxThreshold)
	}
	return nil
}

func parseLimit(s string) (int, error) {
	if s == "" {
		return defaultEventLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxEventsLimit {
		return 0, fmt.Errorf("limit must be an integer between 1 and %d", maxEventsLimit)
	}
	return n, nil
}

// hasControl reports control characters (C0, DEL, C1); allowLines lets tab
// and newline through (descriptions). Issue 11: names, hostnames and label
// values are rendered in terminals, Telegram and HTML, where a newline or
// an escape sequence could forge lines.
func hasControl(s string, allowLines bool) bool {
	for _, r := range s {
		if allowLines && (r == '\n' || r == '\t') {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}
