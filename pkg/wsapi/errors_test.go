package wsapi

import (
	"testing"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// TestWireErrorsCoverEveryCode: a new domain code must get its handshake
// status and reply code here, or it would be answered as internal.
func TestWireErrorsCoverEveryCode(t *testing.T) {
	for _, c := range groupcast.Codes {
		if w, ok := wireErrors[c]; !ok || w.handshake == 0 || w.reply == "" {
			t.Errorf("domain code %q has no WebSocket mapping", c)
		}
	}
	if len(wireErrors) != len(groupcast.Codes) {
		t.Errorf("wireErrors has %d entries for %d domain codes", len(wireErrors), len(groupcast.Codes))
	}
}
