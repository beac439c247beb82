package wsproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// event is one handler call, with the payload copied.
type event struct {
	kind    string // "message", "ping", "pong" or "close"
	op      Opcode
	payload string
	code    int
	reason  string
}

func (e event) String() string {
	p := e.payload
	if len(p) > 40 {
		p = fmt.Sprintf("%q... (%d bytes)", p[:40], len(p))
	} else {
		p = fmt.Sprintf("%q", p)
	}
	switch e.kind {
	case "message":
		return fmt.Sprintf("message(%v, %s)", e.op, p)
	case "close":
		return fmt.Sprintf("close(%d, %q)", e.code, e.reason)
	}
	return fmt.Sprintf("%s(%s)", e.kind, p)
}

func msgEv(op Opcode, payload string) event { return event{kind: "message", op: op, payload: payload} }
func pingEv(payload string) event           { return event{kind: "ping", payload: payload} }
func pongEv(payload string) event           { return event{kind: "pong", payload: payload} }
func closeEv(code int, reason string) event { return event{kind: "close", code: code, reason: reason} }

// recorder is a Handler that records every call.
type recorder struct {
	events []event
}

var _ Handler = (*recorder)(nil)

func (r *recorder) OnMessage(op Opcode, payload []byte) error {
	r.events = append(r.events, event{kind: "message", op: op, payload: string(payload)})
	return nil
}

func (r *recorder) OnPing(payload []byte) error {
	r.events = append(r.events, event{kind: "ping", payload: string(payload)})
	return nil
}

func (r *recorder) OnPong(payload []byte) error {
	r.events = append(r.events, event{kind: "pong", payload: string(payload)})
	return nil
}

func (r *recorder) OnClose(code int, reason string) error {
	r.events = append(r.events, event{kind: "close", code: code, reason: reason})
	return nil
}

// result is what a parser made of a whole stream.
type result struct {
	events   []event
	err      error
	buffered int
	closed   bool // Closed() at the end
}

