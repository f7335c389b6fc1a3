package transport

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// policyRequest is the channel policy part of POST and PATCH /v1/channels
// (docs/api.md "Channel policy"); absent fields keep their value.
type policyRequest struct {
	RepeatInterval flexDuration `json:"repeat_interval"`
	GroupAfter     *int         `json:"group_after"`
	GroupWindow    flexDuration `json:"group_window"`
	GroupBy        *[]string    `json:"group_by"`
}

// apply validates the request and writes it over p.
func (req policyRequest) apply(p *fsm.ChannelPolicy) error {
	inRange := func(field string, d time.Duration) error {
		if d < fsm.MinPolicyDuration || d > fsm.MaxPolicyDuration {
			return fmt.Errorf("%s must be between %s and %s", field, fsm.MinPolicyDuration, fsm.MaxPolicyDuration)
		}
		return nil
	}
	if req.RepeatInterval.Set {
		if req.RepeatInterval.D != 0 {
			if err := inRange("repeat_interval", req.RepeatInterval.D); err != nil {
				return fmt.Errorf("%w (or 0 for no reminders)", err)
			}
		}
		p.RepeatInterval = req.RepeatInterval.D
	}
	if req.GroupAfter != nil {
		if *req.GroupAfter < 1 || *req.GroupAfter > fsm.MaxGroupAfter {
			return fmt.Errorf("group_after must be between 1 and %d", fsm.MaxGroupAfter)
		}
		p.GroupAfter = *req.GroupAfter
	}
	if req.GroupWindow.Set {
		if err := inRange("group_window", req.GroupWindow.D); err != nil {
			return err
		}
		p.GroupWindow = req.GroupWindow.D
	}
	if req.GroupBy != nil {
		by := *req.GroupBy
		if len(by) > fsm.MaxGroupBy {
			return fmt.Errorf("group_by takes at most %d label names", fsm.MaxGroupBy)
		}
		for _, k := range by {
			if !labelKeyRe.MatchString(k) || len(k) > maxLabelKeyLen {
				return fmt.Errorf("group_by: %q is not a label name", k)
			}
		}
		if len(slices.Compact(slices.Sorted(slices.Values(by)))) != len(by) {
			return errors.New("group_by names a label twice")
		}
		p.GroupBy = slices.Clone(by)
	}
	return nil
}

// policyView is a channel's effective policy.
type policyView struct {
	RepeatInterval string   `json:"repeat_interval"`
	GroupAfter     int      `json:"group_after"`
	GroupWindow    string   `json:"group_window"`
	GroupBy        []string `json:"group_by"`
}

func policyViewOf(p fsm.ChannelPolicy) policyView {
	v := policyView{
		RepeatInterval: p.RepeatInterval.String(), GroupAfter: p.GroupAfter,
		GroupWindow: p.GroupWindow.String(), GroupBy: p.GroupBy,
	}
	if v.GroupAfter == 0 {
		v.GroupAfter = fsm.DefaultGroupAfter
	}
	if p.GroupWindow == 0 {
		v.GroupWindow = fsm.DefaultGroupWindow.String()
	}
	if v.GroupBy == nil {
		v.GroupBy = []string{}
	}
	return v
}

// patchChannelRequest is PATCH /v1/channels/{name}: policy, match and the
// delivery settings; the type and name never change.
type patchChannelRequest struct {
	policyRequest
	Match     *map[string]string `json:"match"`
	URL       *string            `json:"url"`
	Secret    *string            `json:"secret"`
	ChatID    *chatID            `json:"chat_id"`
	morePatch                    // issue 15's channel types
}

func (a *API) handlePatchChannel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cur, err := a.opts.FSM.Channel(name)
	if err != nil {
		writeError(w, http.StatusNotFound, "channel %q not found", name)
		return
	}
	var req patchChannelRequest
	if !decodeJSON(w, r, a.opts.MaxAdminBody, &req) {
		return
	}
	ch := cur
	ch.Match = maps.Clone(cur.Match)
	if req.Match != nil {
		if err := validateLabels("match", *req.Match); err != nil {
			writeError(w, http.StatusBadRequest, "%s", err.Error())
			return
		}
		ch.Match = maps.Clone(*req.Match)
	}
	switch {
	case (req.URL != nil || req.Secret != nil) && ch.Type == fsm.ChannelTelegram:
		writeError(w, http.StatusBadRequest, "url and secret belong to webhook channels")
		return
	case req.ChatID != nil && ch.Type != fsm.ChannelTelegram:
		writeError(w, http.StatusBadRequest, "chat_id belongs to telegram channels")
		return
	}
	if req.URL != nil {
		ch.URL = *req.URL
	}
	if req.Secret != nil {
		ch.Secret = *req.Secret
	}
	if req.ChatID != nil {
		ch.ChatID = string(*req.ChatID)
	}
	if err := req.policyRequest.apply(&ch.Policy); err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	if err := req.morePatch.apply(&ch); err != nil { // issue 15
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	withTypeDefaults(&ch)
	if a.opts.ValidateChannel != nil {
		if err := a.opts.ValidateChannel(ch); err != nil {
			writeError(w, http.StatusBadRequest, "%s", err.Error())
			return
		}
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdUpdateChannel, fsm.UpdateChannel{Channel: ch}))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeApplyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"channel": channelViewOf(*res.Channel, a.opts.RedactURL)})
}
