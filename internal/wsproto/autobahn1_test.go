package wsproto

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// The TestAutobahnN tests port the server cases of the Autobahn|Testsuite
// (sections 1–7 and 9) to the parser: each sends the frames of a case and
// checks what the parser delivers and the close code it fails with. Every
// stream is fed whole, one byte at a time and in random chunks (see parse),
// which also covers the suite's "chopped" variants.

// TestAutobahn1Framing covers cases 1.1.x (text) and 1.2.x (binary):
// payloads whose lengths sit at the 7-bit, 16-bit and 64-bit length
// encodings.
func TestAutobahn1Framing(t *testing.T) {
	sizes := []int{0, 125, 126, 127, 128, 65535, 65536}
	for _, op := range []Opcode{OpText, OpBinary} {
		fill := "*"
		if op == OpBinary {
			fill = "\xfe"
		}
		for _, n := range sizes {
			payload := strings.Repeat(fill, n)
			t.Run(fmt.Sprintf("%v/%d", op, n), func(t *testing.T) {
				f := clientFrame(op, true, []byte(payload))
				wantLen7 := byte(n)
				switch {
				case n > 65535:
					wantLen7 = 127
				case n > 125:
					wantLen7 = 126
				}
				if got := f[1] & 0x7f; got != wantLen7 {
					t.Fatalf("length byte = %d, want %d", got, wantLen7)
				}
				expect(t, Limits{}, f, 0, msgEv(op, payload))
			})
		}
	}
}

// TestFramingLengthEncodings sends each Autobahn 1.x size with every length
// encoding that can hold it. RFC 6455 asks senders for the minimal encoding
// but the parser accepts longer ones, as most servers do.
func TestFramingLengthEncodings(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 127, 128, 65535, 65536} {
		payload := strings.Repeat("x", n)
		for _, lenBytes := range []int{0, 2, 8} {
			if lenBytes == 0 && n > 125 || lenBytes == 2 && n > 65535 {
				continue
			}
			t.Run(fmt.Sprintf("%d/len%d", n, lenBytes), func(t *testing.T) {
				f := frameWithLength(0x81, lenBytes, uint64(n), []byte(payload))
				expect(t, Limits{}, f, 0, msgEv(OpText, payload))
			})
		}
	}
}

// TestFramingMSBLength checks that a 64-bit length with the most
// significant bit set fails with 1002 as soon as the length is read.
func TestFramingMSBLength(t *testing.T) {
	for _, l := range []uint64{1 << 63, 1<<64 - 1} {
		f := frameWithLength(0x82, 8, l, nil)
		expect(t, Limits{}, f, CloseProtocolError)
		// The masking key has not arrived yet: the length alone decides.
		p := NewParser(Limits{})
		if err := p.Feed(f[:10], &recorder{}); errCode(err) != CloseProtocolError {
			t.Errorf("length %#x: Feed(header without key) = %v, want 1002", l, err)
		}
	}
	// The largest legal length is accepted and not buffered up front.
	p := NewParser(Limits{})
	f := frameWithLength(0x82, 8, 1<<63-1, []byte("abc"))
	if err := p.Feed(f, &recorder{}); err != nil {
		t.Fatalf("Feed(2^63-1 length) = %v", err)
	}
	if b := p.Buffered(); b != 3 {
		t.Errorf("Buffered() = %d after 3 payload bytes of a huge frame, want 3", b)
	}
}

// TestFramingUnmasked checks that an unmasked client frame fails with 1002,
// data or control, at its second byte.
func TestFramingUnmasked(t *testing.T) {
	for _, b0 := range []byte{0x81, 0x82, 0x01, 0x88, 0x89, 0x8a} {
		f := rawFrame(b0, false, []byte("Hello"))
		expect(t, Limits{}, f, CloseProtocolError)
		p := NewParser(Limits{})
		if err := p.Feed(f[:2], &recorder{}); errCode(err) != CloseProtocolError {
			t.Errorf("first byte %#x: Feed(2 header bytes) = %v, want 1002", b0, err)
		}
	}
	// An unmasked frame after a valid one still delivers the valid one.
	expect(t, Limits{}, cat(text("first"), rawFrame(0x81, false, []byte("second"))), CloseProtocolError,
		msgEv(OpText, "first"))
}

