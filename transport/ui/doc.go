// Package ui is LunaSentri's face for people: the dashboard under /ui/ (fleet,
// machine, events, channels, cluster), the public status page at /status and
// the SVG badges under /badge/.
//
// It owns server-rendered HTML (html/template, embedded with the CSS, the one
// small script and nothing else), sign-in sessions, CSRF protection and the
// Content-Security-Policy, the server-sent-events stream that tells open pages
// to refresh, and the drawing of uptime bars and badges as SVG.
//
// It reads through small interfaces it owns (ReadModel, Authorizer, Actions)
// that cmd/lunasentri/internal/server wires to the node's replica, tokens and
// write paths. It must never write state except through Actions, never trust
// a name, label, message or error it displays (html/template escapes all of
// them, in HTML and in SVG), never run inline script (the CSP forbids it),
// never need JavaScript for a page to work, and never show keys, hostnames,
// labels or errors on the public status page or the badges.
package ui
