package wsproto

import "strconv"

// Opcode is the 4-bit frame type of RFC 6455 section 5.2.
type Opcode byte

// Opcodes defined by RFC 6455. The values 3–7 and 0xB–0xF are reserved and
// are a protocol error on the wire.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong or a
// reserved control opcode), which RFC 6455 limits to 125 payload bytes and
// forbids to fragment.
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// String returns the lowercase name of op, or "opcode N" for a reserved
// value.
func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode " + strconv.Itoa(int(op))
}

// Close codes the gateway sends or receives (RFC 6455 section 7.4.1 and the
// IANA registry). CloseNoStatus and CloseAbnormal are never sent on the
// wire: they stand for "the close frame had no code" and "the connection
// dropped without a close frame".
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseNoStatus        = 1005
	CloseAbnormal        = 1006
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseTooBig          = 1009
	CloseInternalError   = 1011
	CloseTryAgainLater   = 1013
)

// MaxControlPayload is the largest payload RFC 6455 allows in a control
// frame.
const MaxControlPayload = 125

// MaxCloseReason is the largest close reason that fits in a close frame
// after its 2-byte code.
const MaxCloseReason = MaxControlPayload - 2

// CloseError is a protocol or limit violation that ends the connection. The
// server should send a close frame with Code and Reason (see [AppendClose])
// and then close the connection. Reason is a short lowercase text of at
// most [MaxCloseReason] bytes.
type CloseError struct {
	Code   int
	Reason string
}

// Error returns the reason followed by the close code.
func (e *CloseError) Error() string {
	return "wsproto: " + e.Reason + " (close code " + strconv.Itoa(e.Code) + ")"
}

// Limits bounds what a [Parser] accepts. The zero value accepts frames and
// messages of any size and both text and binary messages.
type Limits struct {
	// MaxFrameBytes is the largest data-frame payload accepted; zero or
	// negative means unlimited. A larger frame fails with [CloseTooBig] as
	// soon as its header is read, before any of its payload is buffered.
	MaxFrameBytes int
	// MaxMessageBytes is the largest reassembled message accepted; zero or
	// negative means unlimited. It is checked at each frame header against
	// the bytes of the message so far plus the frame's declared length, so
	// a message fails with [CloseTooBig] before the payload that would
	// exceed the limit is buffered.
	MaxMessageBytes int
	// RejectBinary makes a binary data frame fail with
	// [CloseUnsupportedData] at its header.
	RejectBinary bool
}

// validCloseCode reports whether code may appear in a close frame on the
// wire (RFC 6455 section 7.4 and the IANA registry, which added 1012–1014).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
