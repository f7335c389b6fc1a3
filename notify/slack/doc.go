// Package slack posts LunaSentri notifications to a chat incoming webhook:
// Slack's, and Mattermost's and Rocket.Chat's, which accept the same JSON
// (docs/api.md "More channel types").
//
// It owns the payload: "text" (the line a phone notification shows) and one
// legacy attachment with a colour per status (red offline, green online,
// orange flapping, blue test), a title and short fields — the subset all
// three products render. Blocks are left out because Mattermost and
// Rocket.Chat ignore them. Text is escaped for Slack's mrkdwn (&, <, >),
// which the other two render as the same characters. A digest is one message
// with the counts, the group_by breakdown and up to 20 names.
//
// It must never retry or sleep (the dispatcher owns the retry loop), follow
// redirects, or show the webhook URL's path in an error: for all three
// products the path is the secret.
package slack
