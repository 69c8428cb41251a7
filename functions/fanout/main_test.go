package main

import (
	"testing"
	"time"

	"github.com/groupcast/groupcast/pkg/fanout"
)

func TestReadSettingsInboxRetention(t *testing.T) {
	tests := []struct {
		name    string
		days    string
		want    time.Duration
		wantErr bool
	}{
		{"unset keeps the default", "", 0, false},
		{"seven days", "7", 7 * 24 * time.Hour, false},
		{"ten years", "3650", fanout.MaxInboxRetention, false},
		{"zero", "0", 0, true},
		{"not a number", "a week", 0, true},
		{"over ten years", "3651", 0, true},
		{"would overflow", "9223372036854775807", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TABLE_NAME", "t")
			t.Setenv("WEBSOCKET_MANAGEMENT_ENDPOINT", "https://example.com/dev")
			t.Setenv("INBOX_RETENTION_DAYS", tt.days)
			s, err := readSettings()
			if (err != nil) != tt.wantErr {
				t.Fatalf("readSettings error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && s.inboxRetention != tt.want {
				t.Errorf("inbox retention = %s, want %s", s.inboxRetention, tt.want)
			}
		})
	}
}
