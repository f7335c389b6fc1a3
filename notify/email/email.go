package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/lunasentri/lunasentri/notify"
)

// TLS modes of the SMTP connection.
const (
	TLSNone     = "none"     // plain SMTP (a relay on localhost)
	TLSStartTLS = "starttls" // port 587: upgrade with STARTTLS, required
	TLSImplicit = "tls"      // port 465: TLS from the first byte
)

// DefaultTimeout bounds one delivery (dial, TLS, auth, DATA) when the
// context has no earlier deadline. SMTP servers greylist and do DNS checks;
// 30 s leaves room for that and still frees the dispatcher worker.
const DefaultTimeout = 30 * time.Second

// maxRecipients bounds a channel's "to".
const maxRecipients = 50

// Sentinel errors.
var (
	ErrInvalidConfig    = errors.New("invalid email channel")
	ErrNotConfigured    = errors.New("smtp is not configured on this server (-smtp-addr)")
	ErrUnknownEventType = errors.New("unknown event type")
	ErrEmptyDigest      = errors.New("digest has no events")
)

// Server is the node's SMTP settings.
type Server struct {
	Addr     string // host:port; empty: email channels cannot send
	Username string
	Password string
	TLS      string // TLSNone, TLSStartTLS (default when empty) or TLSImplicit
	From     string // default sender
	// TLSConfig overrides the TLS client configuration (tests add their
	// CA). nil: system roots, ServerName from Addr.
	TLSConfig *tls.Config
	// HelloName is the EHLO name. Empty: "lunasentri".
	HelloName string
}

// ValidateServer checks the node's SMTP settings (at start-up).
func ValidateServer(s Server) error {
	if s.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		return fmt.Errorf("-smtp-addr must be host:port: %v", err)
	}
	switch s.TLS {
	case "", TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return fmt.Errorf("-smtp-tls must be none, starttls or tls, got %q", s.TLS)
	}
	if s.From != "" {
		if _, err := mail.ParseAddress(s.From); err != nil {
			return fmt.Errorf("-smtp-from is not an email address: %v", err)
		}
	}
	if (s.Username == "") != (s.Password == "") {
		return errors.New("-smtp-username and -smtp-password go together")
	}
	if s.TLS == TLSNone && s.Username != "" {
		host, _, _ := net.SplitHostPort(s.Addr)
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("-smtp-tls none would send the smtp password in clear text; use starttls or tls (none with a password is allowed for a loopback relay only)")
		}
	}
	return nil
}

// Validate checks a channel's settings; errors are fit for a 400.
// serverFrom is the node's default sender: a channel needs a sender from
// one or the other.
func Validate(to []string, from, serverFrom string) error {
	if len(to) == 0 {
		return fmt.Errorf("%w: to needs at least one address", ErrInvalidConfig)
	}
	if len(to) > maxRecipients {
		return fmt.Errorf("%w: at most %d addresses in to, got %d", ErrInvalidConfig, maxRecipients, len(to))
	}
	for i, a := range to {
		if err := plainAddress(a); err != nil {
			return fmt.Errorf("%w: to[%d]: %v", ErrInvalidConfig, i, err)
		}
	}
	if from != "" {
		if _, err := mail.ParseAddress(from); err != nil {
			return fmt.Errorf("%w: from is not an email address: %v", ErrInvalidConfig, err)
		}
	} else if serverFrom == "" {
		return fmt.Errorf("%w: from is required (the server has no -smtp-from)", ErrInvalidConfig)
	}
	return nil
}

// plainAddress accepts "user@host" or "Name <user@host>".
func plainAddress(a string) error {
	if strings.ContainsAny(a, "\r\n") {
		return errors.New("address contains a line break")
	}
	if _, err := mail.ParseAddress(a); err != nil {
		return fmt.Errorf("%q is not an email address", a)
	}
	return nil
}

// Options configures a Notifier for one email channel.
type Options struct {
	Server Server
	To     []string
	From   string // overrides Server.From
	Now    func() time.Time
}

// Notifier mails one channel's recipients. Safe for concurrent use: every
// delivery is its own SMTP session.
type Notifier struct {
	server Server
	from   *mail.Address
	to     []*mail.Address
	now    func() time.Time
}

var (
	_ notify.Notifier       = (*Notifier)(nil)
	_ notify.DigestNotifier = (*Notifier)(nil)
)