// TestAutobahn2PingPong covers cases 2.1–2.11 and the fragmented control
// frames of 5.1 and 5.2.
func TestAutobahn2PingPong(t *testing.T) {
	ping := func(s string) []byte { return clientFrame(OpPing, true, []byte(s)) }
	pong := func(s string) []byte { return clientFrame(OpPong, true, []byte(s)) }
	bin := "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
	p125 := strings.Repeat("\xfe", 125)
	var tenPings [][]byte
	var tenEvents []event
	for i := range 10 {
		s := fmt.Sprintf("payload-%d", i)
		tenPings = append(tenPings, ping(s))
		tenEvents = append(tenEvents, pingEv(s))
	}
	tests := []struct {
		name   string
		stream []byte
		code   int
		want   []event
	}{
		{"2.1 ping without payload", ping(""), 0, []event{pingEv("")}},
		{"2.2 ping with text payload", ping("Hello, world!"), 0, []event{pingEv("Hello, world!")}},
		{"2.3 ping with binary payload", ping(bin), 0, []event{pingEv(bin)}},
		{"2.4 ping with 125 bytes", ping(p125), 0, []event{pingEv(p125)}},
		{"2.5 ping with 126 bytes", ping(p125 + "\xfe"), CloseProtocolError, nil},
		{"2.5 ping with 64-bit length", frameWithLength(0x89, 8, 126, []byte(p125+"x")), CloseProtocolError, nil},
		{"2.5 ping with 16-bit length of 125", frameWithLength(0x89, 2, 125, []byte(p125)), CloseProtocolError, nil},
		{"2.7 unsolicited pong without payload", pong(""), 0, []event{pongEv("")}},
		{"2.8 unsolicited pong with payload", pong("unsolicited pong payload"), 0, []event{pongEv("unsolicited pong payload")}},
		{"2.9 unsolicited pong then ping", cat(pong("unsolicited pong payload"), ping("ping payload")), 0,
			[]event{pongEv("unsolicited pong payload"), pingEv("ping payload")}},
		{"2.10 ten pings", cat(tenPings...), 0, tenEvents},
		{"5.1 fragmented ping", cat(clientFrame(OpPing, false, []byte("fragment1")), clientFrame(OpContinuation, true, []byte("fragment2"))),
			CloseProtocolError, nil},
		{"5.2 fragmented pong", cat(clientFrame(OpPong, false, []byte("fragment1")), clientFrame(OpContinuation, true, []byte("fragment2"))),
			CloseProtocolError, nil},
		{"fragmented close", cat(clientFrame(OpClose, false, []byte{0x03, 0xe8}), clientFrame(OpContinuation, true, nil)),
			CloseProtocolError, nil},
		{"ping with 125 bytes after oversized pong", cat(pong(p125+"x"), ping("")), CloseProtocolError, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, Limits{}, tt.stream, tt.code, tt.want...)
		})
	}
}

// TestControlFrameFailsAtHeader checks that an oversized or fragmented
// control frame fails from its first two bytes, before its payload.
func TestControlFrameFailsAtHeader(t *testing.T) {
	for _, f := range [][]byte{
		clientFrame(OpPing, true, make([]byte, 126)),
		clientFrame(OpPong, true, make([]byte, 70000)),
		clientFrame(OpClose, true, make([]byte, 200)),
		clientFrame(OpPing, false, nil),
	} {
		p := NewParser(Limits{})
		if err := p.Feed(f[:2], &recorder{}); errCode(err) != CloseProtocolError {
			t.Errorf("header % x: Feed = %v, want 1002", f[:2], err)
		}
	}
}

