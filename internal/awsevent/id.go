package awsevent

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// idBytes is the number of random bytes in an id. Eleven bytes encode to 15
// base64 characters plus one "=" of padding, the 16-character form of AWS's
// connection, request and message ids.
const idBytes = 11

// NewID returns a fresh 16-character id: 11 bytes from crypto/rand in URL-safe
// base64 with padding, so it ends in "=", like AWS connection, request and
// message ids. The alphabet is the URL-safe one ("-" and "_") because AWS ids
// contain those characters; the trailing "=" still has to be percent-encoded
// in @connections URLs.
func NewID() string {
	var raw [idBytes]byte
	// crypto/rand.Read never returns an error; it crashes the program when
	// the operating system cannot supply randomness.
	_, _ = rand.Read(raw[:])
	var out [16]byte
	base64.URLEncoding.Encode(out[:], raw[:])
	return string(out[:])
}

// newIDPair returns two fresh ids of NewID's form from one crypto/rand read
// and one allocation: a message event's request id and message id.
func newIDPair() (string, string) {
	var raw [2 * idBytes]byte
	_, _ = rand.Read(raw[:])
	var out [32]byte
	base64.URLEncoding.Encode(out[:16], raw[:idBytes])
	base64.URLEncoding.Encode(out[16:], raw[idBytes:])
	both := string(out[:])
	return both[:16], both[16:]
}

// clfLayout is Common Log Format as API Gateway writes $context.requestTime.
const clfLayout = "02/Jan/2006:15:04:05 -0700"

// RequestTime formats t in Common Log Format as AWS does, for example
// "20/Jan/2024:11:55:00 +0000". The time is converted to UTC first, so the
// offset is always "+0000" whatever t's location.
func RequestTime(t time.Time) string {
	sec := t.Unix()
	if f := lastRequestTime.Load(); f != nil && f.sec == sec {
		return f.text
	}
	text := t.UTC().Format(clfLayout)
	lastRequestTime.Store(&formattedSecond{sec, text})
	return text
}

// formattedSecond is the Common Log Format text of one second.
type formattedSecond struct {
	sec  int64
	text string
}

// lastRequestTime is the second RequestTime formatted last: every event
// of the same second shares its text instead of formatting it again.
var lastRequestTime atomic.Pointer[formattedSecond]

// traceID returns an X-Amzn-Trace-Id value in the form API Gateway adds to
// the $connect request: "Root=1-" followed by the epoch seconds of now in 8
// hex digits, "-" and 96 random bits in 24 hex digits.
func traceID(now time.Time) string {
	var raw [12]byte
	_, _ = rand.Read(raw[:])
	b := make([]byte, 0, 7+8+1+24)
	b = append(b, "Root=1-"...)
	b = appendHex32(b, uint32(now.Unix()))
	b = append(b, '-')
	b = hex.AppendEncode(b, raw[:])
	return string(b)
}

// appendHex32 appends v as exactly 8 lowercase hex digits.
func appendHex32(b []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, digits[(v>>shift)&0xf])
	}
	return b
}