// New validates opts. A node without SMTP settings still gets a Notifier,
// whose every delivery fails permanently with ErrNotConfigured, so the
// event says why.
func New(opts Options) (*Notifier, error) {
	if err := ValidateServer(opts.Server); err != nil {
		return nil, err
	}
	if err := Validate(opts.To, opts.From, opts.Server.From); err != nil {
		return nil, err
	}
	n := &Notifier{server: opts.Server, now: opts.Now}
	if n.now == nil {
		n.now = time.Now
	}
	from := opts.From
	if from == "" {
		from = opts.Server.From
	}
	var err error
	if n.from, err = mail.ParseAddress(from); err != nil {
		return nil, err
	}
	if n.from.Name == "" {
		n.from.Name = "LunaSentri"
	}
	for _, a := range opts.To {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, err
		}
		n.to = append(n.to, addr)
	}
	return n, nil
}

// Notify mails ev.
func (n *Notifier) Notify(ctx context.Context, ev notify.Event) (bool, error) {
	c, err := eventMail(ev)
	if err != nil {
		return false, err
	}
	id := ev.ID
	if id == "" {
		id = fmt.Sprintf("%s-%d", ev.Type, n.now().UnixNano())
	}
	msg, err := n.compose(c, id, ev.Type)
	if err != nil {
		return false, err
	}
	return n.send(ctx, msg)
}

// NotifyDigest mails a digest as one message.
func (n *Notifier) NotifyDigest(ctx context.Context, d notify.Digest) (bool, error) {
	if len(d.Events) == 0 {
		return false, ErrEmptyDigest
	}
	msg, err := n.compose(digestMail(d), d.ID, notify.EventDigest)
	if err != nil {
		return false, err
	}
	return n.send(ctx, msg)
}

// send makes one SMTP session: dial, TLS, auth, MAIL/RCPT/DATA, QUIT.
func (n *Notifier) send(ctx context.Context, msg []byte) (bool, error) {
	s := n.server
	if s.Addr == "" {
		return false, ErrNotConfigured
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("email: not sent: %w", err)
	}
	deadline := n.now().Add(DefaultTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	host, _, _ := net.SplitHostPort(s.Addr)
	tlsConfig := s.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return true, n.errorf(err, "email: connect to %s: %v", s.Addr, err)
	}
	_ = conn.SetDeadline(deadline)
	// Cancelling ctx ends the session at once.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var c *smtp.Client
	switch s.TLS {
	case TLSImplicit:
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return n.classify(ctx, err, "tls handshake with "+s.Addr)
		}
		c = smtp.NewClient(tc)
	case TLSNone:
		c = smtp.NewClient(conn)
	default: // starttls
		c, err = smtp.NewClientStartTLS(conn, tlsConfig)
		if err != nil {
			conn.Close()
			return n.classify(ctx, err, "starttls with "+s.Addr)
		}
	}
	defer c.Close()
	name := s.HelloName
	if name == "" {
		name = "lunasentri"
	}
	if err := c.Hello(name); err != nil {
		return n.classify(ctx, err, "hello")
	}
	if s.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
			return n.classify(ctx, err, "auth as "+s.Username)
		}
	}
	to := make([]string, len(n.to))
	for i, a := range n.to {
		to[i] = a.Address
	}
	if err := c.SendMail(n.from.Address, to, bytes.NewReader(msg)); err != nil {
		return n.classify(ctx, err, "send")
	}
	_ = c.Quit()
	return false, nil
}

// classify turns an SMTP session error into (retryable, error).
func (n *Notifier) classify(ctx context.Context, err error, what string) (bool, error) {
	if cerr := ctx.Err(); cerr != nil {
		return true, n.errorf(cerr, "email: %s: %v", what, cerr)
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code >= 400 && se.Code < 500, n.errorf(err, "email: %s: server answered %d %s", what, se.Code, se.Message)
	}
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &ce) {
		return false, n.errorf(err, "email: %s: %v", what, err)
	}
	return true, n.errorf(err, "email: %s: %v", what, err)
}

// errorf builds an error whose text never holds the password.
func (n *Notifier) errorf(cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if p := n.server.Password; len(p) >= 4 {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return &sendError{msg: msg, err: cause}
}

type sendError struct {
	msg string
	err error
}

func (e *sendError) Error() string { return e.msg }
func (e *sendError) Unwrap() error { return e.err }