// errCode returns the close code of err, 0 for nil and -1 for an error
// that is not a *CloseError.
func errCode(err error) int {
	if err == nil {
		return 0
	}
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// chunking splits a stream into the pieces handed to Feed.
type chunking struct {
	name  string
	split func(n int) []int // lengths of the pieces
}

// bytewiseMax is the largest stream parse also feeds one byte at a time;
// larger streams (Autobahn section 9) get chunkings that finish in
// reasonable time under the race detector.
const bytewiseMax = 320 << 10

func chunkings(n int) []chunking {
	cs := []chunking{{"whole", func(n int) []int { return []int{n} }}}
	if n <= bytewiseMax {
		cs = append(cs, chunking{"bytewise", func(n int) []int { return fixedChunks(n, 1) }})
	} else {
		cs = append(cs, chunking{"chop997", func(n int) []int { return fixedChunks(n, 997) }})
	}
	for seed, maxChunk := range []int{8, 201, 5001} {
		if n > bytewiseMax && maxChunk < 100 {
			continue
		}
		cs = append(cs, chunking{fmt.Sprintf("random%d", maxChunk), func(n int) []int {
			r := rand.New(rand.NewPCG(uint64(seed), uint64(n)))
			var s []int
			for n > 0 {
				k := 1 + r.IntN(min(n, maxChunk))
				s = append(s, k)
				n -= k
			}
			return s
		}})
	}
	return cs
}

// fixedChunks splits n bytes into pieces of size bytes and a shorter last
// piece.
func fixedChunks(n, size int) []int {
	s := make([]int, 0, n/size+1)
	for ; n > size; n -= size {
		s = append(s, size)
	}
	return append(s, n)
}

// feedChunks feeds stream to a new parser in pieces of the given lengths,
// all of them, also after an error, and returns the first error.
func feedChunks(l Limits, stream []byte, pieces []int) result {
	p := NewParser(l)
	var rec recorder
	var first error
	for _, n := range pieces {
		if err := p.Feed(stream[:n], &rec); err != nil && first == nil {
			first = err
		}
		stream = stream[n:]
	}
	return result{events: rec.events, err: first, buffered: p.Buffered(), closed: p.Closed()}
}

// parse feeds stream whole, one byte at a time (997 bytes at a time above
// bytewiseMax) and in random chunks, requires every chunking to give the
// same result, and returns it. It also
// checks that an error is sticky and that input after a close frame is
// ignored.
func parse(t *testing.T, l Limits, stream []byte) result {
	t.Helper()
	var want result
	for i, c := range chunkings(len(stream)) {
		got := feedChunks(l, stream, c.split(len(stream)))
		if i == 0 {
			want = got
			continue
		}
		if !sameResult(got, want) {
			t.Fatalf("chunking %s: got %v, %v (buffered %d, closed %v); whole stream gave %v, %v (buffered %d, closed %v)",
				c.name, got.events, got.err, got.buffered, got.closed, want.events, want.err, want.buffered, want.closed)
		}
	}
	if want.err != nil && want.buffered != 0 {
		t.Errorf("after error %v the parser still buffers %d bytes", want.err, want.buffered)
	}
	checkTerminal(t, l, stream)
	return want
}

// checkTerminal feeds stream followed by a valid text frame and checks
// that after an error the same error comes back, and after a close frame
// nothing more is delivered.
func checkTerminal(t *testing.T, l Limits, stream []byte) {
	t.Helper()
	p := NewParser(l)
	var rec recorder
	err := p.Feed(stream, &rec)
	closed := len(rec.events) > 0 && rec.events[len(rec.events)-1].kind == "close"
	if err == nil && !closed {
		return
	}
	n := len(rec.events)
	again := p.Feed(clientFrame(OpText, true, []byte("after")), &rec)
	if again != err {
		t.Errorf("Feed after %v returned %v, want the same error", err, again)
	}
	if len(rec.events) != n {
		t.Errorf("Feed after the end delivered %v", rec.events[n:])
	}
}

func sameResult(a, b result) bool {
	if !reflect.DeepEqual(a.events, b.events) || a.buffered != b.buffered || a.closed != b.closed {
		return false
	}
	if a.err == nil || b.err == nil {
		return a.err == nil && b.err == nil
	}
	return a.err.Error() == b.err.Error()
}

// expect parses stream and checks the events and the close code of the
// error (0 for none).
func expect(t *testing.T, l Limits, stream []byte, wantCode int, want ...event) {
	t.Helper()
	got := parse(t, l, stream)
	if code := errCode(got.err); code != wantCode {
		t.Errorf("error = %v (code %d), want code %d", got.err, code, wantCode)
	}
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(got.events, want) {
		t.Errorf("events:\n got %v\nwant %v", got.events, want)
	}
}

var maskCounter uint32

// clientFrame returns a masked frame with a masking key that changes from
// call to call.
func clientFrame(op Opcode, fin bool, payload []byte) []byte {
	maskCounter++
	var key [4]byte
	binary.BigEndian.PutUint32(key[:], maskCounter*0x9E3779B9)
	return AppendClientFrame(nil, op, fin, payload, key)
}

// rawFrame returns a frame with the given first byte, masked or not, using
// the shortest length encoding.
func rawFrame(b0 byte, masked bool, payload []byte) []byte {
	f := clientFrame(Opcode(b0&0x0f), b0&0x80 != 0, payload)
	f[0] = b0
	if !masked {
		// Drop the key and unmask the payload.
		hl := lengthEnd(f[1]) + 4
		key := [4]byte(f[hl-4 : hl])
		f[1] &^= 0x80
		body := f[hl:]
		maskBytes(key, 0, body)
		f = append(f[:hl-4], body...)
	}
	return f
}

// frameWithLength returns the header of a masked frame with an explicit
// length encoding: lenBytes 0 (7-bit), 2 or 8.
func frameWithLength(b0 byte, lenBytes int, length uint64, payload []byte) []byte {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	f := []byte{b0}
	switch lenBytes {
	case 0:
		f = append(f, 0x80|byte(length))
	case 2:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(length))
	case 8:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, length)
	}
	f = append(f, key[:]...)
	start := len(f)
	f = append(f, payload...)
	maskBytes(key, 0, f[start:])
	return f
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

func text(s string) []byte { return clientFrame(OpText, true, []byte(s)) }

func closeFrame(code int, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return clientFrame(OpClose, true, append(p, reason...))
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }

// serverFrame is a frame decoded from server output.
type serverFrame struct {
	fin     bool
	rsv     byte
	op      Opcode
	masked  bool
	payload []byte
}

// readServerFrames decodes a sequence of frames written by the Append
// functions, independently of Parser.
func readServerFrames(t *testing.T, b []byte) []serverFrame {
	t.Helper()
	var fs []serverFrame
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatalf("truncated frame header % x", b)
		}
		f := serverFrame{fin: b[0]&0x80 != 0, rsv: b[0] & 0x70, op: Opcode(b[0] & 0x0f), masked: b[1]&0x80 != 0}
		n := uint64(b[1] & 0x7f)
		b = b[2:]
		switch n {
		case 126:
			n = uint64(binary.BigEndian.Uint16(b))
			if n < 126 {
				t.Fatalf("16-bit length %d is not minimal", n)
			}
			b = b[2:]
		case 127:
			n = binary.BigEndian.Uint64(b)
			if n <= 0xffff {
				t.Fatalf("64-bit length %d is not minimal", n)
			}
			b = b[8:]
		}
		var key [4]byte
		if f.masked {
			key = [4]byte(b[:4])
			b = b[4:]
		}
		if uint64(len(b)) < n {
			t.Fatalf("frame of %d bytes truncated to %d", n, len(b))
		}
		f.payload = bytes.Clone(b[:n])
		if f.masked {
			maskBytes(key, 0, f.payload)
		}
		b = b[n:]
		fs = append(fs, f)
	}
	return fs
}
