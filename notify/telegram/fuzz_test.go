package telegram

import (
	"strings"
	"testing"
)

// FuzzEscapeMarkdownV2 (issue 11): every character MarkdownV2 reserves
// comes out escaped, so a machine name or label cannot inject formatting.
func FuzzEscapeMarkdownV2(f *testing.F) {
	for _, s := range []string{"web-1", "*bold*", "[link](http://x)", "`code`", "a\\b", "_~>#+-=|{}.!", "ünï\n"} {
		f.Add(s)
	}
	const reserved = "_*[]()~`>#+-=|{}.!\\"
	f.Fuzz(func(t *testing.T, s string) {
		out := EscapeMarkdownV2(s)
		escaped := false
		for _, r := range out {
			if escaped {
				escaped = false
				continue
			}
			if r == '\\' {
				escaped = true
				continue
			}
			if strings.ContainsRune(reserved, r) {
				t.Fatalf("EscapeMarkdownV2(%q) = %q leaves %q unescaped", s, out, r)
			}
		}
		if escaped {
			t.Fatalf("EscapeMarkdownV2(%q) = %q ends in a lone backslash", s, out)
		}
	})
}
