package awsevent

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestErrorFrames(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{
			"forbidden as captured from AWS",
			ForbiddenFrame("XDmENcnwIE0CFEQ=", "XDmGEE2RoE0FRdQ="),
			`{"message": "Forbidden", "connectionId":"XDmENcnwIE0CFEQ=", "requestId":"XDmGEE2RoE0FRdQ="}`,
		},
		{
			"internal error as captured from AWS",
			InternalErrorFrame("Qyi07eCbtjMCJKw=", "Qyi3UG41tjMFlUg="),
			`{"message": "Internal server error", "connectionId":"Qyi07eCbtjMCJKw=", "requestId":"Qyi3UG41tjMFlUg="}`,
		},
		{
			"limit exceeded",
			LimitExceededFrame("XDmENcnwIE0CFEQ=", "XDmGEE2RoE0FRdQ="),
			`{"message": "Limit Exceeded", "connectionId":"XDmENcnwIE0CFEQ=", "requestId":"XDmGEE2RoE0FRdQ="}`,
		},
		{
			"too many requests (route throttling)",
			TooManyRequestsFrame("XDmENcnwIE0CFEQ=", "XDmGEE2RoE0FRdQ="),
			`{"message": "Too Many Requests", "connectionId":"XDmENcnwIE0CFEQ=", "requestId":"XDmGEE2RoE0FRdQ="}`,
		},
		{
			"subscription limit",
			SubscriptionLimitFrame("XDmENcnwIE0CFEQ=", "XDmGEE2RoE0FRdQ="),
			`{"message": "Subscription limit exceeded", "connectionId":"XDmENcnwIE0CFEQ=", "requestId":"XDmGEE2RoE0FRdQ="}`,
		},
		{
			"bad request body as AWS documents it, with messageId",
			BadRequestBodyFrame("XDmENcnwIE0CFEQ=", "XDmGEE2RoE0FRdQ="),
			`{"message" : "Bad request body", "connectionId": "XDmENcnwIE0CFEQ=", "messageId": "XDmGEE2RoE0FRdQ="}`,
		},
		{
			"bad request body escapes its ids",
			BadRequestBodyFrame("a\"b", "\xff"),
			`{"message" : "Bad request body", "connectionId": "a\"b", "messageId": "\ufffd"}`,
		},
		{
			"url-safe ids are not escaped",
			ForbiddenFrame("a-b_c==", "-_-_"),
			`{"message": "Forbidden", "connectionId":"a-b_c==", "requestId":"-_-_"}`,
		},
		{
			"empty ids",
			InternalErrorFrame("", ""),
			`{"message": "Internal server error", "connectionId":"", "requestId":""}`,
		},
		{
			"quotes, backslashes and control characters are escaped",
			ForbiddenFrame("a\"b\\c", "x\ny\x00\x1f"),
			`{"message": "Forbidden", "connectionId":"a\"b\\c", "requestId":"x\u000ay\u0000\u001f"}`,
		},
		{
			"valid utf-8 is kept, invalid becomes U+FFFD",
			ForbiddenFrame("é", "a\xffb"),
			`{"message": "Forbidden", "connectionId":"é", "requestId":"a\ufffdb"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
			if !json.Valid(tt.got) {
				t.Errorf("%s is not valid JSON", tt.got)
			}
		})
	}
}

func FuzzErrorFrame(f *testing.F) {
	f.Add("XDmENcnwIE0CFEQ=", "XDmGEE2RoE0FRdQ=")
	f.Add("\"\\\n", "\xff\xfe")
	f.Add("\u2028", "</script>")
	f.Fuzz(func(t *testing.T, connectionID, requestID string) {
		for _, frame := range [][]byte{
			ForbiddenFrame(connectionID, requestID),
			InternalErrorFrame(connectionID, requestID),
			LimitExceededFrame(connectionID, requestID),
			SubscriptionLimitFrame(connectionID, requestID),
		} {
			var got struct {
				Message, ConnectionID, RequestID string
			}
			if err := json.Unmarshal(frame, &got); err != nil {
				t.Fatalf("%q: %v", frame, err)
			}
			if !utf8.ValidString(connectionID) || !utf8.ValidString(requestID) {
				continue
			}
			if got.ConnectionID != connectionID || got.RequestID != requestID {
				t.Fatalf("%q decodes to ids %q, %q; want %q, %q",
					frame, got.ConnectionID, got.RequestID, connectionID, requestID)
			}
		}
		var got struct{ Message, ConnectionID, MessageID string }
		frame := BadRequestBodyFrame(connectionID, requestID)
		if err := json.Unmarshal(frame, &got); err != nil {
			t.Fatalf("%q: %v", frame, err)
		}
		if got.Message != "Bad request body" {
			t.Fatalf("%q: message %q", frame, got.Message)
		}
		if utf8.ValidString(connectionID) && utf8.ValidString(requestID) && (got.ConnectionID != connectionID || got.MessageID != requestID) {
			t.Fatalf("%q decodes to ids %q, %q; want %q, %q", frame, got.ConnectionID, got.MessageID, connectionID, requestID)
		}
	})
}
