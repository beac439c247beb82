package wsproto

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"
)

// TestParserIdleHoldsNoBuffers checks that a parser between messages
// holds no payload buffer, whatever it parsed before, and that its own
// size stays a small fraction of the per-connection budget.
func TestParserIdleHoldsNoBuffers(t *testing.T) {
	if size := unsafe.Sizeof(Parser{}); size > 128 {
		t.Errorf("sizeof(Parser) = %d bytes, want at most 128", size)
	}
	big := bytes.Repeat([]byte("x"), 100<<10)
	streams := map[string][]byte{
		"small text":          text("hello"),
		"large binary":        clientFrame(OpBinary, true, big),
		"fragmented":          cat(clientFrame(OpText, false, big[:5000]), clientFrame(OpPing, true, []byte("p")), clientFrame(OpContinuation, true, big[:70000])),
		"ping":                clientFrame(OpPing, true, bytes.Repeat([]byte("p"), 125)),
		"pong then empty msg": cat(clientFrame(OpPong, true, []byte("p")), text("")),
	}
	for name, stream := range streams {
		for _, c := range chunkings(len(stream)) {
			p := NewParser(Limits{})
			var rec recorder
			for _, n := range c.split(len(stream)) {
				if err := p.Feed(stream[:n], &rec); err != nil {
					t.Fatalf("%s/%s: %v", name, c.name, err)
				}
				stream = stream[n:]
			}
			if len(rec.events) == 0 {
				t.Fatalf("%s/%s: nothing delivered", name, c.name)
			}
			if p.Buffered() != 0 || p.msg != nil || p.ctl != nil || p.hdrN != 0 {
				t.Errorf("%s/%s: idle parser holds Buffered()=%d msg=%v ctl=%v hdrN=%d",
					name, c.name, p.Buffered(), p.msg != nil, p.ctl != nil, p.hdrN)
			}
			stream = streams[name]
		}
	}
}

// TestParserBuffered checks that Buffered counts header bytes and payload
// bytes of partial frames and messages.
func TestParserBuffered(t *testing.T) {
	p := NewParser(Limits{})
	var rec recorder
	f := clientFrame(OpText, false, bytes.Repeat([]byte("a"), 300)) // 8-byte header
	steps := []struct {
		feed []byte
		want int
	}{
		{f[:1], 1},
		{f[1:4], 4},
		{f[4:8], 0},
		{f[8:18], 10},
		{f[18:], 300},
		{clientFrame(OpPing, true, []byte("ping"))[:8], 300 + 2},
	}
	for i, s := range steps {
		if err := p.Feed(s.feed, &rec); err != nil {
			t.Fatal(err)
		}
		if got := p.Buffered(); got != s.want {
			t.Errorf("step %d: Buffered() = %d, want %d", i, got, s.want)
		}
	}
}

// stopHandler fails on the first message.
type stopHandler struct {
	recorder
	err error
}

func (h *stopHandler) OnMessage(op Opcode, payload []byte) error {
	h.recorder.OnMessage(op, payload)
	return h.err
}

// TestParserHandlerError checks that a handler's error stops Feed, comes
// back from every later Feed and releases the parser's buffers.
func TestParserHandlerError(t *testing.T) {
	stop := errors.New("stop")
	h := &stopHandler{err: stop}
	p := NewParser(Limits{})
	stream := cat(clientFrame(OpText, false, []byte("part")), clientFrame(OpPing, true, nil), clientFrame(OpContinuation, true, []byte("s")), text("second"))
	if err := p.Feed(stream, h); err != stop {
		t.Fatalf("Feed = %v, want the handler's error", err)
	}
	if err := p.Feed(text("third"), h); err != stop {
		t.Errorf("second Feed = %v, want the handler's error again", err)
	}
	want := []event{pingEv(""), msgEv(OpText, "parts")}
	if len(h.events) != 2 || h.events[0] != want[0] || h.events[1] != want[1] {
		t.Errorf("events = %v, want %v", h.events, want)
	}
	if p.Buffered() != 0 || p.msg != nil {
		t.Errorf("Buffered() = %d after a handler error, want 0", p.Buffered())
	}
}

