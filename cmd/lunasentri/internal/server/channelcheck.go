package server

import (
	"errors"

	"github.com/lunasentri/lunasentri/fsm"
)

// errNoBotToken: a Telegram channel would fail every delivery on a cluster
// whose servers have no bot token, so the API refuses to create one (400)
// instead of accepting it and recording failures no one reads.
var errNoBotToken = errors.New("telegram channels need a bot token, and this server has none: " +
	"set TELEGRAM_BOT_TOKEN (or telegram_bot_token in the config file) on every server and restart them")

// validateChannelWith is validateChannel plus the checks that depend on this
// server's configuration (issue 13).
// next is the type checks (validateChannel, or channelValidator with SMTP).
func validateChannelWith(telegramBotToken string, next func(fsm.Channel) error) func(fsm.Channel) error {
	return func(ch fsm.Channel) error {
		if ch.Type == fsm.ChannelTelegram && telegramBotToken == "" {
			return errNoBotToken
		}
		return next(ch)
	}
}
