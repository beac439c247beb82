package wsproto

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// utf8Case is one byte sequence of Autobahn section 6, which follows
// Markus Kuhn's UTF-8 decoder stress test.
type utf8Case struct {
	name  string
	seq   string
	valid bool
}

// autobahnUTF8Cases returns the sequences of cases 6.5–6.23.
func autobahnUTF8Cases() []utf8Case {
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5" // κόσμε
	cs := []utf8Case{
		{"6.5.1 kosme", kosme, true},
	}
	for i := 1; i <= len(kosme); i++ {
		cs = append(cs, utf8Case{fmt.Sprintf("6.6.%d kosme prefix", i), kosme[:i], utf8.ValidString(kosme[:i])})
	}
	add := func(section string, valid bool, seqs ...string) {
		for i, s := range seqs {
			cs = append(cs, utf8Case{fmt.Sprintf("%s.%d", section, i+1), s, valid})
		}
	}
	// First and last possible sequence of each length.
	add("6.7 first possible", true, "\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80")
	add("6.8 first 5/6-byte", false, "\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80")
	add("6.9 last possible", true, "\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf")
	add("6.10 last 4/5/6-byte", false, "\xf7\xbf\xbf\xbf", "\xfb\xbf\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf\xbf")
	add("6.11 boundary", true, "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf")
	add("6.11 above U+10FFFF", false, "\xf4\x90\x80\x80", "\xf7\xbf\xbf\xbf", "\xf5\x80\x80\x80")
	// Unexpected continuation bytes.
	var allCont strings.Builder
	for c := 0x80; c <= 0xbf; c++ {
		allCont.WriteByte(byte(c))
	}
	add("6.12 continuation", false, "\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80", "\x80\xbf\x80\xbf",
		"\x80\xbf\x80\xbf\x80", "\x80\xbf\x80\xbf\x80\xbf", "\x80\xbf\x80\xbf\x80\xbf\x80", allCont.String())
	// Lonely start characters, each followed by a space.
	lonely := func(lo, hi int) string {
		var b strings.Builder
		for c := lo; c <= hi; c++ {
			b.WriteByte(byte(c))
			b.WriteByte(' ')
		}
		return b.String()
	}
	add("6.13 lonely start", false, lonely(0xc0, 0xdf), lonely(0xe0, 0xef), lonely(0xf0, 0xf7), lonely(0xf8, 0xfb), lonely(0xfc, 0xfd))
	missing := []string{"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80",
		"\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf",
		// Truncated sequences that would be valid if complete.
		"\xc2", "\xe0\xa0", "\xf0\x90\x80", "\xf4\x8f\xbf", "a\xe2\x82"}
	add("6.14 last continuation missing", false, missing...)
	add("6.15 concatenated incomplete", false, strings.Join(missing[:10], ""))
	add("6.16 impossible bytes", false, "\xfe", "\xff", "\xfe\xfe\xff\xff")
	add("6.17 overlong slash", false, "\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", "\xfc\x80\x80\x80\x80\xaf")
	add("6.18 maximum overlong", false, "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x87\xbf\xbf\xbf", "\xfc\x83\xbf\xbf\xbf\xbf")
	add("6.19 overlong nul", false, "\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x80\x80\x80\x80", "\xfc\x80\x80\x80\x80\x80")
	add("6.20 single surrogate", false, "\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf")
	add("6.21 paired surrogates", false, "\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xad\xbf\xed\xb0\x80",
		"\xed\xad\xbf\xed\xbf\xbf", "\xed\xae\x80\xed\xb0\x80", "\xed\xae\x80\xed\xbf\xbf", "\xed\xaf\xbf\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf")
	// Noncharacters are valid UTF-8.
	var nonchars []string
	for plane := rune(0); plane <= 0x10; plane++ {
		nonchars = append(nonchars, string(plane<<16|0xfffe), string(plane<<16|0xffff))
	}
	for r := rune(0xfdd0); r <= 0xfdef; r++ {
		nonchars = append(nonchars, string(r))
	}
	add("6.22 noncharacters", true, nonchars...)
	add("6.23 specials", true, "\xef\xbf\xbd", "\xef\xbb\xbf", "\xef\xbf\xb9\xef\xbf\xba\xef\xbf\xbb")
	add("6.23 invalid after valid text", false, "Hello\xc0\x80", kosme+"\xed\xa0\x80edited")
	return cs
}

