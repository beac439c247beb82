package wsproto

import (
	"fmt"
	"strings"
	"testing"
)

// TestAutobahn7Close covers cases 7.1–7.13: close frame payloads, close
// codes, and input after a close frame, which the parser ignores.
func TestAutobahn7Close(t *testing.T) {
	ping := clientFrame(OpPing, true, []byte("Hello, world!"))
	big := strings.Repeat("BAsd7&jh23", 26214) // 7.1.6: 256 KiB text
	tests := []struct {
		name   string
		stream []byte
		code   int
		want   []event
	}{
		{"7.1.1 text then close", cat(text("Hello World!"), closeFrame(1000, "")), 0,
			[]event{msgEv(OpText, "Hello World!"), closeEv(1000, "")}},
		{"7.1.2 close twice", cat(closeFrame(1000, ""), closeFrame(1000, "")), 0, []event{closeEv(1000, "")}},
		{"7.1.3 ping after close", cat(closeFrame(1000, ""), ping), 0, []event{closeEv(1000, "")}},
		{"7.1.4 text after close", cat(closeFrame(1000, ""), text("Hello World!")), 0, []event{closeEv(1000, "")}},
		{"7.1.5 close inside a fragmented message", cat(clientFrame(OpText, false, []byte("fragment1")), closeFrame(1000, ""),
			clientFrame(OpContinuation, true, []byte("fragment2"))), 0, []event{closeEv(1000, "")}},
		{"7.1.6 large text, ping, close", cat(text(big), ping, closeFrame(1000, "")), 0,
			[]event{msgEv(OpText, big), pingEv("Hello, world!"), closeEv(1000, "")}},
		{"garbage after close", cat(closeFrame(1001, ""), []byte{0xff, 0x00, 0x13}), 0, []event{closeEv(1001, "")}},
		{"7.3.1 no payload", clientFrame(OpClose, true, nil), 0, []event{closeEv(CloseNoStatus, "")}},
		{"7.3.2 1-byte payload", clientFrame(OpClose, true, []byte("a")), CloseProtocolError, nil},
		{"7.3.3 code only", closeFrame(1000, ""), 0, []event{closeEv(1000, "")}},
		{"7.3.4 code and reason", closeFrame(1000, "Hello World!"), 0, []event{closeEv(1000, "Hello World!")}},
		{"7.3.5 reason of 123 bytes", closeFrame(1000, strings.Repeat("*", 123)), 0, []event{closeEv(1000, strings.Repeat("*", 123))}},
		{"7.3.6 reason of 124 bytes", closeFrame(1000, strings.Repeat("*", 124)), CloseProtocolError, nil},
		{"multi-byte reason", closeFrame(4000, "κόσμε "+strings.Repeat("€", 37)), 0, []event{closeEv(4000, "κόσμε "+strings.Repeat("€", 37))}},
		{"7.5.1 invalid utf-8 reason", closeFrame(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"),
			CloseInvalidPayload, nil},
		{"truncated utf-8 reason", closeFrame(1000, "abc\xe2\x82"), CloseInvalidPayload, nil},
		{"invalid code wins over invalid reason", closeFrame(999, "\xff"), CloseProtocolError, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, Limits{}, tt.stream, tt.code, tt.want...)
		})
	}
	valid := []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	for i, code := range valid {
		t.Run(fmt.Sprintf("7.7.%d valid code %d", i+1, code), func(t *testing.T) {
			expect(t, Limits{}, closeFrame(code, ""), 0, closeEv(code, ""))
		})
	}
	invalid := []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}
	for i, code := range invalid {
		t.Run(fmt.Sprintf("7.9.%d invalid code %d", i+1, code), func(t *testing.T) {
			expect(t, Limits{}, closeFrame(code, ""), CloseProtocolError)
			expect(t, Limits{}, closeFrame(code, "reason"), CloseProtocolError)
		})
	}
}

// TestCloseCodesExhaustive sends every 16-bit close code and checks it
// against the codes RFC 6455 and the IANA registry allow on the wire.
func TestCloseCodesExhaustive(t *testing.T) {
	for code := range 1 << 16 {
		want := code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
		p := NewParser(Limits{})
		var rec recorder
		err := p.Feed(closeFrame(code, "r"), &rec)
		switch {
		case want && (err != nil || len(rec.events) != 1 || rec.events[0] != closeEv(code, "r")):
			t.Errorf("code %d: %v, %v; want it delivered", code, err, rec.events)
		case !want && (errCode(err) != CloseProtocolError || len(rec.events) != 0):
			t.Errorf("code %d: %v, %v; want 1002", code, err, rec.events)
		}
	}
}
