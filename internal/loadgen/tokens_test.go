package loadgen

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandTokens(t *testing.T) {
	tests := []struct {
		name, command, want, wantErr string
	}{
		{name: "user from the environment", command: `printf '%s|%s\n' "$GROUPCAST_SUB" "$GROUPCAST_NAME"`, want: "u1|User One"},
		{name: "no shell injection through the id", command: `printf '%s' "$GROUPCAST_SUB"`, want: "u1"},
		{name: "prints nothing", command: "true", wantErr: "printed nothing"},
		{name: "fails", command: "echo boom >&2; exit 3", wantErr: "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CommandTokens{Command: tc.command}.Token(context.Background(), "u1", "User One")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Token = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// fakeAWS is an AWS CLI that logs its arguments, knows the users it created
// (one marker file each) and answers initiate-auth with a fixed token.
const fakeAWS = `#!/bin/sh
echo "$*" >> "$FAKE_DIR/calls"
case "$2" in
admin-get-user) [ -e "$FAKE_DIR/user-$6" ] ;;
admin-create-user) touch "$FAKE_DIR/user-$6" ;;
admin-set-user-password) ;;
initiate-auth) echo "id-token-for-$4" ;;
*) echo "unexpected $*" >&2; exit 1 ;;
esac
`

// The shipped cmd/cognito-token/cognito-token.sh, run through --token-command's
// CommandTokens against a fake AWS CLI.
func TestCognitoTokenScript(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("..", "..", "cmd", "cognito-token", "cognito-token.sh"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"COGNITO_USER_POOL_ID": "eu-west-1_pool", "COGNITO_CLIENT_ID": "client123",
		"GROUPCAST_PASSWORD": "Correct-Horse-1", "COGNITO_EMAIL_DOMAIN": "load.example",
	}
	tests := []struct {
		name    string
		user    string
		unset   string // variable left out of env
		set     map[string]string
		twice   bool
		wantErr string
		calls   []string // calls of the last run, in order, as "verb key=value..."
	}{
		{name: "creates the user, then signs in", user: "lg-u1", calls: []string{
			"cognito-idp admin-get-user --user-pool-id eu-west-1_pool --username lg-u1@load.example",
			"cognito-idp admin-create-user --user-pool-id eu-west-1_pool --username lg-u1@load.example --user-attributes Name=email,Value=lg-u1@load.example Name=email_verified,Value=true Name=name,Value=Load User --message-action SUPPRESS",
			"cognito-idp admin-set-user-password --user-pool-id eu-west-1_pool --username lg-u1@load.example --password Correct-Horse-1 --permanent",
			"cognito-idp initiate-auth --client-id client123 --auth-flow USER_PASSWORD_AUTH --auth-parameters USERNAME=lg-u1@load.example,PASSWORD=Correct-Horse-1 --query AuthenticationResult.IdToken --output text",
		}},
		{name: "existing user only signs in", user: "lg-u2", twice: true, calls: []string{
			"cognito-idp admin-get-user --user-pool-id eu-west-1_pool --username lg-u2@load.example",
			"cognito-idp initiate-auth --client-id client123 --auth-flow USER_PASSWORD_AUTH --auth-parameters USERNAME=lg-u2@load.example,PASSWORD=Correct-Horse-1 --query AuthenticationResult.IdToken --output text",
		}},
		{name: "no client id", user: "lg-u3", unset: "COGNITO_CLIENT_ID", wantErr: "COGNITO_CLIENT_ID"},
		{name: "no pool id", user: "lg-u3", unset: "COGNITO_USER_POOL_ID", wantErr: "COGNITO_USER_POOL_ID"},
		{name: "no password", user: "lg-u3", unset: "GROUPCAST_PASSWORD", wantErr: "GROUPCAST_PASSWORD"},
		{name: "comma in password", user: "lg-u3", set: map[string]string{"GROUPCAST_PASSWORD": "a,b"}, wantErr: "must not contain ','"},
		{name: "odd user id", user: "a b;rm", wantErr: "letters, digits"},
		{name: "no user", user: "", wantErr: "usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			aws := filepath.Join(dir, "aws")
			if err := os.WriteFile(aws, []byte(fakeAWS), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("FAKE_DIR", dir)
			t.Setenv("AWS_CLI", aws)
			for k, v := range env {
				t.Setenv(k, v) // also restores the variable after the test
				if k == tc.unset {
					os.Unsetenv(k)
				}
			}
			for k, v := range tc.set {
				t.Setenv(k, v)
			}
			tokens := CommandTokens{Command: script}
			runs := 1
			if tc.twice {
				runs = 2
			}
			var tok string
			var err error
			for i := 0; i < runs; i++ {
				os.Remove(filepath.Join(dir, "calls"))
				tok, err = tokens.Token(context.Background(), tc.user, "Load User")
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if _, statErr := os.Stat(filepath.Join(dir, "calls")); statErr == nil {
					t.Errorf("the AWS CLI ran despite the bad input")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok != "id-token-for-client123" {
				t.Errorf("token = %q, want the IdToken initiate-auth printed", tok)
			}
			data, err := os.ReadFile(filepath.Join(dir, "calls"))
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSpace(string(data)), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.calls, "\n") {
				t.Errorf("AWS CLI calls:\n got  %q\n want %q", got, tc.calls)
			}
		})
	}
}