// TestParserDoesNotModifyInput checks that Feed leaves the caller's bytes
// as they were.
func TestParserDoesNotModifyInput(t *testing.T) {
	stream := cat(text("hello"), clientFrame(OpPing, true, []byte("ping")), clientFrame(OpBinary, true, bytes.Repeat([]byte{7}, 1000)), closeFrame(1000, "bye"))
	orig := bytes.Clone(stream)
	if err := NewParser(Limits{}).Feed(stream, &recorder{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stream, orig) {
		t.Error("Feed modified its input")
	}
}

// TestCloseError checks the error text.
func TestCloseError(t *testing.T) {
	err := error(&CloseError{Code: CloseTooBig, Reason: "message too big"})
	if got, want := err.Error(), "wsproto: message too big (close code 1009)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1009 {
		t.Error("errors.As does not find the *CloseError")
	}
}

// TestParserReasonsFitCloseFrame checks that every error the parser
// returns fits a close frame.
func TestParserReasonsFitCloseFrame(t *testing.T) {
	streams := [][]byte{
		rawFrame(0xc1, true, nil), rawFrame(0x83, true, nil), rawFrame(0x81, false, nil), rawFrame(0x09, true, nil),
		clientFrame(OpPing, true, make([]byte, 126)), clientFrame(OpContinuation, true, nil),
		cat(clientFrame(OpText, false, nil), text("")), frameWithLength(0x82, 8, 1<<63, nil),
		text("\xff"), clientFrame(OpClose, true, []byte{1}), closeFrame(1004, ""), closeFrame(1000, "\xff"),
		clientFrame(OpBinary, true, make([]byte, 11)), cat(clientFrame(OpBinary, false, make([]byte, 8)), clientFrame(OpContinuation, true, make([]byte, 8))),
	}
	for _, s := range streams {
		err := NewParser(Limits{MaxFrameBytes: 10, MaxMessageBytes: 12, RejectBinary: false}).Feed(s, &recorder{})
		var ce *CloseError
		if !errors.As(err, &ce) {
			t.Errorf("% x: %v, want a *CloseError", s, err)
			continue
		}
		if len(ce.Reason) > MaxCloseReason || ce.Reason == "" || bytes.ContainsFunc([]byte(ce.Reason), func(r rune) bool { return r >= 'A' && r <= 'Z' }) {
			t.Errorf("reason %q is not a short lowercase text", ce.Reason)
		}
	}
}

// TestMaskBytes compares the word-at-a-time masking with a byte loop for
// every length up to 100 and every key offset.
func TestMaskBytes(t *testing.T) {
	key := [4]byte{0x01, 0x8f, 0x33, 0xc4}
	for n := range 100 {
		for pos := range 4 {
			b := pattern(OpBinary, n)
			want := bytes.Clone(b)
			for i := range want {
				want[i] ^= key[(pos+i)%4]
			}
			next := maskBytes(key, pos, b)
			if !bytes.Equal(b, want) || next != (pos+n)%4 {
				t.Fatalf("n=%d pos=%d: got % x next %d, want % x next %d", n, pos, b, next, want, (pos+n)%4)
			}
		}
	}
}

// TestBufferPool checks the size classes.
func TestBufferPool(t *testing.T) {
	for _, tt := range []struct{ n, cap int }{{0, 128}, {1, 128}, {128, 128}, {129, 256}, {4096, 4096}, {4097, 8192}, {4 << 20, 4 << 20}, {4<<20 + 1, 4<<20 + 1}} {
		b := getBuf(tt.n)
		if len(*b) != 0 || cap(*b) != tt.cap {
			t.Errorf("getBuf(%d): len %d cap %d, want 0 and %d", tt.n, len(*b), cap(*b), tt.cap)
		}
		*b = append(*b, 1)
		putBuf(b)
	}
}

