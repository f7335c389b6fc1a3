package email_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/email"
)

// received is one mail as the SMTP server got it.
type received struct {
	from string
	to   []string
	data []byte
	auth string // username that authenticated
	tls  bool
}

// backend is a go-smtp server backend that keeps every mail.
type backend struct {
	mu       sync.Mutex
	mails    []received
	password string // "" → no auth offered
	reject   *smtp.SMTPError
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{b: b, c: c}, nil
}

func (b *backend) all() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.mails...)
}

type session struct {
	b *backend
	c *smtp.Conn
	r received
}

func (s *session) AuthMechanisms() []string {
	if s.b.password == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if password != s.b.password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.r.auth = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.password != "" && s.r.auth == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	s.r.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.b.reject != nil {
		return s.b.reject
	}
	s.r.to = append(s.r.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.data = data
	_, s.r.tls = s.c.TLSConnectionState() // after STARTTLS, if any
	s.b.mu.Lock()
	s.b.mails = append(s.b.mails, s.r)
	s.b.mu.Unlock()
	return nil
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// selfSigned returns a server certificate for 127.0.0.1 and a client
// config that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *tls.Config) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// startSMTP runs go-smtp's server in-process; mode is the client's TLS mode.
func startSMTP(t *testing.T, be *backend, mode string, serverTLS *tls.Config) string {
	t.Helper()
	s := smtp.NewServer(be)
	s.Domain = "smtp.test"
	s.AllowInsecureAuth = mode == email.TLSNone
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.ErrorLog = nopLogger{}
	var ln net.Listener
	var err error
	if mode == email.TLSImplicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	} else {
		s.TLSConfig = serverTLS
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ln.Addr().String()
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}
func (nopLogger) Println(...interface{})        {}

var seen = time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)

func offline() notify.Event {
	return notify.Event{ID: "evt-0001", Type: notify.EventOffline, OccurredAt: seen.Add(2 * time.Minute),
		Reason: notify.ReasonReported, Message: "disk <b>full</b> & sad",
		Machine: notify.Machine{Name: "db-1 ☃ <script>", Hostname: "db-1.example", Description: "primary", LastSeen: &seen}}
}

// parsed is a received mail taken apart with net/mail and mime/multipart.
type parsed struct {
	header      mail.Header
	subject     string
	plain, html string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("net/mail: %v\n%s", err, data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	p := parsed{header: msg.Header, subject: subject}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(part)
		switch ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); ct {
		case "text/plain":
			p.plain = string(body)
		case "text/html":
			p.html = string(body)
		default:
			t.Errorf("unexpected part %s", ct)
		}
	}
	if p.plain == "" || p.html == "" {
		t.Fatalf("want a plain and an html part:\n%s", data)
	}
	return p
}

