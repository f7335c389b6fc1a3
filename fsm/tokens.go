package fsm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Issue 11: API tokens with roles. Only hashes are replicated; a token's
// secret is shown once, by the node that created it.

// Command types 40–49 are reserved for tokens and security.
const (
	CmdCreateToken CommandType = 40
	CmdDeleteToken CommandType = 41
)

// Token roles (API.md "Tokens"): read ⊂ write ⊂ admin.
const (
	RoleRead  = "read"
	RoleWrite = "write"
	RoleAdmin = "admin"
)

// MaxTokens bounds the token table; tokens are few (people, dashboards,
// scripts), and the bound keeps a flood of creates from growing state.
const MaxTokens = 1024

// RoleRank orders roles; 0 for an unknown role.
func RoleRank(role string) int {
	switch role {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Token is an API token as replicated: its hash, never its secret.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Hash      KeyHash   `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is zero for a token that never expires.
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateToken adds a token. Its id, hash and times are chosen by the
// proposing node.
type CreateToken struct {
	Token Token `json:"token"`
}

// DeleteToken revokes a token by id.
type DeleteToken struct {
	ID string `json:"id"`
}

// tokenState is the FSM's token table; guarded by FSM.mu.
type tokenState struct {
	byID   map[string]*Token
	byHash map[KeyHash]string
	byName map[string]string
}

func (s *tokenState) reset() {
	s.byID = make(map[string]*Token)
	s.byHash = make(map[KeyHash]string)
	s.byName = make(map[string]string)
}

func (s *tokenState) insert(t *Token) {
	if s.byID == nil {
		s.reset()
	}
	s.byID[t.ID] = t
	s.byHash[t.Hash] = t.ID
	s.byName[t.Name] = t.ID
}

// validToken checks a token's fields, as a command or a snapshot record.
func validToken(t *Token) error {
	switch {
	case t.ID == "" || t.Name == "":
		return fmt.Errorf("%w: token id and name are required", ErrBadCommand)
	case RoleRank(t.Role) == 0:
		return fmt.Errorf("%w: token role %q is not read, write or admin", ErrBadCommand, t.Role)
	case t.Hash == (KeyHash{}):
		return fmt.Errorf("%w: token hash is required", ErrBadCommand)
	}
	return nil
}

// applySecurity applies the token commands; ok is false for other types.
// The caller holds the write lock.
func (f *FSM) applySecurity(t CommandType, body []byte) (*ApplyResult, bool) {
	switch t {
	case CmdCreateToken:
		var c CreateToken
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}, true
		}
		return f.createToken(c), true
	case CmdDeleteToken:
		var c DeleteToken
		if err := decodeBody(body, &c); err != nil {
			return &ApplyResult{Err: err}, true
		}
		return f.deleteToken(c), true
	}
	return nil, false
}

func (f *FSM) createToken(c CreateToken) *ApplyResult {
	t := c.Token
	if err := validToken(&t); err != nil {
		return &ApplyResult{Err: err}
	}
	if f.tokens.byID == nil {
		f.tokens.reset()
	}
	_, idTaken := f.tokens.byID[t.ID]
	_, hashTaken := f.tokens.byHash[t.Hash]
	_, nameTaken := f.tokens.byName[t.Name]
	if idTaken || hashTaken || nameTaken {
		return &ApplyResult{Err: ErrTokenExists}
	}
	if len(f.tokens.byID) >= MaxTokens {
		return &ApplyResult{Err: fmt.Errorf("%w: at most %d tokens", ErrLimit, MaxTokens)}
	}
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	f.tokens.insert(&t)
	out := t
	out.Hash = KeyHash{}
	return &ApplyResult{Token: &out}
}

func (f *FSM) deleteToken(c DeleteToken) *ApplyResult {
	t, ok := f.tokens.byID[c.ID]
	if !ok {
		return &ApplyResult{Err: ErrTokenNotFound}
	}
	delete(f.tokens.byID, t.ID)
	delete(f.tokens.byHash, t.Hash)
	delete(f.tokens.byName, t.Name)
	out := *t
	out.Hash = KeyHash{}
	return &ApplyResult{Token: &out}
}

// Tokens lists every token, without hashes, sorted by name.
func (f *FSM) Tokens() []Token {
	f.mu.RLock()
	out := make([]Token, 0, len(f.tokens.byID))
	for _, t := range f.tokens.byID {
		tt := *t
		tt.Hash = KeyHash{}
		out = append(out, tt)
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Token) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TokenByHash returns the token whose secret hashes to h (hash omitted).
// Expiry is the caller's business: the FSM reads no clock.
func (f *FSM) TokenByHash(h KeyHash) (Token, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.tokens.byHash[h]
	if !ok {
		return Token{}, false
	}
	t := *f.tokens.byID[id]
	t.Hash = KeyHash{}
	return t, true
}

// MachineIDByKeyHash is Authenticate for a key the caller already hashed
// (a follower asks the leader by hash, never by key).
func (f *FSM) MachineIDByKeyHash(h KeyHash) (string, bool) {
	if h == (KeyHash{}) {
		return "", false
	}
	return f.keys.get(h)
}

// tokensSection is the snapshot section that holds tokens. It follows the
// events and is written only when there are tokens, so a snapshot of a
// cluster without tokens is byte-identical to the earlier format.
const tokensSection = "tokens"

// sectionHeader starts an optional snapshot section after the events.
type sectionHeader struct {
	Section string `json:"section"`
	Count   int    `json:"count"`
}

// snapshotTokens copies the token table; the caller holds the read lock.
func (f *FSM) snapshotTokens() []Token {
	out := make([]Token, 0, len(f.tokens.byID))
	for _, t := range f.tokens.byID {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Token) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// encodeTokens writes the tokens section (nothing when there are none).
func encodeTokens(enc *json.Encoder, tokens []Token) error {
	if len(tokens) == 0 {
		return nil
	}
	if err := enc.Encode(sectionHeader{Section: tokensSection, Count: len(tokens)}); err != nil {
		return fmt.Errorf("write snapshot tokens header: %w", err)
	}
	for i := range tokens {
		if err := enc.Encode(&tokens[i]); err != nil {
			return fmt.Errorf("write snapshot token: %w", err)
		}
	}
	return nil
}

// snapshotExtra is what follows the events in a snapshot.
type snapshotExtra struct {
	tokens []Token
}

// decodeExtra reads the optional sections after the events. A section this
// binary does not know is refused, like a newer snapshot version.
func decodeExtra(dec *json.Decoder) (snapshotExtra, error) {
	var x snapshotExtra
	for dec.More() {
		var h sectionHeader
		if err := dec.Decode(&h); err != nil {
			return x, fmt.Errorf("read snapshot section header: %w", err)
		}
		switch {
		case h.Section == tokensSection && x.tokens == nil:
			if h.Count < 0 || h.Count > MaxTokens {
				return x, fmt.Errorf("snapshot has %d tokens, at most %d allowed", h.Count, MaxTokens)
			}
			toks, err := decodeN[Token](dec, h.Count, h.Count, "token")
			if err != nil {
				return x, err
			}
			x.tokens = toks
		default:
			return x, fmt.Errorf("snapshot section %q is unknown to this binary (or repeated)", h.Section)
		}
	}
	return x, nil
}

// installExtra puts the extra sections in place; the caller holds the
// write lock after reset.
func (f *FSM) installExtra(x snapshotExtra) {
	for i := range x.tokens {
		f.tokens.insert(&x.tokens[i])
	}
}

// checkTokens is the tokens part of CheckInvariants; caller holds a lock.
func (f *FSM) checkTokens() error {
	if len(f.tokens.byHash) != len(f.tokens.byID) || len(f.tokens.byName) != len(f.tokens.byID) {
		return fmt.Errorf("token indexes: %d ids, %d hashes, %d names", len(f.tokens.byID), len(f.tokens.byHash), len(f.tokens.byName))
	}
	for id, t := range f.tokens.byID {
		if t.ID != id || f.tokens.byHash[t.Hash] != id || f.tokens.byName[t.Name] != id {
			return fmt.Errorf("token %q is not indexed consistently", id)
		}
		if err := validToken(t); err != nil {
			return err
		}
	}
	return nil
}
