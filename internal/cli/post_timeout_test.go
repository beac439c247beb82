package cli_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentServer accepts TCP connections and never answers on them, as a
// management API that hangs does. It returns its http:// URL.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// TestPostTimesOutWhenManagementAPINeverAnswers: a management API that
// accepts the connection and never answers must not make post hang; it
// gives up after -timeout with exit 1.
func TestPostTimesOutWhenManagementAPINeverAnswers(t *testing.T) {
	t.Setenv("WSGATE_MGMT_TOKEN", "")
	endpoint := silentServer(t)
	// No deadline of its own: only the command's timeout may end it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := start(ctx, nil, "post", "-timeout", "1s", "-endpoint", endpoint, "--", "AAAAAAAAAAAAAAA=", "hello")
	select {
	case code := <-r.done:
		if code != 1 || !strings.Contains(r.stderr.String(), "1s") {
			t.Fatalf("want exit 1 saying it gave up after 1s, got exit %d\nstderr:\n%s", code, r.stderr.String())
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-r.done
		t.Fatal("post still waiting for a management API that never answers after 10s")
	}
}

// TestPostTimeoutDefault: without -timeout, post has a bounded default
// (-h documents it), rather than waiting forever.
func TestPostTimeoutDefault(t *testing.T) {
	r := run(t, nil, "post", "-h")
	if r.code != 0 || !strings.Contains(r.stderr, "-timeout") || !strings.Contains(r.stderr, "(default 30s)") {
		t.Fatalf("want post -h to document -timeout with a 30s default, got %v", r)
	}
}
