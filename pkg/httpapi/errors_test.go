package httpapi

import (
	"testing"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// TestWireErrorsCoverEveryCode: a new domain code must get its HTTP status
// and wire code here, or it would silently answer 500.
func TestWireErrorsCoverEveryCode(t *testing.T) {
	for _, c := range groupcast.Codes {
		if w, ok := wireErrors[c]; !ok || w.status == 0 || w.code == "" {
			t.Errorf("domain code %q has no HTTP mapping", c)
		}
	}
	if len(wireErrors) != len(groupcast.Codes) {
		t.Errorf("wireErrors has %d entries for %d domain codes", len(wireErrors), len(groupcast.Codes))
	}
}
