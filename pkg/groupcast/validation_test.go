package groupcast

import (
	"strings"
	"testing"
	"time"
)

func TestValidateCreateGroup(t *testing.T) {
	tests := []struct {
		name string
		in   CreateGroupInput
		want CreateGroupInput
		ok   bool
	}{
		{"trimmed", CreateGroupInput{Name: "  Hikers ", Description: " d ", Visibility: Public}, CreateGroupInput{Name: "Hikers", Description: "d", Visibility: Public}, true},
		{"100 multibyte characters", CreateGroupInput{Name: strings.Repeat("é", 100), Visibility: Private}, CreateGroupInput{Name: strings.Repeat("é", 100), Visibility: Private}, true},
		{"empty description allowed", CreateGroupInput{Name: "x", Visibility: Public}, CreateGroupInput{Name: "x", Visibility: Public}, true},
		{"blank name", CreateGroupInput{Name: " \t", Visibility: Public}, CreateGroupInput{}, false},
		{"name too long", CreateGroupInput{Name: strings.Repeat("a", 101), Visibility: Public}, CreateGroupInput{}, false},
		{"description too long", CreateGroupInput{Name: "x", Description: strings.Repeat("a", 1001), Visibility: Public}, CreateGroupInput{}, false},
		{"invalid utf-8", CreateGroupInput{Name: "\xff", Visibility: Public}, CreateGroupInput{}, false},
		{"unknown visibility", CreateGroupInput{Name: "x", Visibility: "secret"}, CreateGroupInput{}, false},
		{"missing visibility", CreateGroupInput{Name: "x"}, CreateGroupInput{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValidateCreateGroup(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v ok=%v", got, err, tt.want, tt.ok)
			}
			if err != nil && ErrorCode(err) != CodeInvalid {
				t.Fatalf("code = %s, want invalid", ErrorCode(err))
			}
		})
	}
}

func TestValidatePostContent(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "hello", "hello", true},
		{"trimmed", "\n hello \t", "hello", true},
		{"5000 runes of emoji", strings.Repeat("😀", 5000), strings.Repeat("😀", 5000), true},
		{"5001 runes", strings.Repeat("a", 5001), "", false},
		{"only spaces", "   ", "", false},
		{"empty", "", "", false},
		{"invalid utf-8", "ok\xc3\x28", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValidatePostContent(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("got %q, %v; want %q ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"01JDX8Q3ZV6M4N2P5R7S9T0W1Y", true},
		{"auth0|abc-123", true},
		{strings.Repeat("a", MaxIDLength), true},
		{"", false},
		{strings.Repeat("a", MaxIDLength+1), false},
		{"a#b", false},
		{"a\nb", false},
		{"\xff", false},
	}
	for _, tt := range tests {
		if err := ValidateID("id", tt.id); tt.ok != (err == nil) {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}

func TestValidateInvitees(t *testing.T) {
	fifty := make([]string, 50)
	for i := range fifty {
		fifty[i] = strings.Repeat("u", i+1)
	}
	tests := []struct {
		name string
		in   []string
		want []string
		ok   bool
	}{
		{"deduplicated in order", []string{"b", "a", "b"}, []string{"b", "a"}, true},
		{"fifty", fifty, fifty, true},
		{"fifty-one", append(fifty, "x"), nil, false},
		{"none", nil, nil, false},
		{"empty id", []string{"a", ""}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValidateInvitees(tt.in)
			if tt.ok != (err == nil) || strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, %v; want %v ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestNormalizePage(t *testing.T) {
	tests := []struct {
		name string
		in   PageRequest
		want PageRequest
		ok   bool
	}{
		{"default limit", PageRequest{}, PageRequest{Limit: DefaultPageLimit}, true},
		{"max", PageRequest{Limit: 100, Cursor: "c"}, PageRequest{Limit: 100, Cursor: "c"}, true},
		{"over max", PageRequest{Limit: 101}, PageRequest{}, false},
		{"negative", PageRequest{Limit: -1}, PageRequest{}, false},
		{"huge cursor", PageRequest{Cursor: strings.Repeat("a", MaxCursorLength+1)}, PageRequest{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePage(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	end := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	tests := []struct {
		before time.Duration
		want   int
	}{
		{45 * time.Second, 45},
		{44*time.Second + time.Millisecond, 45},
		{time.Millisecond, 1},
		{0, 1},
		{time.Minute, 60},
	}
	for _, tt := range tests {
		if got := RetryAfterSeconds(end.Add(-tt.before), end); got != tt.want {
			t.Errorf("RetryAfterSeconds(%s before end) = %d, want %d", tt.before, got, tt.want)
		}
	}
}

func TestNewServiceRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  ServiceConfig
	}{
		{"negative rate", ServiceConfig{PostsPerMinute: -1}},
		{"negative cap", ServiceConfig{MaxSubscriptions: -1}},
		{"negative ttl", ServiceConfig{ConnectionTTL: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewService(nopStore{}, tt.cfg); err == nil {
				t.Fatal("NewService accepted the config")
			}
		})
	}
	if _, err := NewService(nil, ServiceConfig{}); err == nil {
		t.Fatal("NewService accepted a nil store")
	}
}

// nopStore satisfies Store for constructor tests that never call it.
type nopStore struct{ Store }

func TestULIDGeneratorSorts(t *testing.T) {
	next := NewULIDGenerator()
	prev := next()
	for range 1000 {
		id := next()
		if id <= prev || len(id) != 26 {
			t.Fatalf("id %q after %q: want increasing 26-character ids", id, prev)
		}
		prev = id
	}
}
