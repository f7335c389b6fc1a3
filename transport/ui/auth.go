package ui

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Cookie names.
const (
	sessionCookie = "lunasentri_session"
	loginCookie   = "lunasentri_login" // ties the sign-in form to its browser
	flashCookie   = "lunasentri_flash"
)

// sessions are sealed cookies: the token, the session id and the expiry,
// encrypted and authenticated with AES-GCM under a key derived from the
// cluster secret. Any node of the cluster can open one, and the token is
// checked against the Authorizer on every request, so deleting a token ends
// its sessions everywhere. Sign-out revokes the session id on the node that
// served it (a node-local list kept until the session would have expired)
// and clears the cookie.
type sessions struct {
	aead    cipher.AEAD
	csrfKey []byte
	ttl     time.Duration

	mu      sync.Mutex
	revoked map[string]time.Time // session id → expiry
}

type sessionData struct {
	Token   string `json:"t"`
	ID      string `json:"i"`
	Expires int64  `json:"e"`
}

// session is a signed-in request.
type session struct {
	id    string
	token string
	role  string
	// bearer: authenticated by an Authorization header, not a cookie, so
	// its posts need no CSRF token (a browser never adds the header itself).
	bearer bool
}

func (s *session) canWrite() bool { return s.role == RoleWrite || s.role == RoleAdmin }

func newSessions(secret string, ttl time.Duration) *sessions {
	k := sha256.Sum256([]byte("lunasentri ui session key\x00" + secret))
	block, _ := aes.NewCipher(k[:])
	aead, _ := cipher.NewGCM(block)
	c := sha256.Sum256([]byte("lunasentri ui csrf key\x00" + secret))
	return &sessions{aead: aead, csrfKey: c[:], ttl: ttl, revoked: make(map[string]time.Time)}
}

func randomID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessions) seal(token string, now time.Time) (string, sessionData) {
	d := sessionData{Token: token, ID: randomID(), Expires: now.Add(s.ttl).Unix()}
	plain, _ := json.Marshal(d)
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(sessionCookie))), d
}

func (s *sessions) open(v string, now time.Time) (sessionData, error) {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return sessionData{}, errors.New("malformed session")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(sessionCookie))
	if err != nil {
		return sessionData{}, errors.New("session does not verify")
	}
	var d sessionData
	if err := json.Unmarshal(plain, &d); err != nil {
		return sessionData{}, err
	}
	if now.Unix() >= d.Expires {
		return sessionData{}, errors.New("session expired")
	}
	s.mu.Lock()
	_, gone := s.revoked[d.ID]
	s.mu.Unlock()
	if gone {
		return sessionData{}, errors.New("signed out")
	}
	return d, nil
}

func (s *sessions) revoke(d sessionData, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, exp := range s.revoked {
		if now.Unix() >= exp.Unix() {
			delete(s.revoked, id)
		}
	}
	s.revoked[d.ID] = time.Unix(d.Expires, 0)
}

// csrf is the form token for a session (or, on the sign-in form, for the
// login cookie): an HMAC, so nothing needs storing.
func (s *sessions) csrf(purpose, id string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(purpose + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *sessions) csrfOK(purpose, id, got string) bool {
	want := s.csrf(purpose, id)
	return got != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authenticate finds the request's session: a bearer token or the cookie.
func (u *UI) authenticate(r *http.Request) (*session, bool) {
	if tok := bearerToken(r); tok != "" {
		role, ok := u.opts.Auth.Role(tok)
		if !ok {
			return nil, false
		}
		return &session{token: tok, role: role, bearer: true}, true
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	d, err := u.sessions.open(c.Value, u.opts.Now())
	if err != nil {
		return nil, false
	}
	role, ok := u.opts.Auth.Role(d.Token)
	if !ok {
		return nil, false
	}
	return &session{id: d.ID, token: d.Token, role: role}, true
}

type pageHandler func(w http.ResponseWriter, r *http.Request, s *session)

// page requires a session; without one a browser is sent to sign in and
// a script gets a 401.
func (u *UI) page(h pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u.securityHeaders(w)
		w.Header().Set("Cache-Control", "no-store")
		s, ok := u.authenticate(r)
		if !ok {
			if bearerToken(r) != "" || r.URL.Path == "/ui/live" {
				u.renderError(w, r, http.StatusUnauthorized, "This token is not valid.")
				return
			}
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, s)
	}
}

// action is a POST from a form: it needs a write role, the action to be
// available, and (for cookie sessions) the CSRF token.
func (u *UI) action(name string, h pageHandler) http.HandlerFunc {
	return u.page(func(w http.ResponseWriter, r *http.Request, s *session) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			u.renderError(w, r, http.StatusBadRequest, "The form could not be read.")
			return
		}
		if !s.bearer && !u.sessions.csrfOK("session", s.id, r.PostForm.Get("csrf")) {
			u.renderError(w, r, http.StatusForbidden, "This form has expired. Go back, reload the page and try again.")
			return
		}
		if !s.canWrite() {
			u.renderError(w, r, http.StatusForbidden, "Your token can look but not change anything (it has the "+s.role+" role).")
			return
		}
		if u.opts.Actions == nil || !u.opts.Actions.Available(name) {
			u.renderError(w, r, http.StatusNotImplemented, "This action is not available on this server yet.")
			return
		}
		h(w, r, s)
	})
}