// TestAutobahn3ReservedBits covers cases 3.1–3.7: frames with RSV bits set
// while no extension is negotiated.
func TestAutobahn3ReservedBits(t *testing.T) {
	hello := []byte("Hello, world!")
	withRSV := func(rsv byte, op Opcode, payload []byte) []byte {
		return rawFrame(0x80|rsv<<4|byte(op), true, payload)
	}
	tests := []struct {
		name   string
		stream []byte
		want   []event
	}{
		{"3.1 rsv=1 text", withRSV(1, OpText, hello), nil},
		{"3.2 rsv=2 text after text", cat(text("Hello, world!"), withRSV(2, OpText, hello), text("Hello, world!")),
			[]event{msgEv(OpText, "Hello, world!")}},
		{"3.3 rsv=3 text after text and ping", cat(text("Hello, world!"), withRSV(3, OpText, hello), clientFrame(OpPing, true, nil)),
			[]event{msgEv(OpText, "Hello, world!")}},
		{"3.4 rsv=4 text", cat(text("Hello, world!"), withRSV(4, OpText, hello), clientFrame(OpPing, true, nil)),
			[]event{msgEv(OpText, "Hello, world!")}},
		{"3.5 rsv=5 binary", withRSV(5, OpBinary, []byte{0x00, 0xff, 0xfe}), nil},
		{"3.6 rsv=6 ping", withRSV(6, OpPing, hello), nil},
		{"3.7 rsv=7 close", withRSV(7, OpClose, []byte{0x03, 0xe8}), nil},
		{"rsv=4 continuation", cat(clientFrame(OpText, false, []byte("a")), rawFrame(0x80|4<<4, true, []byte("b"))), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, Limits{}, tt.stream, CloseProtocolError, tt.want...)
		})
	}
	for rsv := byte(1); rsv <= 7; rsv++ {
		for _, op := range []Opcode{OpText, OpBinary, OpPing, OpPong, OpClose} {
			p := NewParser(Limits{})
			f := withRSV(rsv, op, nil)
			if err := p.Feed(f[:2], &recorder{}); errCode(err) != CloseProtocolError {
				t.Errorf("rsv=%d %v: Feed(2 header bytes) = %v, want 1002", rsv, op, err)
			}
		}
	}
}

// TestAutobahn4Opcodes covers cases 4.1.1–4.2.5: every reserved opcode
// fails with 1002, after the frames before it were delivered and before
// the frames after it.
func TestAutobahn4Opcodes(t *testing.T) {
	reserved := []Opcode{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}
	for i, op := range reserved {
		// Autobahn alternates between a lone reserved frame (with and
		// without payload) and one between a text frame and a ping.
		var stream []byte
		var want []event
		payload := []byte("reserved opcode payload")
		switch i % 5 {
		case 0:
			stream = rawFrame(0x80|byte(op), true, nil)
		case 1:
			stream = rawFrame(0x80|byte(op), true, payload)
		case 2:
			stream = cat(text("Hello, world!"), rawFrame(0x80|byte(op), true, nil), clientFrame(OpPing, true, nil))
			want = []event{msgEv(OpText, "Hello, world!")}
		default:
			stream = cat(text("Hello, world!"), rawFrame(0x80|byte(op), true, payload), clientFrame(OpPing, true, nil))
			want = []event{msgEv(OpText, "Hello, world!")}
		}
		t.Run(fmt.Sprintf("4.%d.%d opcode %d", 1+i/5, 1+i%5, op), func(t *testing.T) {
			expect(t, Limits{}, stream, CloseProtocolError, want...)
			for _, fin := range []byte{0, 0x80} {
				p := NewParser(Limits{})
				f := rawFrame(fin|byte(op), true, payload)
				if err := p.Feed(f[:2], &recorder{}); errCode(err) != CloseProtocolError {
					t.Errorf("fin=%v: Feed(2 header bytes) = %v, want 1002", fin != 0, err)
				}
			}
		})
	}
}

