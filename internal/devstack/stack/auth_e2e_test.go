package stack_test

import (
	"net/http"
	"testing"

	"github.com/groupcast/groupcast/pkg/client"
)

// A validly signed token whose sub is another user's id with whitespace
// around it must never act as that user: REST answers 401 and the WebSocket
// handshake fails with 401, through the real gateways, authorizer and
// functions (the JWKS found by OIDC discovery on the local issuer).
func TestWhitespaceSubjectNeverActsAsAnotherUser(t *testing.T) {
	s := shared
	victim := newUser(t, s, "victim")
	g := groupWith(t, victim, "private")
	for name, sub := range map[string]string{
		"leading space":   " " + victim.ID,
		"trailing space":  victim.ID + " ",
		"no-break space":  "\u00a0" + victim.ID,
		"ideographic gap": victim.ID + "\u3000",
	} {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			tok, err := s.Mint(sub, "Mallory")
			if err != nil {
				t.Fatal(err)
			}
			attacker := &client.HTTP{BaseURL: s.Endpoints.HTTPAPI, Token: tok}
			if _, err := attacker.ListPosts(ctx, g.GroupID, ""); !client.IsStatus(err, http.StatusUnauthorized) {
				t.Errorf("REST as %q: %v, want 401", sub, err)
			}
			c, err := client.Dial(ctx, s.Endpoints.WebSocket, tok)
			if err == nil {
				c.Close()
			}
			if st := client.HandshakeStatus(err); st != http.StatusUnauthorized {
				t.Errorf("WebSocket as %q: %v (status %d), want 401", sub, err, st)
			}
		})
	}
	// The victim's own token still works on both paths.
	ctx := testContext(t)
	if _, err := victim.ListPosts(ctx, g.GroupID, ""); err != nil {
		t.Errorf("victim REST: %v", err)
	}
	victim.connect(t, s, g.GroupID)
}
