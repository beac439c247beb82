package wsproto

import "unicode/utf8"

// utf8Validator checks UTF-8 that arrives in pieces. It rejects a piece as
// soon as the bytes seen so far can no longer be the start of valid UTF-8,
// so an impossible sequence fails in the piece where it appears even when a
// code point is split between pieces. The zero value is ready to use and
// expects the start of a text.
type utf8Validator struct {
	// need is the number of continuation bytes still expected for the
	// current code point.
	need uint8
	// lo and hi bound the next continuation byte. They are narrower than
	// 0x80–0xBF only for the byte after E0 (no overlongs), ED (no
	// surrogates), F0 (no overlongs) and F4 (nothing above U+10FFFF).
	lo, hi byte
}

// feed consumes b and reports whether everything consumed so far is a valid
// UTF-8 prefix. After it returns false the validator's state is undefined
// until reset.
func (v *utf8Validator) feed(b []byte) bool {
	for v.need > 0 {
		if len(b) == 0 {
			return true
		}
		if !v.step(b[0]) {
			return false
		}
		b = b[1:]
	}
	cut := incompleteTail(b)
	if !utf8.Valid(b[:cut]) {
		return false
	}
	for _, c := range b[cut:] {
		if !v.step(c) {
			return false
		}
	}
	return true
}

// complete reports whether the text ended on a code point boundary.
func (v *utf8Validator) complete() bool { return v.need == 0 }

// reset prepares the validator for a new text.
func (v *utf8Validator) reset() { *v = utf8Validator{} }

// step consumes one byte.
func (v *utf8Validator) step(c byte) bool {
	if v.need > 0 {
		if c < v.lo || c > v.hi {
			return false
		}
		v.need--
		v.lo, v.hi = 0x80, 0xBF
		return true
	}
	switch {
	case c < 0x80:
		return true
	case c < 0xC2: // unexpected continuation byte, or C0/C1 (overlong)
		return false
	case c < 0xE0:
		v.need, v.lo, v.hi = 1, 0x80, 0xBF
	case c == 0xE0:
		v.need, v.lo, v.hi = 2, 0xA0, 0xBF
	case c == 0xED:
		v.need, v.lo, v.hi = 2, 0x80, 0x9F
	case c < 0xF0:
		v.need, v.lo, v.hi = 2, 0x80, 0xBF
	case c == 0xF0:
		v.need, v.lo, v.hi = 3, 0x90, 0xBF
	case c < 0xF4:
		v.need, v.lo, v.hi = 3, 0x80, 0xBF
	case c == 0xF4:
		v.need, v.lo, v.hi = 3, 0x80, 0x8F
	default: // F5–FF never appear in UTF-8
		return false
	}
	return true
}

// incompleteTail returns the index where a trailing multi-byte sequence
// that b cuts short begins, or len(b) when b does not end inside one. Only
// the last three bytes can hold such a sequence.
func incompleteTail(b []byte) int {
	n := len(b)
	for i := n - 1; i >= 0 && i >= n-3; i-- {
		c := b[i]
		switch {
		case c < 0x80:
			return n
		case c < 0xC0:
			continue
		case c < 0xE0:
			if i+2 > n {
				return i
			}
		case c < 0xF0:
			if i+3 > n {
				return i
			}
		case c < 0xF8:
			if i+4 > n {
				return i
			}
		}
		return n
	}
	return n
}
