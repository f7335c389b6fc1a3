// Package email sends LunaSentri notifications as email over SMTP (docs/api.md
// "More channel types").
//
// The SMTP server is a node setting (-smtp-addr, -smtp-username,
// -smtp-password or LUNASENTRI_SMTP_PASSWORD, -smtp-tls none|starttls|tls,
// -smtp-from); a channel names its recipients ("to") and may override the
// sender ("from").
//
// It owns the message: a subject that says what happened ("[LunaSentri]
// db-1 is offline"), a multipart/alternative body with a plain-text and an
// HTML part (every untrusted string HTML-escaped by html/template), a
// Message-ID derived from the event id so that a retried delivery is
// recognisably the same mail, and the X-LunaSentri-Event/-Delivery headers.
// A digest is one email. It classifies SMTP answers: 4xx replies, network
// errors and timeouts are retryable; 5xx replies (unknown recipient, auth
// refused) and TLS verification failures are permanent.
//
// It must never retry or sleep, send the password over a connection that is
// neither TLS nor loopback (the SMTP client refuses PLAIN auth there), put
// the password into an error, or let untrusted text into a header unencoded.
package email
