package wsproto

import (
	"fmt"
	"testing"
)

// nopHandler discards everything.
type nopHandler struct{}

func (nopHandler) OnMessage(Opcode, []byte) error { return nil }
func (nopHandler) OnPing([]byte) error            { return nil }
func (nopHandler) OnPong([]byte) error            { return nil }
func (nopHandler) OnClose(int, string) error      { return nil }

func BenchmarkParseSmallText(b *testing.B) {
	frame := AppendClientFrame(nil, OpText, true, []byte(`{"action":"sendmessage","data":"hello"}`), [4]byte{1, 2, 3, 4})
	p := NewParser(Limits{MaxFrameBytes: 32 << 10, MaxMessageBytes: 128 << 10})
	var h nopHandler
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Feed(frame, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseFragmented64K parses a 64 KiB text message sent as four
// 16 KiB frames, fed whole and in 4 KiB reads.
func BenchmarkParseFragmented64K(b *testing.B) {
	payload := pattern(OpText, 64<<10)
	var stream []byte
	for i := 0; i < len(payload); i += 16 << 10 {
		op := OpContinuation
		if i == 0 {
			op = OpText
		}
		stream = AppendClientFrame(stream, op, i+16<<10 == len(payload), payload[i:i+16<<10], [4]byte{9, 8, 7, 6})
	}
	for _, read := range []int{len(stream), 4 << 10} {
		name := "whole"
		if read < len(stream) {
			name = "reads4K"
		}
		b.Run(name, func(b *testing.B) {
			p := NewParser(Limits{})
			var h nopHandler
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				for s := stream; len(s) > 0; {
					n := min(read, len(s))
					if err := p.Feed(s[:n], h); err != nil {
						b.Fatal(err)
					}
					s = s[n:]
				}
			}
		})
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	for _, n := range []int{128, 64 << 10} {
		payload := pattern(OpText, n)
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			dst := make([]byte, 0, n+64)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendMessage(dst[:0], OpText, payload, 32<<10)
			}
		})
	}
}
