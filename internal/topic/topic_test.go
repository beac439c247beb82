package topic

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"orders/42", true},
		{"é/ü", true},
		{"a b", true},
		{"*", true},
		{"user/{principalId}/x", true},
		{".a/..b/c.", true},
		{strings.Repeat("x", MaxBytes), true},
		{strings.Repeat("é", MaxBytes/2), true},
		{"", false},
		{strings.Repeat("x", MaxBytes+1), false},
		{strings.Repeat("é", MaxBytes/2) + "x", false},
		{"a\nb", false},
		{"a\x00", false},
		{"a\x7f", false},
		{"a\u0085", false},
		{"a\u00a0b", false},
		{"a\u2028b", false},
		{"a\u200bb", false},
		{"a\xff", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"/", false},
		{".", false},
		{"..", false},
		{"a/./b", false},
		{"a/../b", false},
		{"a/..", false},
		{"./a", false},
	}
	for _, tt := range tests {
		err := Check(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && len(tt.name) > 2 && strings.Contains(err.Error(), tt.name) {
			t.Errorf("Check(%q) = %v: the error repeats the name", tt.name, err)
		}
	}
}

func FuzzCheck(f *testing.F) {
	f.Add("orders/42")
	f.Add("a//b")
	f.Add("a/../b")
	f.Fuzz(func(t *testing.T, name string) {
		if Check(name) != nil {
			return
		}
		if name == "" || len(name) > MaxBytes || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") ||
			strings.Contains(name, "//") || strings.ContainsAny(name, "\x00\n\r\t\x7f") {
			t.Fatalf("Check accepted %q", name)
		}
	})
}