// TestAutobahn5Fragmentation covers cases 5.3–5.20 (5.1 and 5.2 are in
// TestAutobahn2PingPong) and a few more orderings of data and control
// frames.
func TestAutobahn5Fragmentation(t *testing.T) {
	frag := func(op Opcode, fin bool, s string) []byte { return clientFrame(op, fin, []byte(s)) }
	ping := func(s string) []byte { return clientFrame(OpPing, true, []byte(s)) }
	oneByteFrames := func(op Opcode, s string, between []byte) []byte {
		var out []byte
		for i := range len(s) {
			fop := OpContinuation
			if i == 0 {
				fop = op
			}
			out = append(out, frag(fop, i == len(s)-1, s[i:i+1])...)
			if i < len(s)-1 {
				out = append(out, between...)
			}
		}
		return out
	}
	long := strings.Repeat("fragmented message ", 40)
	var pings []event
	for range len(long) - 1 {
		pings = append(pings, pingEv("p"))
	}
	tests := []struct {
		name   string
		stream []byte
		code   int
		want   []event
	}{
		{"5.3 text in 2 fragments", cat(frag(OpText, false, "fragment1"), frag(OpContinuation, true, "fragment2")), 0,
			[]event{msgEv(OpText, "fragment1fragment2")}},
		{"5.6 text in 2 fragments with ping between", cat(frag(OpText, false, "fragment1"), ping("ping payload"), frag(OpContinuation, true, "fragment2")), 0,
			[]event{pingEv("ping payload"), msgEv(OpText, "fragment1fragment2")}},
		{"5.9 continuation fin=1 without start", cat(frag(OpContinuation, true, "non-continuation payload"), text("Hello, world!")), CloseProtocolError, nil},
		{"5.12 continuation fin=0 without start", cat(frag(OpContinuation, false, "non-continuation payload"), text("Hello, world!")), CloseProtocolError, nil},
		{"5.15 continuation after a finished message", cat(frag(OpText, false, "fragment1"), frag(OpContinuation, true, "fragment2"),
			frag(OpContinuation, false, "fragment3"), frag(OpText, true, "fragment4")), CloseProtocolError,
			[]event{msgEv(OpText, "fragment1fragment2")}},
		{"5.16 continuation fin=0 first, twice", bytes.Repeat(cat(frag(OpContinuation, false, "fragment1"), frag(OpText, false, "fragment2"),
			frag(OpContinuation, true, "fragment3")), 2), CloseProtocolError, nil},
		{"5.17 continuation fin=1 first, twice", bytes.Repeat(cat(frag(OpContinuation, true, "fragment1"), frag(OpText, false, "fragment2"),
			frag(OpContinuation, true, "fragment3")), 2), CloseProtocolError, nil},
		{"5.18 text start then new text", cat(frag(OpText, false, "fragment1"), frag(OpText, true, "fragment2")), CloseProtocolError, nil},
		{"text start then binary", cat(frag(OpText, false, "fragment1"), frag(OpBinary, true, "fragment2")), CloseProtocolError, nil},
		{"binary start then text", cat(frag(OpBinary, false, "fragment1"), frag(OpText, true, "fragment2")), CloseProtocolError, nil},
		{"5.19 text in 5 fragments with 2 pings", cat(frag(OpText, false, "fragment1"), frag(OpContinuation, false, "fragment2"), ping("pongme 1!"),
			frag(OpContinuation, false, "fragment3"), frag(OpContinuation, false, "fragment4"), ping("pongme 2!"),
			frag(OpContinuation, true, "fragment5")), 0,
			[]event{pingEv("pongme 1!"), pingEv("pongme 2!"), msgEv(OpText, "fragment1fragment2fragment3fragment4fragment5")}},
		{"binary in 3 fragments with pong between", cat(frag(OpBinary, false, "\x00\x01"), clientFrame(OpPong, true, nil),
			frag(OpContinuation, false, "\x02"), frag(OpContinuation, true, "\xff")), 0,
			[]event{pongEv(""), msgEv(OpBinary, "\x00\x01\x02\xff")}},
		{"empty fragments", cat(frag(OpBinary, false, ""), frag(OpContinuation, false, ""), frag(OpContinuation, true, "")), 0,
			[]event{msgEv(OpBinary, "")}},
		{"1-byte frames", oneByteFrames(OpText, long, nil), 0, []event{msgEv(OpText, long)}},
		{"1-byte frames with a ping after each", oneByteFrames(OpBinary, long, ping("p")), 0,
			append(append([]event(nil), pings...), msgEv(OpBinary, long))},
		{"messages after a fragmented one", cat(frag(OpText, false, "a"), frag(OpContinuation, true, "b"), text("c"), frag(OpBinary, true, "d")), 0,
			[]event{msgEv(OpText, "ab"), msgEv(OpText, "c"), msgEv(OpBinary, "d")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, Limits{}, tt.stream, tt.code, tt.want...)
		})
	}
}
