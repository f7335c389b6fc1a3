// Package telegram delivers LunaSentri notifications through the Telegram
// Bot API (docs/api.md, "Telegram delivery").
//
// It owns:
//   - the one Client a node shares between all its telegram channels: the
//     bot token, the HTTP client and the rate limits Telegram imposes (one
//     message a second per chat, 30 a second in all), plus the per-chat
//     back-off Telegram asks for with a 429's parameters.retry_after;
//   - the message text: MarkdownV2 with every variable part escaped
//     (EscapeMarkdownV2), including the offline reason, reminders, flapping
//     notices and digests (counts, the group_by breakdown and up to 20
//     names, always within Telegram's 4096 characters whatever the labels
//     and names are);
//   - classifying one attempt's outcome: {"ok":true} delivered; 429 (as
//     *notify.RetryAfterError), 408, 5xx, network errors and timeouts
//     retryable; other answers, a missing token or a bad chat id permanent;
//   - validating chat ids (ValidateChatID) for the HTTP API's 400 answers.
//
// It must never:
//   - log or return the bot token: it is part of every request URL, and
//     net/http repeats that URL in its errors, so every error text is
//     scrubbed before it leaves this package;
//   - decide retries beyond classification: a Notify call makes at most one
//     request, and the dispatcher in package notify owns the retry loop (the
//     only waiting done here is for the rate limiters, bounded by ctx);
//   - keep state that grows without bound: idle per-chat limiters are
//     dropped.
package telegram