// safeNext keeps a post-sign-in redirect on the dashboard.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/ui/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return "/ui/"
}

func (u *UI) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/ui", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	}
}

func (u *UI) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	u.securityHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	u.renderLogin(w, r, http.StatusOK, "")
}

func (u *UI) renderLogin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	lid := ""
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) >= 16 && len(c.Value) <= 64 {
		lid = c.Value
	} else {
		lid = randomID()
	}
	http.SetCookie(w, u.cookie(r, loginCookie, lid, 3600))
	u.render(w, r, status, "login", &pageData{
		Title: "Sign in", CSRF: u.sessions.csrf("login", lid),
		Next: safeNext(r.FormValue("next")), Problem: problem,
		SignedOut: r.Method == http.MethodGet && r.URL.Query().Get("out") == "1", SessionTTL: human(u.opts.SessionTTL),
	})
}

func (u *UI) handleLogin(w http.ResponseWriter, r *http.Request) {
	u.securityHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		u.renderLogin(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	if !u.loginCSRFOK(r) {
		u.renderLogin(w, r, http.StatusForbidden, "The sign-in form expired. Please try again.")
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	if _, ok := u.opts.Auth.Role(tok); tok == "" || !ok {
		u.renderLogin(w, r, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	v, d := u.sessions.seal(tok, u.opts.Now())
	http.SetCookie(w, u.cookie(r, sessionCookie, v, int(time.Until(time.Unix(d.Expires, 0)).Seconds())))
	http.SetCookie(w, u.cookie(r, loginCookie, "", -1))
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

// loginCSRFOK: the sign-in form carries a token tied to its browser's login
// cookie, and a browser's cross-site post is refused by its Origin (or
// Referer). A post with neither the form's token nor an Origin is a script
// (curl -d token=…), which a browser cannot be made to send for another site.
func (u *UI) loginCSRFOK(r *http.Request) bool {
	if field := r.PostForm.Get("csrf"); field != "" {
		c, err := r.Cookie(loginCookie)
		return err == nil && u.sessions.csrfOK("login", c.Value, field)
	}
	for _, h := range []string{"Origin", "Referer"} {
		if v := r.Header.Get(h); v != "" {
			o, err := url.Parse(v)
			return err == nil && o.Host == r.Host
		}
	}
	return true
}

func (u *UI) handleLogout(w http.ResponseWriter, r *http.Request) {
	u.securityHeaders(w)
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	_ = r.ParseForm()
	if c, err := r.Cookie(sessionCookie); err == nil {
		if d, err := u.sessions.open(c.Value, u.opts.Now()); err == nil {
			if !u.sessions.csrfOK("session", d.ID, r.PostForm.Get("csrf")) {
				u.renderError(w, r, http.StatusForbidden, "This form has expired. Go back, reload the page and try again.")
				return
			}
			u.sessions.revoke(d, u.opts.Now())
		}
	}
	http.SetCookie(w, u.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, "/ui/login?out=1", http.StatusSeeOther)
}

// flash carries one message across the redirect after an action.
func (u *UI) setFlash(w http.ResponseWriter, r *http.Request, kind, msg string) {
	if len(msg) > 600 {
		msg = msg[:600] + "…"
	}
	v := base64.RawURLEncoding.EncodeToString([]byte(kind + "\x00" + msg))
	http.SetCookie(w, u.cookie(r, flashCookie, v, 60))
}

func (u *UI) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, u.cookie(r, flashCookie, "", -1))
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	kind, msg, ok := strings.Cut(string(raw), "\x00")
	if !ok || (kind != "ok" && kind != "error") {
		return nil
	}
	return &flash{Kind: kind, Message: msg}
}

type flash struct{ Kind, Message string }
