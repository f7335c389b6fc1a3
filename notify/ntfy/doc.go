// Package ntfy pushes LunaSentri notifications to an ntfy server
// (https://ntfy.sh or self-hosted; docs/api.md "More channel types"):
// POST {url}/{topic} with a plain-text body and the Title, Priority and
// Tags headers, and an optional bearer token (an ntfy access token).
//
// It owns the mapping: offline → priority 4 (high) with the red_circle tag,
// reported or reminder offline → the same, online → 3 (default) with
// green_circle, flapping → 3 with warning, test → 2 (low) with test_tube; a
// digest is one push with counts and names. Header values are ASCII: a
// title with other characters is RFC 2047-encoded, which ntfy decodes.
//
// It must never retry or sleep, nor put the token into an error or a log.
package ntfy
