package awsevent

import (
	"regexp"
	"testing"
	"time"
)

// idPattern is the shape of every AWS WebSocket id: 15 URL-safe base64
// characters and one "=" of padding.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{15}=$`)

func TestNewID(t *testing.T) {
	tests := []struct {
		name  string
		check func(t *testing.T, id string)
	}{
		{"length", func(t *testing.T, id string) {
			if len(id) != 16 {
				t.Errorf("len(%q) = %d, want 16", id, len(id))
			}
		}},
		{"alphabet", func(t *testing.T, id string) {
			if !idPattern.MatchString(id) {
				t.Errorf("%q does not match %s", id, idPattern)
			}
		}},
		{"padding", func(t *testing.T, id string) {
			if id[15] != '=' || id[14] == '=' {
				t.Errorf("%q: want exactly one trailing '='", id)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 1000 {
				tt.check(t, NewID())
			}
		})
	}
}

func TestNewIDUnique(t *testing.T) {
	const n = 100_000
	seen := make(map[string]struct{}, n)
	var sawDash, sawUnderscore bool
	for range n {
		id := NewID()
		if _, dup := seen[id]; dup {
			t.Fatalf("duplicate id %q after %d ids", id, len(seen))
		}
		seen[id] = struct{}{}
		for i := range 15 {
			switch id[i] {
			case '-':
				sawDash = true
			case '_':
				sawUnderscore = true
			case '+', '/':
				t.Fatalf("%q uses the standard base64 alphabet", id)
			}
		}
	}
	// Over 1.5M random characters each of the 64 symbols appears about
	// 23k times; missing one means the alphabet is wrong.
	if !sawDash || !sawUnderscore {
		t.Errorf("saw '-' %v, '_' %v; want both from the URL-safe alphabet", sawDash, sawUnderscore)
	}
}

func TestRequestTime(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*60*60)
	newYork := time.FixedZone("EST", -5*60*60)
	india := time.FixedZone("IST", 5*60*60+30*60)
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"utc", time.Date(2024, time.January, 20, 11, 55, 0, 0, time.UTC), "20/Jan/2024:11:55:00 +0000"},
		{"aws fixture epoch", time.UnixMilli(1705751700453), "20/Jan/2024:11:55:00 +0000"},
		{"east of utc crosses midnight back", time.Date(2024, time.January, 21, 2, 5, 9, 0, tokyo), "20/Jan/2024:17:05:09 +0000"},
		{"west of utc crosses midnight forward", time.Date(2023, time.December, 31, 22, 0, 0, 0, newYork), "01/Jan/2024:03:00:00 +0000"},
		{"half-hour offset", time.Date(2024, time.March, 5, 6, 0, 0, 0, india), "05/Mar/2024:00:30:00 +0000"},
		{"sub-second is truncated", time.Date(2024, time.July, 9, 8, 7, 6, 999_999_999, time.UTC), "09/Jul/2024:08:07:06 +0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RequestTime(tt.in); got != tt.want {
				t.Errorf("RequestTime(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRequestTimeReused: the text of a second is formatted once and
// reused; a time in another zone or nanosecond of the same second reads
// the same, and the seconds around it read their own.
func TestRequestTimeReused(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*60*60)
	base := time.Date(2024, time.January, 21, 2, 5, 9, 100, tokyo)
	steps := []struct {
		in   time.Time
		want string
	}{
		{base, "20/Jan/2024:17:05:09 +0000"},
		{base.UTC().Add(900 * time.Millisecond), "20/Jan/2024:17:05:09 +0000"},
		{base.Add(time.Second), "20/Jan/2024:17:05:10 +0000"},
		{base.Add(-time.Second), "20/Jan/2024:17:05:08 +0000"},
		{base, "20/Jan/2024:17:05:09 +0000"},
	}
	for i, st := range steps {
		if got := RequestTime(st.in); got != st.want {
			t.Errorf("step %d: RequestTime(%v) = %q, want %q", i, st.in, got, st.want)
		}
	}
}

func TestTraceID(t *testing.T) {
	now := time.Unix(0x60351922, 0)
	got := traceID(now)
	if !regexp.MustCompile(`^Root=1-60351922-[0-9a-f]{24}$`).MatchString(got) {
		t.Errorf("traceID = %q, want Root=1-60351922-<24 hex>", got)
	}
	if other := traceID(now); other == got {
		t.Errorf("two trace ids are both %q", got)
	}
}