func TestNotify_AllTLSModes(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	for _, mode := range []string{email.TLSNone, email.TLSStartTLS, email.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			be := &backend{password: "s3cret-smtp"}
			addr := startSMTP(t, be, mode, serverTLS)
			n, err := email.New(email.Options{
				Server: email.Server{Addr: addr, Username: "luna", Password: "s3cret-smtp", TLS: mode, From: "alerts@luna.test", TLSConfig: clientTLS},
				To:     []string{"ops@example.com", "Jane Doe <jane@example.com>"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if retryable, err := n.Notify(context.Background(), offline()); err != nil || retryable {
				t.Fatalf("Notify = %v, %v", retryable, err)
			}
			mails := be.all()
			if len(mails) != 1 {
				t.Fatalf("%d mails", len(mails))
			}
			m := mails[0]
			if m.from != "alerts@luna.test" || strings.Join(m.to, ",") != "ops@example.com,jane@example.com" || m.auth != "luna" {
				t.Errorf("envelope %+v", m)
			}
			if m.tls != (mode != email.TLSNone) {
				t.Errorf("tls = %v in mode %s", m.tls, mode)
			}
			p := parse(t, m.data)
			if p.subject != "[LunaSentri] db-1 ☃ <script> is offline" {
				t.Errorf("subject %q", p.subject)
			}
			if p.header.Get("Message-ID") != "<evt-0001@lunasentri>" || p.header.Get("X-LunaSentri-Delivery") != "evt-0001" ||
				p.header.Get("X-LunaSentri-Event") != "machine.offline" || !strings.Contains(p.header.Get("From"), "alerts@luna.test") {
				t.Errorf("headers %v", p.header)
			}
			for _, want := range []string{"Hostname: db-1.example", "Last seen: 2026-11-27 08:30:00 UTC", "Reason: reported: disk <b>full</b> & sad", "Description: primary"} {
				if !strings.Contains(p.plain, want) {
					t.Errorf("plain part lacks %q:\n%s", want, p.plain)
				}
			}
			if strings.Contains(p.html, "<script>") || strings.Contains(p.html, "<b>full") ||
				!strings.Contains(p.html, "db-1 ☃ &lt;script&gt; is offline") || !strings.Contains(p.html, "disk &lt;b&gt;full&lt;/b&gt; &amp; sad") {
				t.Errorf("html part is not escaped:\n%s", p.html)
			}
			if mode == email.TLSStartTLS {
				t.Logf("plain part:\n%s\nhtml part:\n%s", p.plain, p.html)
			}
		})
	}
}

func TestNotifyDigest_OneMail(t *testing.T) {
	be := &backend{}
	addr := startSMTP(t, be, email.TLSNone, nil)
	n, err := email.New(email.Options{Server: email.Server{Addr: addr, TLS: email.TLSNone, From: "alerts@luna.test"}, To: []string{"ops@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	d := notify.Digest{ID: "dig-9", GroupBy: []string{"env"}}
	for i := range 12 {
		ev := offline()
		ev.Machine.Name = fmt.Sprintf("web-%02d", i)
		ev.Machine.Labels = map[string]string{"env": "prod"}
		if i >= 9 {
			ev.Type = notify.EventOnline
		}
		d.Events = append(d.Events, ev)
	}
	if _, err := n.NotifyDigest(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	mails := be.all()
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	p := parse(t, mails[0].data)
	t.Logf("digest subject %q\n%s", p.subject, p.plain)
	if p.subject != "[LunaSentri] digest: 9 offline, 3 online" || p.header.Get("X-LunaSentri-Event") != "machine.digest" {
		t.Errorf("subject %q, headers %v", p.subject, p.header)
	}
	for _, want := range []string{"env=prod: 9 offline, 3 online", "offline  web-00", "online   web-11"} {
		if !strings.Contains(p.plain, want) {
			t.Errorf("plain lacks %q", want)
		}
	}
	if !strings.Contains(p.html, "web-11") {
		t.Errorf("html lacks names")
	}
}

func TestNotify_Classification(t *testing.T) {
	serverTLS, _ := selfSigned(t)
	ctx := context.Background()

	t.Run("4xx retryable", func(t *testing.T) {
		be := &backend{reject: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, try later"}}
		addr := startSMTP(t, be, email.TLSNone, nil)
		n, _ := email.New(email.Options{Server: email.Server{Addr: addr, TLS: email.TLSNone, From: "a@b.c"}, To: []string{"x@y.z"}})
		retryable, err := n.Notify(ctx, offline())
		if !retryable || err == nil || !strings.Contains(err.Error(), "451") {
			t.Errorf("%v %v", retryable, err)
		}
	})
	t.Run("5xx permanent", func(t *testing.T) {
		be := &backend{reject: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}}
		addr := startSMTP(t, be, email.TLSNone, nil)
		n, _ := email.New(email.Options{Server: email.Server{Addr: addr, TLS: email.TLSNone, From: "a@b.c"}, To: []string{"x@y.z"}})
		retryable, err := n.Notify(ctx, offline())
		if retryable || err == nil || !strings.Contains(err.Error(), "no such user") {
			t.Errorf("%v %v", retryable, err)
		}
	})
	t.Run("bad password permanent and hidden", func(t *testing.T) {
		be := &backend{password: "right-password"}
		addr := startSMTP(t, be, email.TLSNone, nil)
		n, _ := email.New(email.Options{Server: email.Server{Addr: addr, TLS: email.TLSNone, From: "a@b.c", Username: "u", Password: "wrong-password"}, To: []string{"x@y.z"}})
		retryable, err := n.Notify(ctx, offline())
		if retryable || err == nil || strings.Contains(err.Error(), "wrong-password") {
			t.Errorf("%v %v", retryable, err)
		}
	})
	t.Run("untrusted certificate permanent", func(t *testing.T) {
		addr := startSMTP(t, &backend{}, email.TLSImplicit, serverTLS)
		n, _ := email.New(email.Options{Server: email.Server{Addr: addr, TLS: email.TLSImplicit, From: "a@b.c"}, To: []string{"x@y.z"}})
		retryable, err := n.Notify(ctx, offline())
		if retryable || err == nil {
			t.Errorf("%v %v", retryable, err)
		}
	})
	t.Run("connection refused retryable", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		n, _ := email.New(email.Options{Server: email.Server{Addr: addr, TLS: email.TLSNone, From: "a@b.c"}, To: []string{"x@y.z"}})
		if retryable, err := n.Notify(ctx, offline()); !retryable || err == nil {
			t.Errorf("%v %v", retryable, err)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		n, err := email.New(email.Options{To: []string{"x@y.z"}, From: "a@b.c"})
		if err != nil {
			t.Fatal(err)
		}
		if retryable, err := n.Notify(ctx, offline()); retryable || !errors.Is(err, email.ErrNotConfigured) {
			t.Errorf("%v %v", retryable, err)
		}
	})
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		to               []string
		from, serverFrom string
		want             string
	}{
		{nil, "a@b.c", "", "at least one address"},
		{[]string{"not an address"}, "a@b.c", "", "to[0]"},
		{[]string{"x@y.z\r\nBcc: evil@x"}, "a@b.c", "", "line break"},
		{[]string{"x@y.z"}, "", "", "from is required"},
		{[]string{"x@y.z"}, "nope", "", "from is not an email address"},
	} {
		if err := email.Validate(tc.to, tc.from, tc.serverFrom); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%q, %q) = %v, want %q", tc.to, tc.from, err, tc.want)
		}
	}
	if err := email.Validate([]string{"x@y.z"}, "", "server@y.z"); err != nil {
		t.Errorf("server from: %v", err)
	}
	for _, s := range []email.Server{{Addr: "nohost"}, {Addr: "h:25", TLS: "ssl"}, {Addr: "smtp.example.com:25", TLS: email.TLSNone, Username: "u", Password: "p"}, {Addr: "h:25", Username: "u"}} {
		if err := email.ValidateServer(s); err == nil {
			t.Errorf("ValidateServer(%+v) passed", s)
		}
	}
}
