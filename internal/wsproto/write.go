package wsproto

import (
	"encoding/binary"
	"slices"
	"unicode/utf8"
)

// AppendFrame appends one unmasked server-to-client frame to dst and
// returns the extended slice. The payload length is encoded in the fewest
// bytes. AppendFrame does not check the protocol: a control frame's
// payload must not exceed [MaxControlPayload] bytes and a control frame
// must have fin set.
func AppendFrame(dst []byte, op Opcode, fin bool, payload []byte) []byte {
	dst = slices.Grow(dst, maxHeader+len(payload))
	dst = appendHeader(dst, op, fin, 0, len(payload))
	return append(dst, payload...)
}

// AppendMessage appends a whole text or binary message to dst as unmasked
// frames and returns the extended slice. When maxFrame > 0 and the payload
// is longer than maxFrame, the message is split into a first frame with op
// and continuation frames, each carrying at most maxFrame bytes, the way
// API Gateway splits data posted to a connection that is larger than
// 32 KB. Otherwise the message is a single frame. Text is sent as given,
// without UTF-8 validation.
func AppendMessage(dst []byte, op Opcode, payload []byte, maxFrame int) []byte {
	if maxFrame <= 0 || len(payload) <= maxFrame {
		return AppendFrame(dst, op, true, payload)
	}
	frames := (len(payload) + maxFrame - 1) / maxFrame
	dst = slices.Grow(dst, len(payload)+frames*maxHeader)
	for len(payload) > maxFrame {
		dst = appendHeader(dst, op, false, 0, maxFrame)
		dst = append(dst, payload[:maxFrame]...)
		payload = payload[maxFrame:]
		op = OpContinuation
	}
	dst = appendHeader(dst, op, true, 0, len(payload))
	return append(dst, payload...)
}

// AppendClose appends an unmasked close frame to dst and returns the
// extended slice. The frame has an empty payload when code is
// [CloseNoStatus] (and for [CloseAbnormal] and 1015, which RFC 6455
// forbids on the wire); otherwise it carries the 2-byte code followed by
// reason, truncated to [MaxCloseReason] bytes without splitting a UTF-8
// sequence. reason should be valid UTF-8, which the peer checks.
func AppendClose(dst []byte, code int, reason string) []byte {
	if code == CloseNoStatus || code == CloseAbnormal || code == 1015 {
		return AppendFrame(dst, OpClose, true, nil)
	}
	if len(reason) > MaxCloseReason {
		cut := MaxCloseReason
		for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(reason[cut]); i++ {
			cut--
		}
		reason = reason[:cut]
	}
	dst = slices.Grow(dst, 2+2+len(reason))
	dst = appendHeader(dst, OpClose, true, 0, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// AppendClientFrame appends one client-to-server frame masked with the
// 4-byte key mask to dst and returns the extended slice. It serves tests
// and load generators; a real client must pick a fresh random key for
// every frame.
func AppendClientFrame(dst []byte, op Opcode, fin bool, payload []byte, mask [4]byte) []byte {
	dst = slices.Grow(dst, maxHeader+len(payload))
	dst = appendHeader(dst, op, fin, 0x80, len(payload))
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	maskBytes(mask, 0, dst[start:])
	return dst
}

// appendHeader appends the first bytes of a frame header, up to and
// excluding the masking key. maskBit is 0x80 for a masked frame.
func appendHeader(dst []byte, op Opcode, fin bool, maskBit byte, n int) []byte {
	b0 := byte(op) & 0x0f
	if fin {
		b0 |= 0x80
	}
	switch {
	case n <= 125:
		return append(dst, b0, maskBit|byte(n))
	case n <= 0xffff:
		return append(dst, b0, maskBit|126, byte(n>>8), byte(n))
	}
	dst = append(dst, b0, maskBit|127)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}
