package wsproto

import (
	"testing"
	"unicode/utf8"
)

// validatePieces feeds b to a new validator in the given pieces and
// returns the index of the piece that failed (len(pieces) when only the
// final completeness check failed), or -1 when b is valid.
func validatePieces(b []byte, pieces []int) int {
	var v utf8Validator
	for i, n := range pieces {
		if !v.feed(b[:n]) {
			return i
		}
		b = b[n:]
	}
	if !v.complete() {
		return len(pieces)
	}
	return -1
}

// TestUTF8ValidatorShort compares the validator with utf8.Valid for every
// 1- and 2-byte string, for 3-byte strings with any second byte and 4-byte
// strings with a 4-byte lead, built from the bytes where the UTF-8 ranges
// change, whole and split at every point. It also
// checks that each prefix is rejected exactly when no bytes can complete
// it.
func TestUTF8ValidatorShort(t *testing.T) {
	edges := []byte{0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec,
		0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff}
	check := func(b []byte) {
		want := utf8.Valid(b)
		for cut := 0; cut <= len(b); cut++ {
			if got := validatePieces(b, []int{cut, len(b) - cut}) == -1; got != want {
				t.Fatalf("% x split at %d: valid=%v, utf8.Valid=%v", b, cut, got, want)
			}
		}
		var v utf8Validator
		for i := range b {
			ok := v.feed(b[i : i+1])
			if ok != hasValidCompletion(b[:i+1]) {
				t.Fatalf("% x: prefix of %d bytes accepted=%v, but a valid completion exists=%v", b, i+1, ok, !ok)
			}
			if !ok {
				break
			}
		}
	}
	for a := range 256 {
		check([]byte{byte(a)})
		for b := range 256 {
			check([]byte{byte(a), byte(b)})
		}
	}
	for _, a := range edges {
		for b := range 256 {
			for _, c := range edges {
				check([]byte{a, byte(b), c})
			}
		}
	}
	for _, a := range []byte{0xf0, 0xf3, 0xf4, 0xf5} {
		for _, b := range edges {
			for _, c := range edges {
				for _, d := range edges {
					check([]byte{a, b, c, d})
				}
			}
		}
	}
}

// TestUTF8ValidatorLong checks long texts, where the bulk of the work goes
// to utf8.Valid, split at every point near a multi-byte character.
func TestUTF8ValidatorLong(t *testing.T) {
	valid := "ASCII run of some length, then κόσμε, €uro, 𝄞 clef and U+10FFFF \U0010FFFF, end."
	texts := []string{
		valid,
		valid + "\xed\xa0\x80" + valid,
		valid + "\xf4\x90\x80\x80",
		valid + "\xe2\x82",
		"\xc0\xaf" + valid,
		valid[:len(valid)-1] + "\x80",
	}
	for _, s := range texts {
		b := []byte(s)
		want := utf8.Valid(b)
		for cut := 0; cut <= len(b); cut++ {
			for cut2 := cut; cut2 <= len(b) && cut2 < cut+5; cut2++ {
				got := validatePieces(b, []int{cut, cut2 - cut, len(b) - cut2}) == -1
				if got != want {
					t.Fatalf("%q split at %d and %d: valid=%v, want %v", s, cut, cut2, got, want)
				}
			}
		}
	}
}

// TestIncompleteTail checks where the validator hands a text's end to its
// byte-at-a-time path.
func TestIncompleteTail(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"ab\xc3", 2},
		{"ab\xc3\xa9", 4},
		{"a\xe2\x82", 1},
		{"\xe2\x82\xac", 3},
		{"\xf0\x9d\x84", 0},
		{"\xf0\x9d\x84\x9e", 4},
		{"a\x80\x80\x80", 4},
		{"a\xff", 2},
	}
	for _, tt := range tests {
		if got := incompleteTail([]byte(tt.in)); got != tt.want {
			t.Errorf("incompleteTail(% x) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
