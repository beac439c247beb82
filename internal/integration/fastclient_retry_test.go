package integration

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFastClientNoResendOnFreshConnection: a backend that reads a call on
// a new connection and then closes it without an answer (it crashed while
// handling the event, say) has received the call: the call fails and is
// not sent again, which would hand the backend the same event twice. Only
// a kept-alive connection that turns out closed is worth a second try
// (TestFastClientResendsOnClosedKeepAlive).
func TestFastClientNoResendOnFreshConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var received atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(conn))
			if err == nil {
				_, _ = io.Copy(io.Discard, req.Body)
				received.Add(1)
			}
			_ = conn.Close()
		}
	})
	defer wg.Wait()
	defer ln.Close()
	f := NewFastClient()
	defer f.CloseIdleConnections()
	h := &HTTP{URL: "http://" + ln.Addr().String() + "/send", Fast: f}
	if resp, err := h.Invoke(context.Background(), &Event{Body: "hello"}); err == nil {
		t.Fatalf("no error for a backend that answered nothing: %+v", resp)
	}
	if n := received.Load(); n != 1 {
		t.Fatalf("the backend received the event %d times, want 1", n)
	}
}
