package apigwid

import (
	"regexp"
	"testing"
)

func TestNewHasAPIGatewaysFormat(t *testing.T) {
	format := regexp.MustCompile(`^[A-Za-z0-9]{15}=$`)
	seen := map[string]bool{}
	for range 1000 {
		id := New()
		if !format.MatchString(id) {
			t.Fatalf("id %q is not 15 alphanumerics and '='", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
}
