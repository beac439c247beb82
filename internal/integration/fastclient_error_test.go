package integration

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestHTTPMalformedAnswerHidesHeaders: an answer whose status line or
// headers cannot be read fails the call with an error that names the
// reason alone: the error is logged, and the answer's header block it
// would otherwise quote may hold a cookie or a token.
func TestHTTPMalformedAnswerHidesHeaders(t *testing.T) {
	const secret = "s3cr3t-session"
	for name, answer := range map[string]string{
		"four-digit status":    "HTTP/1.1 2000 OK\r\nSet-Cookie: session=" + secret + "\r\nContent-Length: 0\r\n\r\n",
		"no space":             "HTTP/1.1200OK\r\nSet-Cookie: session=" + secret + "\r\nContent-Length: 0\r\n\r\n",
		"unknown protocol":     "XTTP/1.1 200 OK\r\nSet-Cookie: session=" + secret + "\r\nContent-Length: 0\r\n\r\n",
		"bad content-length":   "HTTP/1.1 200 OK\r\nSet-Cookie: session=" + secret + "\r\nContent-Length: x\r\n\r\n",
		"header without colon": "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nAuthorization Bearer " + secret + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					if req, err := http.ReadRequest(bufio.NewReader(conn)); err == nil {
						_, _ = io.Copy(io.Discard, req.Body)
						_, _ = io.WriteString(conn, answer)
					}
					_ = conn.Close()
				}
			})
			defer wg.Wait()
			defer ln.Close()
			f := NewFastClient()
			defer f.CloseIdleConnections()
			h := &HTTP{URL: "http://" + ln.Addr().String() + "/x", Fast: f}
			resp, err := h.Invoke(context.Background(), &Event{Body: "x"})
			if err == nil {
				t.Fatalf("no error for a malformed answer: %+v", resp)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error quotes the answer's headers: %v", err)
			}
		})
	}
}
