package wsproto

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
)

// acceptGUID is the fixed GUID of RFC 6455 section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a client's
// Sec-WebSocket-Key: the base64 SHA-1 of the key followed by the RFC 6455
// GUID.
func AcceptKey(clientKey string) string {
	sum := sha1.Sum([]byte(clientKey + acceptGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// CheckUpgrade validates r as the client's opening handshake (RFC 6455
// section 4.2.1). For a valid request it returns
// [http.StatusSwitchingProtocols] and nil. Otherwise it returns the status
// to answer with and an error whose lowercase message can be sent as the
// response body: [http.StatusMethodNotAllowed] when the method is not GET,
// [http.StatusUpgradeRequired] when Sec-WebSocket-Version is missing or is
// not 13 (the caller then adds "Sec-WebSocket-Version: 13" to the
// response), and [http.StatusBadRequest] for anything else, including a
// request with a body (Content-Length above zero or any
// Transfer-Encoding): after the upgrade its bytes would be read as the
// client's first frames. CheckUpgrade does not look at Origin or
// Sec-WebSocket-Protocol.
func CheckUpgrade(r *http.Request) (status int, err error) {
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, errors.New("websocket upgrade requires method get")
	}
	if !r.ProtoAtLeast(1, 1) {
		return http.StatusBadRequest, errors.New("websocket upgrade requires http/1.1 or later")
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		return http.StatusBadRequest, errors.New("websocket upgrade request must not have a body")
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") {
		return http.StatusBadRequest, errors.New("missing connection: upgrade header")
	}
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		return http.StatusBadRequest, errors.New("missing upgrade: websocket header")
	}
	if v := r.Header.Values("Sec-Websocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return http.StatusUpgradeRequired, errors.New("unsupported websocket version; only 13 is supported")
	}
	v := r.Header.Values("Sec-Websocket-Key")
	if len(v) != 1 {
		return http.StatusBadRequest, errors.New("missing or repeated sec-websocket-key header")
	}
	if key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[0])); err != nil || len(key) != 16 {
		return http.StatusBadRequest, errors.New("sec-websocket-key is not the base64 encoding of 16 bytes")
	}
	return http.StatusSwitchingProtocols, nil
}

// ParseSubprotocols returns the subprotocols a client offers in its
// Sec-WebSocket-Protocol header lines, in order, with surrounding spaces
// trimmed and empty items dropped. It returns nil when none are offered.
func ParseSubprotocols(h http.Header) []string {
	var protos []string
	for _, line := range h.Values("Sec-Websocket-Protocol") {
		for item := range strings.SplitSeq(line, ",") {
			if item = strings.TrimSpace(item); item != "" {
				protos = append(protos, item)
			}
		}
	}
	return protos
}

// Offered reports whether a server may answer a client that offered the
// subprotocols offered (see [ParseSubprotocols]) with
// "Sec-WebSocket-Protocol: sub": sub must be a token (RFC 7230 section
// 3.2.6) equal, byte for byte, to one of them (RFC 6455 section 4.2.2).
// Anything else, written into the response, would make the client fail the
// handshake or, with CR or LF in it, add headers of its own.
func Offered(offered []string, sub string) bool {
	return isToken(sub) && slices.Contains(offered, sub)
}

// isToken reports whether s is a non-empty RFC 7230 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// headerHasToken reports whether any line of the comma-separated header
// name contains token, compared case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, line := range h.Values(name) {
		for item := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(item), token) {
				return true
			}
		}
	}
	return false
}
