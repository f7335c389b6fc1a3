package server

import (
	"errors"
	"testing"

	"github.com/lunasentri/lunasentri/fsm"
)

func TestValidateChannelWith_TelegramNeedsBotToken(t *testing.T) {
	tg := fsm.Channel{Name: "tg", Type: fsm.ChannelTelegram, ChatID: "-1001234567890"}
	if err := validateChannelWith("", validateChannel)(tg); !errors.Is(err, errNoBotToken) {
		t.Fatalf("no token: %v, want errNoBotToken", err)
	}
	if err := validateChannelWith("123:abc", validateChannel)(tg); err != nil {
		t.Fatalf("with a token: %v", err)
	}
	// Webhooks do not care about the bot token.
	wh := fsm.Channel{Name: "wh", Type: fsm.ChannelWebhook, URL: "http://127.0.0.1:9/hook", Secret: "0123456789abcdef"}
	if err := validateChannelWith("", validateChannel)(wh); err != nil {
		t.Fatalf("webhook without a bot token: %v", err)
	}
}
