package wsproto

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestAppendFrame checks the header of server frames at each length
// encoding and that they are unmasked.
func TestAppendFrame(t *testing.T) {
	tests := []struct {
		n    int
		head []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		payload := pattern(OpText, tt.n)
		f := AppendFrame(nil, OpText, true, payload)
		if !bytes.HasPrefix(f, tt.head) || len(f) != len(tt.head)+tt.n {
			t.Errorf("%d bytes: header % x, want % x", tt.n, f[:min(len(f), 10)], tt.head)
		}
		fs := readServerFrames(t, f)
		if len(fs) != 1 || fs[0].masked || !fs[0].fin || fs[0].op != OpText || !bytes.Equal(fs[0].payload, payload) {
			t.Errorf("%d bytes: decoded %+v", tt.n, fs)
		}
	}
	f := AppendFrame([]byte("prefix"), OpBinary, false, []byte{1, 2})
	if want := []byte("prefix\x02\x02\x01\x02"); !bytes.Equal(f, want) {
		t.Errorf("AppendFrame with a prefix = % x, want % x", f, want)
	}
	if f := AppendFrame(nil, OpPong, true, []byte("p")); !bytes.Equal(f, []byte{0x8a, 1, 'p'}) {
		t.Errorf("pong = % x", f)
	}
}

// TestAppendMessage checks how messages are split into frames, and that
// the parser reassembles them when a client sends the same frames.
func TestAppendMessage(t *testing.T) {
	const maxFrame = 32768
	tests := []struct {
		n, maxFrame int
		sizes       []int
	}{
		{0, maxFrame, []int{0}},
		{100, maxFrame, []int{100}},
		{maxFrame, maxFrame, []int{maxFrame}},
		{maxFrame + 1, maxFrame, []int{maxFrame, 1}},
		{3 * maxFrame, maxFrame, []int{maxFrame, maxFrame, maxFrame}},
		{100000, maxFrame, []int{maxFrame, maxFrame, maxFrame, 1696}},
		{100000, 0, []int{100000}},
		{100000, -1, []int{100000}},
		{10, 3, []int{3, 3, 3, 1}},
	}
	for _, op := range []Opcode{OpText, OpBinary} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%v/%d/%d", op, tt.n, tt.maxFrame), func(t *testing.T) {
				payload := pattern(op, tt.n)
				out := AppendMessage([]byte("x"), op, payload, tt.maxFrame)
				if out[0] != 'x' {
					t.Fatal("AppendMessage overwrote dst")
				}
				fs := readServerFrames(t, out[1:])
				var sizes []int
				var got []byte
				var client []byte
				for i, f := range fs {
					wantOp := OpContinuation
					if i == 0 {
						wantOp = op
					}
					if f.op != wantOp || f.fin != (i == len(fs)-1) || f.masked || f.rsv != 0 {
						t.Errorf("frame %d: op %v fin %v masked %v rsv %d", i, f.op, f.fin, f.masked, f.rsv)
					}
					sizes = append(sizes, len(f.payload))
					got = append(got, f.payload...)
					client = append(client, clientFrame(f.op, f.fin, f.payload)...)
				}
				if fmt.Sprint(sizes) != fmt.Sprint(tt.sizes) {
					t.Errorf("frame sizes %v, want %v", sizes, tt.sizes)
				}
				if !bytes.Equal(got, payload) {
					t.Error("frames do not reassemble to the payload")
				}
				expect(t, Limits{MaxFrameBytes: max(tt.maxFrame, 0)}, client, 0, msgEv(op, string(payload)))
			})
		}
	}
}

// TestAppendClose checks close frame payloads, truncation of long reasons
// on a UTF-8 boundary, and that the parser reads them back.
func TestAppendClose(t *testing.T) {
	if f := AppendClose(nil, CloseNoStatus, "ignored"); !bytes.Equal(f, []byte{0x88, 0}) {
		t.Errorf("1005: % x, want 88 00", f)
	}
	if f := AppendClose(nil, CloseAbnormal, ""); !bytes.Equal(f, []byte{0x88, 0}) {
		t.Errorf("1006: % x, want 88 00", f)
	}
	if f := AppendClose(nil, CloseNormal, ""); !bytes.Equal(f, []byte{0x88, 2, 0x03, 0xe8}) {
		t.Errorf("1000: % x, want 88 02 03 e8", f)
	}
	tests := []struct {
		reason string
		want   string
	}{
		{"going away", "going away"},
		{strings.Repeat("a", 123), strings.Repeat("a", 123)},
		{strings.Repeat("a", 200), strings.Repeat("a", 123)},
		{strings.Repeat("é", 100), strings.Repeat("é", 61)},            // 2-byte: 122 bytes
		{strings.Repeat("€", 50), strings.Repeat("€", 41)},             // 3-byte: exactly 123
		{"a" + strings.Repeat("€", 50), "a" + strings.Repeat("€", 40)}, // 121
		{strings.Repeat("𝄞", 40), strings.Repeat("𝄞", 30)},             // 4-byte: 120
		{"ab" + strings.Repeat("𝄞", 40), "ab" + strings.Repeat("𝄞", 30)},
	}
	for _, tt := range tests {
		f := AppendClose(nil, CloseGoingAway, tt.reason)
		fs := readServerFrames(t, f)
		if len(fs) != 1 || fs[0].op != OpClose || !fs[0].fin || fs[0].masked {
			t.Fatalf("decoded %+v", fs)
		}
		p := fs[0].payload
		if code := int(p[0])<<8 | int(p[1]); code != CloseGoingAway {
			t.Errorf("code %d, want 1001", code)
		}
		got := string(p[2:])
		if got != tt.want || len(got) > MaxCloseReason || !utf8.ValidString(got) {
			t.Errorf("reason of %d bytes truncated to %d bytes %q, want %d bytes", len(tt.reason), len(got), got, len(tt.want))
		}
		expect(t, Limits{}, clientFrame(OpClose, true, p), 0, closeEv(CloseGoingAway, tt.want))
	}
}

// TestAppendClientFrame checks that client frames are masked and that the
// parser reads them at every size and with every key.
func TestAppendClientFrame(t *testing.T) {
	for _, n := range []int{0, 1, 7, 125, 126, 65535, 65536} {
		for _, key := range [][4]byte{{0, 0, 0, 0}, {1, 2, 3, 4}, {0xff, 0xfe, 0x80, 0x7f}} {
			payload := pattern(OpBinary, n)
			f := AppendClientFrame(nil, OpBinary, true, payload, key)
			if f[1]&0x80 == 0 {
				t.Fatal("mask bit not set")
			}
			fs := readServerFrames(t, f)
			if len(fs) != 1 || !fs[0].masked || !bytes.Equal(fs[0].payload, payload) {
				t.Errorf("%d bytes, key % x: frame does not decode", n, key)
			}
			var rec recorder
			if err := NewParser(Limits{}).Feed(f, &rec); err != nil || len(rec.events) != 1 || rec.events[0].payload != string(payload) {
				t.Errorf("%d bytes, key % x: parser got %v, %v", n, key, rec.events, err)
			}
		}
	}
}
