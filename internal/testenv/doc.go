// Package testenv is for tests only: it says what to do when the machine
// lacks something a test needs (root, iproute2, iptables or nft, Docker,
// prometheus, promtool, prometheus-alertmanager, amtool, Chromium).
//
// It owns one rule (issue 16): outside CI such a test skips, and when the
// CI environment variable is set it fails, so a CI run cannot pass while
// silently testing less than it claims. `make tools` installs what a
// Debian runner lacks. It must never be imported by non-test code.
//
// Skips that are opt-in modes, not missing capabilities (-short, an env
// variable that asks for a measurement or a docs refresh), stay t.Skip.
package testenv
