package wsproto

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// fuzzLimits picks the limits for a fuzz input.
func fuzzLimits(sel uint8) Limits {
	switch sel % 4 {
	case 1:
		return Limits{MaxFrameBytes: 64, MaxMessageBytes: 100}
	case 2:
		return Limits{MaxMessageBytes: 1 << 16, RejectBinary: true}
	case 3:
		return Limits{MaxFrameBytes: 125}
	}
	return Limits{}
}

// FuzzParser feeds arbitrary bytes whole, one byte at a time and in random
// chunks. The parser must not panic, every chunking must give the same
// events and error, and it never holds more bytes than it was given.
func FuzzParser(f *testing.F) {
	seeds := [][]byte{
		text("Hello, world!"),
		cat(clientFrame(OpText, false, []byte("frag")), clientFrame(OpPing, true, []byte("p")), clientFrame(OpContinuation, true, []byte("ment"))),
		clientFrame(OpBinary, true, pattern(OpBinary, 300)),
		clientFrame(OpText, true, []byte("κόσμε\xed\xa0\x80")),
		cat(clientFrame(OpText, false, []byte("\xce")), clientFrame(OpContinuation, true, []byte("\xba"))),
		closeFrame(1000, "bye"),
		closeFrame(1005, ""),
		clientFrame(OpClose, true, []byte{3}),
		rawFrame(0xc1, true, []byte("rsv")),
		rawFrame(0x83, true, nil),
		rawFrame(0x81, false, []byte("unmasked")),
		frameWithLength(0x82, 8, 1<<63, nil),
		frameWithLength(0x82, 8, 70000, nil),
		frameWithLength(0x81, 2, 5, []byte("hello")),
		clientFrame(OpPing, true, make([]byte, 126)),
		cat(text("a"), closeFrame(1001, ""), text("b")),
	}
	for i, s := range seeds {
		f.Add(s, uint8(i), uint64(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, seed uint64) {
		l := fuzzLimits(sel)
		want := feedChunks(l, data, []int{len(data)})
		if want.buffered > len(data) {
			t.Fatalf("Buffered() = %d after %d bytes", want.buffered, len(data))
		}
		bytewise := feedChunks(l, data, fixedChunks(len(data), 1))
		if !sameResult(bytewise, want) {
			t.Fatalf("byte by byte: %v, %v; whole: %v, %v", bytewise.events, bytewise.err, want.events, want.err)
		}
		r := rand.New(rand.NewPCG(seed, 0))
		var pieces []int
		for n := len(data); n > 0; {
			k := 1 + r.IntN(n)
			pieces = append(pieces, k)
			n -= k
		}
		random := feedChunks(l, data, pieces)
		if !sameResult(random, want) {
			t.Fatalf("chunks %v: %v, %v; whole: %v, %v", pieces, random.events, random.err, want.events, want.err)
		}
		if want.err != nil && errCode(want.err) <= 0 {
			t.Fatalf("error %v is not a *CloseError", want.err)
		}
		for _, e := range want.events {
			if e.kind == "message" && e.op == OpText && !utf8.ValidString(e.payload) {
				t.Fatalf("delivered invalid text %q", e.payload)
			}
		}
	})
}

// FuzzUTF8 checks the incremental validator against utf8.Valid over any
// split of the input into pieces, and that it rejects a piece exactly when
// the bytes up to the end of that piece can no longer become valid UTF-8.
func FuzzUTF8(f *testing.F) {
	for _, c := range autobahnUTF8Cases() {
		f.Add([]byte(c.seq), uint64(len(c.seq)))
	}
	f.Add([]byte("κόσμε\xf4\x90\x80\x80edited"), uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, 1))
		var pieces []int
		for n := len(data); n > 0; {
			k := 1 + r.IntN(min(n, 8))
			pieces = append(pieces, k)
			n -= k
		}
		want := utf8.Valid(data)
		var v utf8Validator
		end := 0
		for i, n := range pieces {
			end += n
			ok := v.feed(data[end-n : end])
			if ok != hasValidCompletion(data[:end]) {
				t.Fatalf("% x in pieces %v: piece %d accepted=%v, disagreeing with whether a valid completion exists", data, pieces, i, ok)
			}
			if !ok {
				if want {
					t.Fatalf("% x in pieces %v: rejected valid UTF-8 at piece %d", data, pieces, i)
				}
				return
			}
		}
		if v.complete() != want {
			t.Fatalf("% x in pieces %v: complete()=%v, utf8.Valid=%v", data, pieces, v.complete(), want)
		}
	})
}