// TestParserClosingHandshake: after an error the parser follows the stream
// to the peer's close frame without delivering anything, so the closing
// handshake can complete. What comes after the error in each case (the rest
// of the broken frame, data frames, control frames) must not end it; a close
// frame then must. The bytes after an error may start inside a frame: a
// payload that looks like a close frame is skipped as payload.
func TestParserClosingHandshake(t *testing.T) {
	l := Limits{MaxFrameBytes: 1000, MaxMessageBytes: 2000, RejectBinary: true}
	// A text frame masked with a zero key carries its payload as it is on
	// the wire: here, invalid UTF-8 and then the bytes of a close frame.
	lookalike := AppendClientFrame(nil, OpText, true, cat([]byte("\xff"), closeFrame(1000, "not me")), [4]byte{})
	traffic := cat(text("data"), clientFrame(OpPing, true, []byte("p")), clientFrame(OpBinary, true, []byte{1, 2}),
		clientFrame(OpContinuation, true, []byte("c")), clientFrame(OpPong, true, nil), clientFrame(OpText, true, make([]byte, 1500)))
	for _, tc := range []struct {
		name   string
		broken []byte
		code   int
	}{
		{"unmasked frame", rawFrame(0x81, false, []byte("hello")), CloseProtocolError},
		{"unmasked frame with a 16-bit length", rawFrame(0x81, false, make([]byte, 300)), CloseProtocolError},
		{"reserved bits", rawFrame(0xc1, true, closeFrame(1000, "")), CloseProtocolError},
		{"reserved opcode", rawFrame(0x83, true, []byte("abc")), CloseProtocolError},
		{"fragmented ping", clientFrame(OpPing, false, []byte("p")), CloseProtocolError},
		{"ping over 125 bytes", clientFrame(OpPing, true, make([]byte, 200)), CloseProtocolError},
		{"continuation without a message", clientFrame(OpContinuation, true, []byte("x")), CloseProtocolError},
		{"new message inside a fragmented one", cat(clientFrame(OpText, false, []byte("a")), text("b")), CloseProtocolError},
		{"binary rejected", clientFrame(OpBinary, true, make([]byte, 300)), CloseUnsupportedData},
		{"frame too big", clientFrame(OpText, true, cat(make([]byte, 1000), closeFrame(1000, ""))), CloseTooBig},
		{"message too big", cat(clientFrame(OpText, false, make([]byte, 900)), clientFrame(OpContinuation, false, make([]byte, 900)),
			clientFrame(OpContinuation, true, make([]byte, 900))), CloseTooBig},
		{"invalid utf-8 inside a frame", lookalike, CloseInvalidPayload},
		{"invalid utf-8 inside a fragmented message", cat(clientFrame(OpText, false, []byte("ok")),
			AppendClientFrame(nil, OpContinuation, true, cat([]byte("\xff"), closeFrame(1000, "")), [4]byte{})), CloseInvalidPayload},
		{"utf-8 cut at the end of a message", cat(clientFrame(OpText, false, []byte("\xce")), clientFrame(OpContinuation, true, nil)), CloseInvalidPayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := cat(tc.broken, traffic)
			got := parse(t, l, open)
			if errCode(got.err) != tc.code {
				t.Fatalf("error %v, want code %d", got.err, tc.code)
			}
			if got.closed {
				t.Fatal("closed before the peer's close frame")
			}
			delivered := len(got.events)
			got = parse(t, l, cat(open, closeFrame(1000, ""), text("after")))
			if !got.closed {
				t.Fatal("the peer's close frame did not close the parser")
			}
			if len(got.events) != delivered {
				t.Fatalf("delivered %v after the error", got.events[delivered:])
			}
		})
	}
	// A close frame that breaks the protocol still ends the peer's side;
	// a stream that cannot be followed, or a second error, ends the wait.
	for _, tc := range []struct {
		name   string
		stream []byte
		code   int
	}{
		{"invalid close code", closeFrame(1004, ""), CloseProtocolError},
		{"close payload of 1 byte", clientFrame(OpClose, true, []byte{3}), CloseProtocolError},
		{"invalid utf-8 in the close reason", closeFrame(1000, "\xff"), CloseInvalidPayload},
		{"fragmented close", clientFrame(OpClose, false, nil), CloseProtocolError},
		{"unmasked close", rawFrame(0x88, false, nil), CloseProtocolError},
		{"close over 125 bytes", clientFrame(OpClose, true, make([]byte, 126)), CloseProtocolError},
		{"length with the top bit set", frameWithLength(0x81, 8, 1<<63, nil), CloseProtocolError},
		{"then an unmasked frame", cat(text("\xff"), text("ok"), rawFrame(0x81, false, []byte("x"))), CloseInvalidPayload},
		{"then reserved bits", cat(rawFrame(0x81, false, nil), rawFrame(0xa1, true, nil)), CloseProtocolError},
		{"then a reserved opcode", cat(rawFrame(0x81, false, nil), rawFrame(0x8b, true, nil)), CloseProtocolError},
		{"then a fragmented ping", cat(rawFrame(0x81, false, nil), clientFrame(OpPing, false, nil)), CloseProtocolError},
		{"then a length with the top bit set", cat(rawFrame(0x81, false, nil), frameWithLength(0x82, 8, 1<<63, nil)), CloseProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parse(t, l, cat(tc.stream, text("after")))
			if errCode(got.err) != tc.code {
				t.Fatalf("error %v, want code %d", got.err, tc.code)
			}
			if !got.closed {
				t.Fatal("the parser still waits for a close frame")
			}
		})
	}
}
