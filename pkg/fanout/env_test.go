package fanout

import (
	"testing"
	"time"
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
		{"ten years", "3650", MaxInboxRetention, false},
		{"zero", "0", 0, true},
		{"not a number", "a week", 0, true},
		{"over ten years", "3651", 0, true},
		{"would overflow", "9223372036854775807", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setRequiredEnv(t)
			t.Setenv("INBOX_RETENTION_DAYS", tt.days)
			s, err := ReadSettings()
			if (err != nil) != tt.wantErr {
				t.Fatalf("readSettings error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && s.Config.InboxRetention != tt.want {
				t.Errorf("inbox retention = %s, want %s", s.Config.InboxRetention, tt.want)
			}
		})
	}
}

// The worker's share of the rate: PushRatePerSecond over the mapping's
// MaximumConcurrency, so all workers together stay under it.
func TestReadSettingsRateShare(t *testing.T) {
	tests := []struct {
		name, rate, workers string
		want                float64
		wantErr             bool
	}{
		{"no rate: no cap", "", "", 0, false},
		{"5,000 over 4 workers", "5000", "4", 1250, false},
		{"rate without workers", "300", "", 300, false},
		{"bad rate", "fast", "4", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setRequiredEnv(t)
			t.Setenv("PUSH_RATE_PER_SECOND", tt.rate)
			t.Setenv("PUSH_WORKERS", tt.workers)
			s, err := ReadSettings()
			if (err != nil) != tt.wantErr {
				t.Fatalf("ReadSettings error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && s.Config.RatePerSecond != tt.want {
				t.Errorf("rate = %v, want %v", s.Config.RatePerSecond, tt.want)
			}
		})
	}
}

// The settings every delivering function (stream, fast path, worker) reads
// through ReadSettings.
func TestReadSettingsCommon(t *testing.T) {
	tests := []struct {
		name, endpoint, concurrency, pushQueue string
		wantConcurrency                        int
		wantErr                                bool
	}{
		{"defaults", "https://example.com/dev", "", "https://sqs.us-east-1.amazonaws.com/1/push", DefaultConcurrency, false},
		{"concurrency set", "https://example.com/dev", "128", "https://sqs.us-east-1.amazonaws.com/1/push", 128, false},
		{"endpoint not a URL", "example.com", "", "https://sqs.us-east-1.amazonaws.com/1/push", 0, true},
		{"concurrency zero", "https://example.com/dev", "0", "https://sqs.us-east-1.amazonaws.com/1/push", 0, true},
		{"push queue missing", "https://example.com/dev", "", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TABLE_NAME", "t")
			t.Setenv("WEBSOCKET_MANAGEMENT_ENDPOINT", tt.endpoint)
			t.Setenv("FANOUT_CONCURRENCY", tt.concurrency)
			t.Setenv("PUSH_QUEUE_URL", tt.pushQueue)
			t.Setenv("INBOX_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/inbox")
			s, err := ReadSettings()
			if (err != nil) != tt.wantErr {
				t.Fatalf("ReadSettings error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && s.Config.Concurrency != tt.wantConcurrency {
				t.Errorf("concurrency = %d, want %d", s.Config.Concurrency, tt.wantConcurrency)
			}
		})
	}
}

// setRequiredEnv sets the variables ReadSettings requires to valid values.
func setRequiredEnv(t *testing.T) {
	t.Helper()
	t.Setenv("TABLE_NAME", "t")
	t.Setenv("WEBSOCKET_MANAGEMENT_ENDPOINT", "https://example.com/dev")
	t.Setenv("PUSH_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/push")
	t.Setenv("INBOX_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/inbox")
}
