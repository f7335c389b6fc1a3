package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

type channelRequest struct {
	Type   string            `json:"type"`
	Name   string            `json:"name"`
	URL    string            `json:"url"`
	Secret string            `json:"secret"`
	ChatID chatID            `json:"chat_id"`
	Match  map[string]string `json:"match"`
	policyRequest

	// Settings of the further channel types (issue 15, docs/api.md "More
	// channel types").
	URLs       []string          `json:"urls"`
	Labels     map[string]string `json:"labels"`
	BasicAuth  *basicAuth        `json:"basic_auth"`
	RoutingKey string            `json:"routing_key"`
	Topic      string            `json:"topic"`
	Token      string            `json:"token"`
	To         []string          `json:"to"`
	From       string            `json:"from"`
}

type basicAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// chatID accepts a Telegram chat id as a string ("-1001234", "@channel")
// or as a JSON number, as Telegram itself gives it.
type chatID string

func (c *chatID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = chatID(s)
		return nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return errors.New("chat_id must be a string or an integer")
	}
	if _, err := n.Int64(); err != nil {
		return errors.New("chat_id must be an integer or an @channel name")
	}
	*c = chatID(n.String())
	return nil
}

func (a *API) validateChannel(req channelRequest) (fsm.Channel, error) {
	if err := validateName("channel", req.Name); err != nil {
		return fsm.Channel{}, err
	}
	if err := validateLabels("match", req.Match); err != nil {
		return fsm.Channel{}, err
	}
	ch := fsm.Channel{Name: req.Name, Type: req.Type, Match: maps.Clone(req.Match), CreatedAt: time.Now().UTC()}
	if err := req.policyRequest.apply(&ch.Policy); err != nil {
		return ch, err
	}
	if err := checkChannelFields(req); err != nil {
		return ch, err
	}
	switch req.Type {
	case fsm.ChannelWebhook:
		if req.URL == "" {
			return ch, errors.New("webhook channel needs a url")
		}
		if req.ChatID != "" {
			return ch, errors.New("chat_id belongs to telegram channels")
		}
		ch.URL, ch.Secret = req.URL, req.Secret
	case fsm.ChannelTelegram:
		if req.URL != "" || req.Secret != "" {
			return ch, errors.New("url and secret belong to webhook channels")
		}
		ch.ChatID = string(req.ChatID)
	case fsm.ChannelAlertmanager, fsm.ChannelSlack, fsm.ChannelPagerDuty, fsm.ChannelNtfy, fsm.ChannelEmail:
		moreChannelSettings(req, &ch)
	case "":
		return ch, errors.New("channel type is required (" + channelTypeList + ")")
	default:
		return ch, errors.New("unknown channel type " + req.Type + " (" + channelTypeList + ")")
	}
	withTypeDefaults(&ch)
	return ch, a.opts.ValidateChannel(ch)
}

func (a *API) handleCreateChannel(w http.ResponseWriter, r *http.Request) {
	var req channelRequest
	if !decodeJSON(w, r, a.opts.MaxAdminBody, &req) {
		return
	}
	ch, err := a.validateChannel(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	if _, err := a.opts.FSM.Channel(ch.Name); err == nil {
		writeError(w, http.StatusConflict, "channel %q already exists", ch.Name)
		return
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: ch}))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeApplyError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"channel": channelViewOf(ch, a.opts.RedactURL)})
}

func (a *API) handleListChannels(w http.ResponseWriter, _ *http.Request) {
	chs := a.opts.FSM.Channels()
	out := make([]channelView, len(chs))
	for i, c := range chs {
		out[i] = channelViewOf(c, a.opts.RedactURL)
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
}

func (a *API) handleDeleteChannel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.opts.FSM.Channel(name); err != nil {
		writeError(w, http.StatusNotFound, "channel %q not found", name)
		return
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdDeleteChannel, fsm.DeleteChannel{Name: name}))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeApplyError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleTestChannel sends a test message from the leader (only the leader
// sends anything) and reports the receiver's answer: 200, or 502 with its
// error.
func (a *API) handleTestChannel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.opts.FSM.Channel(name); err != nil {
		writeError(w, http.StatusNotFound, "channel %q not found", name)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if a.opts.Consensus.IsLeader() {
		a.runChannelTest(ctx, w, name)
		return
	}
	// The leader's own send may take the channel's full timeout (10s): only
	// this handler's context bounds the wait, so its 502 gets back here.
	client := *a.opts.HTTPClient
	client.Timeout = 0
	err := a.callLeaderWith(ctx, &client, "/internal/v1/channels/"+name+"/test", "application/json", nil, nil)
	var le *leaderError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"delivered": true, "channel": name})
	case errors.As(err, &le) && le.status != http.StatusUnauthorized:
		writeError(w, le.status, "%s", le.msg)
	default:
		writeError(w, http.StatusServiceUnavailable, "%s", err.Error())
	}
}

func (a *API) handleInternalTest(w http.ResponseWriter, r *http.Request) {
	if !a.opts.Consensus.IsLeader() {
		writeError(w, http.StatusServiceUnavailable, msgNotLeader)
		return
	}
	a.runChannelTest(r.Context(), w, r.PathValue("name"))
}

func (a *API) runChannelTest(ctx context.Context, w http.ResponseWriter, name string) {
	if a.opts.TestChannel == nil {
		writeError(w, http.StatusServiceUnavailable, "notifications are not enabled on this node")
		return
	}
	if err := a.opts.TestChannel(ctx, name); err != nil {
		if errors.Is(err, fsm.ErrChannelNotFound) {
			writeError(w, http.StatusNotFound, "channel %q not found", name)
			return
		}
		writeError(w, http.StatusBadGateway, "test delivery failed: %s", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"delivered": true, "channel": name})
}