// hasValidCompletion reports whether some bytes appended to p make valid
// UTF-8. A continuation byte of 0x80, 0x90 or 0xA0 fits every first
// continuation range and 0x80 every later one.
func hasValidCompletion(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	var buf [64]byte
	for _, first := range []byte{0x80, 0x90, 0xa0} {
		c := append(append(buf[:0], p...), first)
		for range 3 {
			if utf8.Valid(c) {
				return true
			}
			c = append(c, 0x80)
		}
	}
	return false
}

// failIndex returns the index of the byte of seq at which a fail-fast
// validator must reject it, len(seq)-1 for a sequence cut short at its end,
// and -1 for valid UTF-8.
func failIndex(seq string) int {
	if utf8.ValidString(seq) {
		return -1
	}
	for i := range len(seq) {
		if !hasValidCompletion([]byte(seq[:i+1])) {
			return i
		}
	}
	return len(seq) - 1
}

// TestAutobahn6UTF8 covers cases 6.1–6.23. Each sequence is sent as one
// text frame and as one frame per byte. A valid sequence must arrive
// intact; an invalid one must fail with 1007 at the byte where it becomes
// impossible ("fail fast"), even when that byte is in a later frame than
// the start of its code point.
func TestAutobahn6UTF8(t *testing.T) {
	t.Run("6.1 empty", func(t *testing.T) {
		expect(t, Limits{}, text(""), 0, msgEv(OpText, ""))
		expect(t, Limits{}, cat(clientFrame(OpText, false, nil), clientFrame(OpContinuation, false, nil), clientFrame(OpContinuation, true, nil)),
			0, msgEv(OpText, ""))
		expect(t, Limits{}, cat(clientFrame(OpText, false, nil), clientFrame(OpContinuation, false, []byte("middle frame payload")),
			clientFrame(OpContinuation, true, nil)), 0, msgEv(OpText, "middle frame payload"))
	})
	t.Run("6.2 valid in fragments", func(t *testing.T) {
		s := "Hello-µ@ßöäüàá-UTF-8!!"
		expect(t, Limits{}, text(s), 0, msgEv(OpText, s))
		// Split on code point boundaries, then inside code points.
		var onBoundaries []byte
		for i, r := range s {
			op := OpContinuation
			if i == 0 {
				op = OpText
			}
			onBoundaries = append(onBoundaries, clientFrame(op, i+utf8.RuneLen(r) == len(s), []byte(string(r)))...)
		}
		expect(t, Limits{}, onBoundaries, 0, msgEv(OpText, s))
		for _, v := range []string{s, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", "a€𝄞b\U0010FFFF"} {
			expect(t, Limits{}, perByteFrames(v), 0, msgEv(OpText, v))
			for cut := 1; cut < len(v); cut++ {
				expect(t, Limits{}, cat(clientFrame(OpText, false, []byte(v[:cut])), clientFrame(OpContinuation, true, []byte(v[cut:]))),
					0, msgEv(OpText, v))
			}
		}
	})
	t.Run("6.3 invalid", func(t *testing.T) {
		s := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"
		expect(t, Limits{}, text(s), CloseInvalidPayload)
		expect(t, Limits{}, perByteFrames(s), CloseInvalidPayload)
	})
	t.Run("6.4 fail fast", testUTF8FailFastFrames)
	for _, c := range autobahnUTF8Cases() {
		t.Run(c.name, func(t *testing.T) {
			if utf8.ValidString(c.seq) != c.valid {
				t.Fatalf("table says valid=%v for % x, utf8.ValidString disagrees", c.valid, c.seq)
			}
			if c.valid {
				expect(t, Limits{}, text(c.seq), 0, msgEv(OpText, c.seq))
				expect(t, Limits{}, perByteFrames(c.seq), 0, msgEv(OpText, c.seq))
				return
			}
			expect(t, Limits{}, text(c.seq), CloseInvalidPayload)
			expect(t, Limits{}, perByteFrames(c.seq), CloseInvalidPayload)
			checkFailByte(t, c.seq)
		})
	}
}

