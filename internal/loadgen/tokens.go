package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// CommandTokens gets each user's token from a shell command, for deployed
// stages whose issuer (Cognito, Auth0...) the tool cannot mint for. The
// command reads the user from GROUPCAST_SUB and GROUPCAST_NAME (environment,
// not string substitution, so odd ids cannot inject shell syntax) and prints
// the JWT on stdout.
type CommandTokens struct{ Command string }

func (c CommandTokens) Token(ctx context.Context, userID, name string) (string, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", c.Command)
	cmd.Env = append(os.Environ(), "GROUPCAST_SUB="+userID, "GROUPCAST_NAME="+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("token command for %s: %w: %s", userID, err, strings.TrimSpace(stderr.String()))
	}
	tok := strings.TrimSpace(string(out))
	if tok == "" {
		return "", fmt.Errorf("token command for %s printed nothing", userID)
	}
	return tok, nil
}
