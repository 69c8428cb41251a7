package identity

import (
	"errors"
	"testing"
)

func TestFromClaims(t *testing.T) {
	tests := []struct {
		name    string
		claims  map[string]any
		want    Caller
		wantErr bool
	}{
		{name: "name wins", claims: map[string]any{"sub": "u1", "name": "Ada", "preferred_username": "ada"}, want: Caller{"u1", "Ada"}},
		{name: "preferred_username next", claims: map[string]any{"sub": "u1", "preferred_username": "ada"}, want: Caller{"u1", "ada"}},
		{name: "sub last", claims: map[string]any{"sub": "u1"}, want: Caller{"u1", "u1"}},
		{name: "display name trimmed", claims: map[string]any{"sub": "u1", "name": "  Ada  "}, want: Caller{"u1", "Ada"}},
		{name: "blank name falls through", claims: map[string]any{"sub": "u1", "name": "  ", "preferred_username": "ada"}, want: Caller{"u1", "ada"}},
		{name: "name with control characters falls through", claims: map[string]any{"sub": "u1", "name": "A\x1bda"}, want: Caller{"u1", "u1"}},
		{name: "non-string name ignored", claims: map[string]any{"sub": "u1", "name": 42.0}, want: Caller{"u1", "u1"}},
		{name: "Cognito UUID sub", claims: map[string]any{"sub": "3b1c4f0e-2a7d-4c55-9f0e-7a1d2c3b4e5f"}, want: Caller{"3b1c4f0e-2a7d-4c55-9f0e-7a1d2c3b4e5f", "3b1c4f0e-2a7d-4c55-9f0e-7a1d2c3b4e5f"}},
		{name: "Auth0 style sub", claims: map[string]any{"sub": "google-oauth2|1234"}, want: Caller{"google-oauth2|1234", "google-oauth2|1234"}},
		{name: "non-ASCII letters kept", claims: map[string]any{"sub": "zoë"}, want: Caller{"zoë", "zoë"}},

		{name: "no sub", claims: map[string]any{"name": "Nobody"}, wantErr: true},
		{name: "empty sub", claims: map[string]any{"sub": "", "name": "Nobody"}, wantErr: true},
		{name: "blank sub", claims: map[string]any{"sub": "  "}, wantErr: true},
		{name: "non-string sub", claims: map[string]any{"sub": 7.0}, wantErr: true},
		{name: "leading space", claims: map[string]any{"sub": " victim"}, wantErr: true},
		{name: "trailing space", claims: map[string]any{"sub": "victim "}, wantErr: true},
		{name: "leading tab", claims: map[string]any{"sub": "\tvictim"}, wantErr: true},
		{name: "trailing newline", claims: map[string]any{"sub": "victim\n"}, wantErr: true},
		{name: "no-break space", claims: map[string]any{"sub": "\u00a0victim"}, wantErr: true},
		{name: "ideographic space", claims: map[string]any{"sub": "victim\u3000"}, wantErr: true},
		{name: "inner space", claims: map[string]any{"sub": "vic tim"}, wantErr: true},
		{name: "zero-width space", claims: map[string]any{"sub": "\u200bvictim"}, wantErr: true},
		{name: "bidi override", claims: map[string]any{"sub": "\u202evictim"}, wantErr: true},
		{name: "NUL", claims: map[string]any{"sub": "victim\x00"}, wantErr: true},
		{name: "invalid UTF-8", claims: map[string]any{"sub": "victim\xff"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromClaims(tt.claims)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidSubject) {
					t.Fatalf("FromClaims = %+v, %v; want ErrInvalidSubject", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FromClaims = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// API Gateway hands the HTTP integration every claim as a string; the same
// rules apply to that form.
func TestFromClaimsStringified(t *testing.T) {
	tests := []struct {
		name    string
		claims  map[string]string
		want    Caller
		wantErr bool
	}{
		{name: "valid", claims: map[string]string{"sub": "u1", "name": "Ada"}, want: Caller{"u1", "Ada"}},
		{name: "leading space refused", claims: map[string]string{"sub": " victim"}, wantErr: true},
		{name: "empty refused", claims: map[string]string{"sub": ""}, wantErr: true},
		{name: "nil map", claims: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromClaims(tt.claims)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("FromClaims = %+v, %v; want %+v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestAudienceMatches(t *testing.T) {
	accepted := []string{"ours", "also-ours"}
	tests := []struct {
		name   string
		claims map[string]any
		want   bool
	}{
		{name: "aud string", claims: map[string]any{"aud": "ours"}, want: true},
		{name: "aud list from JSON", claims: map[string]any{"aud": []any{"other", "also-ours"}}, want: true},
		{name: "aud list of strings", claims: map[string]any{"aud": []string{"ours"}}, want: true},
		{name: "client_id without aud", claims: map[string]any{"client_id": "ours"}, want: true},
		{name: "null aud falls back to client_id", claims: map[string]any{"aud": nil, "client_id": "ours"}, want: true},

		{name: "aud names another client, client_id ours", claims: map[string]any{"aud": "other", "client_id": "ours"}},
		{name: "aud list of others, client_id ours", claims: map[string]any{"aud": []any{"other"}, "client_id": "ours"}},
		{name: "empty aud list, client_id ours", claims: map[string]any{"aud": []any{}, "client_id": "ours"}},
		{name: "empty aud string", claims: map[string]any{"aud": "", "client_id": "ours"}},
		{name: "aud of the wrong type", claims: map[string]any{"aud": 1.0, "client_id": "ours"}},
		{name: "wrong aud", claims: map[string]any{"aud": "other"}},
		{name: "wrong client_id", claims: map[string]any{"client_id": "other"}},
		{name: "neither", claims: map[string]any{"sub": "u1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AudienceMatches(tt.claims, accepted); got != tt.want {
				t.Errorf("AudienceMatches(%v) = %v, want %v", tt.claims, got, tt.want)
			}
		})
	}
	t.Run("empty accepted audience never matches", func(t *testing.T) {
		if AudienceMatches(map[string]any{"aud": ""}, []string{""}) {
			t.Error("an empty aud matched an empty accepted audience")
		}
	})
}
