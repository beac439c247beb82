package wsproto

import (
	"bytes"
	"fmt"
	"testing"
)

// TestAutobahn9Limits covers the sizes of cases 9.1–9.6 (large messages,
// messages in many frame sizes) and the gateway's own limits, which fail
// with 1009 or 1003 from frame headers, before the payload is buffered.
func TestAutobahn9Limits(t *testing.T) {
	t.Run("9.1/9.2 large messages", func(t *testing.T) {
		sizes := []int{64 << 10, 256 << 10, 1 << 20, 16 << 20}
		for _, n := range sizes {
			for _, op := range []Opcode{OpText, OpBinary} {
				payload := pattern(op, n)
				t.Run(fmt.Sprintf("%v/%d", op, n), func(t *testing.T) {
					expect(t, Limits{}, clientFrame(op, true, payload), 0, msgEv(op, string(payload)))
				})
			}
		}
	})
	t.Run("9.3/9.4 fragmented in frames of many sizes", func(t *testing.T) {
		n := 1 << 20
		for _, op := range []Opcode{OpText, OpBinary} {
			payload := pattern(op, n)
			for frame := 64; frame <= n; frame *= 4 {
				t.Run(fmt.Sprintf("%v/%d", op, frame), func(t *testing.T) {
					stream := splitClient(op, payload, frame)
					expect(t, Limits{}, stream, 0, msgEv(op, string(payload)))
				})
			}
		}
	})
	// 9.5 and 9.6 send one message in chops of many sizes, which parse
	// already does for every stream.

	t.Run("frame limit", func(t *testing.T) {
		l := Limits{MaxFrameBytes: 1000}
		ok := bytes.Repeat([]byte("a"), 1000)
		expect(t, l, clientFrame(OpText, true, ok), 0, msgEv(OpText, string(ok)))
		expect(t, l, clientFrame(OpText, true, append(ok, 'b')), CloseTooBig)
		// Control frames are bounded by the protocol, not by the limit.
		small := Limits{MaxFrameBytes: 10}
		expect(t, small, clientFrame(OpPing, true, ok[:125]), 0, pingEv(string(ok[:125])))
		// Continuation frames are limited too, frames before are kept.
		expect(t, l, cat(clientFrame(OpBinary, false, ok), clientFrame(OpContinuation, true, append(ok, 'b'))), CloseTooBig)
		for _, lenBytes := range []int{0, 2, 8} {
			for _, lim := range []int{100, 1000, 70000} {
				if lenBytes == 0 && lim >= 125 || lenBytes == 2 && lim >= 65535 {
					continue
				}
				l := Limits{MaxFrameBytes: lim}
				exact := frameWithLength(0x82, lenBytes, uint64(lim), make([]byte, lim))
				expect(t, l, exact, 0, msgEv(OpBinary, string(make([]byte, lim))))
				over := frameWithLength(0x82, lenBytes, uint64(lim+1), nil)
				checkFailsAtLength(t, l, over, CloseTooBig)
			}
		}
	})
	t.Run("message limit", func(t *testing.T) {
		l := Limits{MaxMessageBytes: 3000}
		k := bytes.Repeat([]byte("k"), 1000)
		three := cat(clientFrame(OpText, false, k), clientFrame(OpContinuation, false, k), clientFrame(OpContinuation, true, k))
		expect(t, l, three, 0, msgEv(OpText, string(k)+string(k)+string(k)))
		// Messages are counted separately.
		expect(t, l, cat(three, three), 0, msgEv(OpText, string(k)+string(k)+string(k)), msgEv(OpText, string(k)+string(k)+string(k)))
		// Controls in between do not count.
		expect(t, l, cat(clientFrame(OpText, false, k), clientFrame(OpPing, true, k[:125]), clientFrame(OpContinuation, true, k[:1000])),
			0, pingEv(string(k[:125])), msgEv(OpText, string(k)+string(k)))
		// The fourth frame fails at its header: the parser holds the three
		// earlier frames' bytes but not one byte of the fourth.
		first := cat(clientFrame(OpText, false, k), clientFrame(OpContinuation, false, k), clientFrame(OpContinuation, false, k[:999]))
		over := clientFrame(OpContinuation, true, []byte("xy"))
		expect(t, l, cat(first, over), CloseTooBig)
		p := NewParser(l)
		if err := p.Feed(first, &recorder{}); err != nil {
			t.Fatal(err)
		}
		if got := p.Buffered(); got != 2999 {
			t.Errorf("Buffered() = %d before the last frame, want 2999", got)
		}
		if err := p.Feed(over[:2], &recorder{}); errCode(err) != CloseTooBig {
			t.Errorf("header of the frame that exceeds the message limit: %v, want 1009", err)
		}
		if got := p.Buffered(); got != 0 {
			t.Errorf("Buffered() = %d after the error, want 0", got)
		}
		// A single frame over the message limit.
		checkFailsAtLength(t, l, frameWithLength(0x81, 2, 3001, nil), CloseTooBig)
		// Both limits: the frame limit is checked first.
		both := Limits{MaxFrameBytes: 10, MaxMessageBytes: 5}
		p = NewParser(both)
		err := p.Feed(clientFrame(OpBinary, true, make([]byte, 11)), &recorder{})
		if ce, ok := err.(*CloseError); !ok || ce.Reason != "frame too big" {
			t.Errorf("frame over both limits: %v, want frame too big", err)
		}
	})
	t.Run("huge declared length", func(t *testing.T) {
		l := Limits{MaxFrameBytes: 1 << 20, MaxMessageBytes: 1 << 20}
		checkFailsAtLength(t, l, frameWithLength(0x82, 8, 1<<62, nil), CloseTooBig)
		checkFailsAtLength(t, Limits{MaxMessageBytes: 1 << 20}, frameWithLength(0x82, 8, 1<<63-1, nil), CloseTooBig)
	})
	t.Run("reject binary", func(t *testing.T) {
		l := Limits{RejectBinary: true}
		expect(t, l, clientFrame(OpBinary, true, []byte{1, 2, 3}), CloseUnsupportedData)
		expect(t, l, cat(text("ok"), clientFrame(OpBinary, false, nil)), CloseUnsupportedData, msgEv(OpText, "ok"))
		expect(t, l, cat(clientFrame(OpText, false, []byte("a")), clientFrame(OpContinuation, true, []byte("b"))), 0, msgEv(OpText, "ab"))
		// A protocol error in the same header wins over the policy.
		expect(t, l, rawFrame(0x82, false, []byte{1}), CloseProtocolError)
		p := NewParser(l)
		if err := p.Feed(clientFrame(OpBinary, true, make([]byte, 1000))[:2], &recorder{}); errCode(err) != CloseUnsupportedData {
			t.Errorf("binary header: %v, want 1003", err)
		}
	})
}

