package telegram

import (
	"fmt"
	"strconv"
)

// ValidateChatID reports whether id can address a Telegram chat: a non-zero
// integer (users are positive, groups negative, supergroups and channels
// -100…) or a public @channelusername (a letter, then letters, digits or
// underscores; 5–32 characters in all, counting the @).
func ValidateChatID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: chat_id is required", ErrInvalidChatID)
	}
	if id[0] == '@' {
		name := id[1:]
		if len(name) < 4 || len(name) > 32 {
			return fmt.Errorf("%w: @username must have 4 to 32 characters after the @", ErrInvalidChatID)
		}
		for i, r := range name {
			letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
			if i == 0 && !letter {
				return fmt.Errorf("%w: @username must start with a letter", ErrInvalidChatID)
			}
			if !letter && !(r >= '0' && r <= '9') && r != '_' {
				return fmt.Errorf("%w: @username may only contain letters, digits and underscores", ErrInvalidChatID)
			}
		}
		return nil
	}
	digits := id
	if digits[0] == '-' {
		digits = digits[1:]
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return fmt.Errorf("%w: want an integer like -1001234567890 or an @channelusername, got %q", ErrInvalidChatID, id)
		}
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n == 0 {
		return fmt.Errorf("%w: %q is not a usable chat id", ErrInvalidChatID, id)
	}
	return nil
}