// perByteFrames sends s as a text message of one frame per byte.
func perByteFrames(s string) []byte {
	if s == "" {
		return text("")
	}
	var out []byte
	for i := range len(s) {
		op := OpContinuation
		if i == 0 {
			op = OpText
		}
		out = append(out, clientFrame(op, i == len(s)-1, []byte(s[i:i+1]))...)
	}
	return out
}

// checkFailByte feeds seq as one frame, byte by byte, and as one frame per
// byte, frame by frame, and checks that the parser fails exactly at the
// byte failIndex names.
func checkFailByte(t *testing.T, seq string) {
	t.Helper()
	want := failIndex(seq)
	f := text(seq)
	hdr := len(f) - len(seq)
	p := NewParser(Limits{})
	for i := range f {
		err := p.Feed(f[i:i+1], &recorder{})
		if err == nil {
			continue
		}
		if errCode(err) != CloseInvalidPayload || i-hdr != want {
			t.Errorf("one frame: failed at payload byte %d with %v, want byte %d with 1007", i-hdr, err, want)
		}
		break
	}
	p = NewParser(Limits{})
	for i := range len(seq) {
		op := OpContinuation
		if i == 0 {
			op = OpText
		}
		err := p.Feed(clientFrame(op, i == len(seq)-1, []byte(seq[i:i+1])), &recorder{})
		if err == nil {
			continue
		}
		if errCode(err) != CloseInvalidPayload || i != want {
			t.Errorf("frame per byte: failed at frame %d with %v, want frame %d with 1007", i, err, want)
		}
		return
	}
	t.Errorf("frame per byte: no error, want 1007 at frame %d", want)
}

// testUTF8FailFastFrames covers cases 6.4.1–6.4.4: the parser must fail
// on the frame, or the chunk of a frame, that holds the impossible bytes,
// without waiting for the rest of the message.
func testUTF8FailFastFrames(t *testing.T) {
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	tests := []struct {
		name   string
		frames [][]byte
		failAt int
	}{
		{"6.4.1 invalid code point in the middle frame", [][]byte{
			clientFrame(OpText, false, []byte(kosme)),
			clientFrame(OpContinuation, false, []byte("\xf4\x90\x80\x80")),
			clientFrame(OpContinuation, true, []byte("edited")),
		}, 1},
		{"6.4.2 invalid code point split across frames", [][]byte{
			clientFrame(OpText, false, []byte(kosme+"\xf4")),
			clientFrame(OpContinuation, false, []byte("\x90\x80\x80")),
			clientFrame(OpContinuation, true, []byte("edited")),
		}, 1},
		{"surrogate split across frames", [][]byte{
			clientFrame(OpText, false, []byte("ab\xed")),
			clientFrame(OpContinuation, false, []byte("\xa0")),
			clientFrame(OpContinuation, true, []byte("\x80")),
		}, 1},
		{"truncated at the end", [][]byte{
			clientFrame(OpText, false, []byte(kosme)),
			clientFrame(OpContinuation, false, []byte("\xe2\x82")),
			clientFrame(OpContinuation, true, nil),
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewParser(Limits{})
			for i, f := range tt.frames {
				err := p.Feed(f, &recorder{})
				switch {
				case i < tt.failAt && err != nil:
					t.Fatalf("frame %d: %v, want no error before frame %d", i, err, tt.failAt)
				case i == tt.failAt:
					if errCode(err) != CloseInvalidPayload {
						t.Fatalf("frame %d: %v, want 1007", i, err)
					}
					return
				}
			}
		})
	}
	// 6.4.3 and 6.4.4: the same sequence in one frame, sent in parts. The
	// parser fails in the part that holds 0x90, before "edited" arrives.
	f := text(kosme + "\xf4\x90\x80\x80edited")
	badAt := len(f) - len("\x90\x80\x80edited")
	p := NewParser(Limits{})
	if err := p.Feed(f[:badAt], &recorder{}); err != nil {
		t.Fatalf("6.4.3: first part: %v", err)
	}
	if err := p.Feed(f[badAt:badAt+1], &recorder{}); errCode(err) != CloseInvalidPayload {
		t.Fatalf("6.4.3: the byte 0x90: %v, want 1007", err)
	}
}
