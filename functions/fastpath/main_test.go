package main

import (
	"testing"
	"time"
)

func TestReadSettings(t *testing.T) {
	tests := []struct {
		name, endpoint, concurrency, days string
		wantConcurrency                   int
		wantRetention                     time.Duration
		wantErr                           bool
	}{
		{"defaults", "https://example.com/dev", "", "", 64, 0, false},
		{"set", "https://example.com/dev", "128", "7", 128, 7 * 24 * time.Hour, false},
		{"endpoint not a URL", "example.com", "", "", 0, 0, true},
		{"concurrency zero", "https://example.com/dev", "0", "", 0, 0, true},
		{"retention over ten years", "https://example.com/dev", "", "3651", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TABLE_NAME", "t")
			t.Setenv("WEBSOCKET_MANAGEMENT_ENDPOINT", tt.endpoint)
			t.Setenv("FANOUT_CONCURRENCY", tt.concurrency)
			t.Setenv("INBOX_RETENTION_DAYS", tt.days)
			s, err := readSettings()
			if (err != nil) != tt.wantErr {
				t.Fatalf("readSettings error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (s.concurrency != tt.wantConcurrency || s.inboxRetention != tt.wantRetention) {
				t.Errorf("settings %+v, want concurrency %d retention %s", s, tt.wantConcurrency, tt.wantRetention)
			}
		})
	}
}
