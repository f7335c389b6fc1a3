package msgtext

import (
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
)

func TestTitleAndFields(t *testing.T) {
	seen := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	m := notify.Machine{Name: "db-1", Hostname: "db-1.example", LastSeen: &seen}
	tests := []struct {
		ev    notify.Event
		title string
		field string
	}{
		{notify.Event{Type: notify.EventOffline, Machine: m}, "db-1 is offline", "Reason=no heartbeat within the threshold"},
		{notify.Event{Type: notify.EventOffline, Machine: m, Reason: notify.ReasonReported, Message: "oom"}, "db-1 is offline", "Reason=reported: oom"},
		{notify.Event{Type: notify.EventOffline, Machine: m, Reminder: 3, OccurredAt: seen.Add(5 * time.Hour)}, "db-1 is still offline (reminder 3)", "Offline for=5h"},
		{notify.Event{Type: notify.EventOnline, Machine: m, DownFor: 90 * time.Second}, "db-1 is back online", "Down for=1m30s"},
		{notify.Event{Type: notify.EventFlapping, Machine: m}, "db-1 is flapping", "Hostname=db-1.example"},
		{notify.Event{Type: notify.EventTest}, "LunaSentri test message", "About=This channel is connected to LunaSentri; no machine changed state."},
	}
	for _, tc := range tests {
		if got := Title(tc.ev); got != tc.title {
			t.Errorf("Title = %q, want %q", got, tc.title)
		}
		var fs []string
		for _, f := range Fields(tc.ev) {
			fs = append(fs, f.Name+"="+f.Value)
		}
		if !strings.Contains(strings.Join(fs, "\n"), tc.field) {
			t.Errorf("%s: fields %q lack %q", tc.title, fs, tc.field)
		}
	}
	if got := Name(notify.Machine{}); got != "unknown machine" {
		t.Errorf("Name = %q", got)
	}
	if got := Truncate(strings.Repeat("é", 10), 5); got != "éééé…" {
		t.Errorf("Truncate = %q", got)
	}
}
