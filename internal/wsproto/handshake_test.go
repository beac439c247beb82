package wsproto

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// TestAcceptKey checks the example of RFC 6455 section 1.3.
func TestAcceptKey(t *testing.T) {
	if got, want := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Errorf("AcceptKey = %q, want %q", got, want)
	}
}

func TestCheckUpgrade(t *testing.T) {
	tests := []struct {
		name   string
		modify func(r *http.Request)
		status int
	}{
		{"valid", func(r *http.Request) {}, http.StatusSwitchingProtocols},
		{"connection list and mixed case", func(r *http.Request) {
			r.Header.Set("Connection", "keep-alive, Upgrade")
			r.Header.Set("Upgrade", "WebSocket")
		}, http.StatusSwitchingProtocols},
		{"connection on two lines", func(r *http.Request) {
			r.Header["Connection"] = []string{"keep-alive", "upgrade"}
		}, http.StatusSwitchingProtocols},
		{"upgrade list", func(r *http.Request) { r.Header.Set("Upgrade", "h2c, websocket") }, http.StatusSwitchingProtocols},
		{"http/2", func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0 }, http.StatusSwitchingProtocols},
		{"post", func(r *http.Request) { r.Method = http.MethodPost }, http.StatusMethodNotAllowed},
		{"head", func(r *http.Request) { r.Method = http.MethodHead }, http.StatusMethodNotAllowed},
		{"http/1.0", func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0 }, http.StatusBadRequest},
		{"no connection", func(r *http.Request) { r.Header.Del("Connection") }, http.StatusBadRequest},
		{"connection without upgrade token", func(r *http.Request) { r.Header.Set("Connection", "upgraded, keep-alive") }, http.StatusBadRequest},
		{"no upgrade", func(r *http.Request) { r.Header.Del("Upgrade") }, http.StatusBadRequest},
		{"upgrade h2c", func(r *http.Request) { r.Header.Set("Upgrade", "h2c") }, http.StatusBadRequest},
		{"no version", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Version") }, http.StatusUpgradeRequired},
		{"version 8", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, http.StatusUpgradeRequired},
		{"two versions", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Version", "8") }, http.StatusUpgradeRequired},
		{"no key", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, http.StatusBadRequest},
		{"key not base64", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "not base64!") }, http.StatusBadRequest},
		{"key of 15 bytes", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA") }, http.StatusBadRequest},
		{"key of 17 bytes", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA=") }, http.StatusBadRequest},
		{"two keys", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==") }, http.StatusBadRequest},
		{"empty body declared", func(r *http.Request) { r.ContentLength = 0 }, http.StatusSwitchingProtocols},
		{"body with content-length", func(r *http.Request) { r.ContentLength = 5 }, http.StatusBadRequest},
		{"chunked body", func(r *http.Request) { r.ContentLength, r.TransferEncoding = -1, []string{"chunked"} }, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/chat", nil)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Sec-WebSocket-Version", "13")
			r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			tt.modify(r)
			status, err := CheckUpgrade(r)
			if status != tt.status {
				t.Errorf("status = %d (%v), want %d", status, err, tt.status)
			}
			if (err == nil) != (status == http.StatusSwitchingProtocols) {
				t.Errorf("status %d with error %v", status, err)
			}
			if err != nil && err.Error() == "" {
				t.Error("empty error message")
			}
		})
	}
}

func TestParseSubprotocols(t *testing.T) {
	tests := []struct {
		lines []string
		want  []string
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"chat"}, []string{"chat"}},
		{[]string{"chat, superchat"}, []string{"chat", "superchat"}},
		{[]string{" a ,, b,", "c", " ,d"}, []string{"a", "b", "c", "d"}},
		{[]string{"v2.json.example", "v1.json.example"}, []string{"v2.json.example", "v1.json.example"}},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, l := range tt.lines {
			h.Add("Sec-WebSocket-Protocol", l)
		}
		if got := ParseSubprotocols(h); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSubprotocols(%q) = %q, want %q", tt.lines, got, tt.want)
		}
	}
}

func TestOffered(t *testing.T) {
	offered := []string{"chat", "v2.chat", "a b"}
	tests := []struct {
		sub  string
		want bool
	}{
		{"chat", true},
		{"v2.chat", true},
		{"", false},
		{"Chat", false},
		{"superchat", false},
		{"chat, v2.chat", false},
		{"a b", false}, // offered, but not a token
		{"chat\r\nSet-Cookie: x=y", false},
		{"chat\n", false},
		{" chat", false},
	}
	for _, tt := range tests {
		if got := Offered(offered, tt.sub); got != tt.want {
			t.Errorf("Offered(%q, %q) = %v, want %v", offered, tt.sub, got, tt.want)
		}
	}
	if Offered(nil, "chat") {
		t.Error("Offered(nil, chat) = true")
	}
	if !Offered([]string{"!#$%&'*+-.^_`|~09AZaz"}, "!#$%&'*+-.^_`|~09AZaz") {
		t.Error("a token of every allowed punctuation character is refused")
	}
}