// checkFailsAtLength feeds a frame header up to the end of its payload
// length, without the masking key or any payload, and checks that the
// parser fails there with code, holding nothing.
func checkFailsAtLength(t *testing.T, l Limits, frame []byte, code int) {
	t.Helper()
	end := lengthEnd(frame[1])
	p := NewParser(l)
	err := p.Feed(frame[:end], &recorder{})
	if errCode(err) != code {
		t.Errorf("header % x with %+v: %v, want close code %d", frame[:end], l, err, code)
	}
	if p.Buffered() != 0 {
		t.Errorf("Buffered() = %d after the error, want 0", p.Buffered())
	}
}

// pattern returns n bytes of ASCII text or of binary data.
func pattern(op Opcode, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		if op == OpText {
			b[i] = "*Hello, world! \n"[i%16]
		} else {
			b[i] = byte(i * 7)
		}
	}
	return b
}

// splitClient frames payload as a client message of frames of at most
// frame bytes.
func splitClient(op Opcode, payload []byte, frame int) []byte {
	var out []byte
	for first := true; first || len(payload) > 0; first = false {
		n := min(frame, len(payload))
		fop := OpContinuation
		if first {
			fop = op
		}
		out = append(out, clientFrame(fop, n == len(payload), payload[:n])...)
		payload = payload[n:]
	}
	return out
}
