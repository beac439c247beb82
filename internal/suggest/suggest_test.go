package suggest

import (
	"strings"
	"testing"
)

func TestDistance(t *testing.T) {
	long := strings.Repeat("a", 65)
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"listen", "listen", 0},
		{"lisen", "listen", 1},
		{"routeKey", "route", 3},
		{"abc", "", 3},
		{"kitten", "sitting", 3},
		{long, "a", 65},
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestNearest(t *testing.T) {
	names := []string{"routeKey", "requestId", "connectionId"}
	if got := Nearest("routekey", names, 4); got != "routeKey" {
		t.Errorf("Nearest(routekey) = %q", got)
	}
	if got := Nearest("route", names, 4); got != "routeKey" {
		t.Errorf("Nearest(route) = %q", got)
	}
	if got := Nearest("zzzzzzzz", names, 4); got != "" {
		t.Errorf("Nearest(zzzzzzzz) = %q, want none", got)
	}
}
