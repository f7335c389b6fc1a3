package transport

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// Issue 11: POST/GET/DELETE /v1/tokens (API.md "Tokens"). All need admin.

// A token's lifetime: from a second (short-lived tokens for scripts and
// tests) to ten years.
const (
	minTokenTTL = time.Second
	maxTokenTTL = 10 * 365 * 24 * time.Hour
)

type createTokenRequest struct {
	Name      string       `json:"name"`
	Role      string       `json:"role"`
	ExpiresIn flexDuration `json:"expires_in"`
}

func (r *createTokenRequest) validate() error {
	if err := validateName("token", r.Name); err != nil {
		return err
	}
	if fsm.RoleRank(r.Role) == 0 {
		return errors.New(`role must be "read", "write" or "admin"`)
	}
	if r.ExpiresIn.Set && (r.ExpiresIn.D < minTokenTTL || r.ExpiresIn.D > maxTokenTTL) {
		return errors.New("expires_in must be between 1s and 87600h (or left out for no expiry)")
	}
	return nil
}

// tokenView is a token as the API shows it: never its secret or hash.
type tokenView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Expired   bool       `json:"expired"`
}

func viewToken(t fsm.Token, now time.Time) tokenView {
	v := tokenView{ID: t.ID, Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt.UTC()}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt.UTC()
		v.ExpiresAt = &e
		v.Expired = !now.Before(e)
	}
	return v
}

func (a *API) tokenRoutes() {
	a.route("/v1/tokens", map[string]http.HandlerFunc{
		"GET": a.admin(a.handleListTokens), "POST": a.admin(a.handleCreateToken)})
	a.route("/v1/tokens/{id}", map[string]http.HandlerFunc{"DELETE": a.admin(a.handleDeleteToken)})
}

// newTokenSecret: 32 random bytes, shown once.
func newTokenSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "lst_" + base64.RawURLEncoding.EncodeToString(b), nil
}

func newTokenID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "tok-" + hex.EncodeToString(b), nil
}

func (a *API) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req createTokenRequest
	if !decodeJSON(w, r, a.opts.MaxAdminBody, &req) {
		return
	}
	if err := req.validate(); err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	secret, err := newTokenSecret()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "generate token: %s", err.Error())
		return
	}
	id, err := newTokenID()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "generate token id: %s", err.Error())
		return
	}
	now := time.Now().UTC()
	t := fsm.Token{ID: id, Name: req.Name, Role: req.Role, Hash: fsm.HashKey(secret), CreatedAt: now}
	if req.ExpiresIn.Set {
		t.ExpiresAt = now.Add(req.ExpiresIn.D)
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdCreateToken, fsm.CreateToken{Token: t}))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeTokenError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": viewToken(t, now), "secret": secret})
}

func (a *API) handleListTokens(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	toks := a.opts.FSM.Tokens()
	out := make([]tokenView, len(toks))
	for i, t := range toks {
		out[i] = viewToken(t, now)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (a *API) handleDeleteToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdDeleteToken, fsm.DeleteToken{ID: id}))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeTokenError(w, err)
		return
	}
	// A revoked token must stop working here at once, even if this node
	// had a positive lookup cached.
	a.lookup.forget()
	w.WriteHeader(http.StatusNoContent)
}

func writeTokenError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, fsm.ErrTokenNotFound):
		writeError(w, http.StatusNotFound, "%s", err.Error())
	case errors.Is(err, fsm.ErrTokenExists):
		writeError(w, http.StatusConflict, "a token with that name already exists")
	default:
		writeApplyError(w, err)
	}
}
