package integration

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFastClientResendsOnClosedKeepAlive: a backend that closes each
// connection after its answer without saying so (as one whose keep-alive
// timeout has passed does) makes the next call find its pooled connection
// closed before any byte of the answer; that call is sent once more on a
// new connection instead of failing.
func TestFastClientResendsOnClosedKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			req, err := http.ReadRequest(bufio.NewReader(conn))
			if err == nil {
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			_ = conn.Close()
		}
	})
	defer wg.Wait()
	defer ln.Close()
	f := NewFastClient()
	defer f.CloseIdleConnections()
	for i := range 3 {
		resp, err := f.Post(context.Background(), "http://"+ln.Addr().String()+"/x", 0, "text/plain", []byte("hi"), nil)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if string(resp.Body()) != "ok" {
			t.Fatalf("call %d: body %q", i, resp.Body())
		}
		resp.Release()
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("%d connections for 3 calls, want 3", n)
	}
}

// TestFastClientCanceled: canceling the call's context ends a call whose
// backend has not answered, with the context's error.
func TestFastClientCanceled(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	f := NewFastClient()
	defer f.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.Post(ctx, srv.URL, 0, "", nil, nil)
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestHTTPChunkedAndConnectionClose: a chunked answer is read whole, and
// after answers with Connection: close every call still succeeds, each on
// a connection of its own.
func TestHTTPChunkedAndConnectionClose(t *testing.T) {
	srv, opened := countingServer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, `{"statusCode":200,`)
		w.(http.Flusher).Flush() // no Content-Length: chunked
		_, _ = io.WriteString(w, `"body":"chunked"}`)
	})
	srv.Start()
	defer srv.Close()
	f := NewFastClient()
	defer f.CloseIdleConnections()
	h := &HTTP{URL: srv.URL, Fast: f}
	for i := range 3 {
		resp, err := h.Invoke(context.Background(), &Event{Body: "x"})
		if err != nil || resp.StatusCode != 200 || resp.Body != "chunked" {
			t.Fatalf("call %d: %+v, %v", i, resp, err)
		}
	}
	if n := opened.Load(); n != 3 {
		t.Fatalf("%d connections for 3 calls answered with Connection: close, want 3", n)
	}
}

// TestFastClientHTTPS: an https:// backend is reached over TLS, its
// certificate checked against the roots (here the test server's), and its
// connection kept for the next call; a certificate the roots do not
// vouch for fails the call.
func TestFastClientHTTPS(t *testing.T) {
	srv, opened := countingServer(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			w.WriteHeader(400)
			return
		}
		_, _ = io.WriteString(w, `{"statusCode":200,"body":"tls"}`)
	})
	srv.StartTLS()
	defer srv.Close()

	untrusted := NewFastClient()
	defer untrusted.CloseIdleConnections()
	if _, err := (&HTTP{URL: srv.URL, Fast: untrusted}).Invoke(context.Background(), &Event{}); !errors.Is(err, ErrFailed) {
		t.Fatalf("unknown certificate: err = %v, want ErrFailed", err)
	}

	f := NewFastClient()
	f.tls = srv.Client().Transport.(*http.Transport).TLSClientConfig
	defer f.CloseIdleConnections()
	before := opened.Load()
	for i := range 3 {
		resp, err := (&HTTP{URL: srv.URL + "/x", Fast: f}).Invoke(context.Background(), &Event{})
		if err != nil || resp.Body != "tls" {
			t.Fatalf("call %d: %+v, %v", i, resp, err)
		}
	}
	if n := opened.Load() - before; n != 1 {
		t.Fatalf("%d connections for 3 calls one after another, want 1", n)
	}
}

// TestFastClientLargeHeaders: answers whose headers take up to
// MaxResponseHeaderBytes are read; larger ones fail the call.
func TestFastClientLargeHeaders(t *testing.T) {
	size := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("a", <-size))
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	f := NewFastClient()
	defer f.CloseIdleConnections()
	size <- MaxResponseHeaderBytes - 200
	if resp, err := f.Post(context.Background(), srv.URL, 0, "", nil, nil); err != nil {
		t.Fatalf("headers of %d bytes: %v", MaxResponseHeaderBytes-200, err)
	} else {
		resp.Release()
	}
	size <- MaxResponseHeaderBytes + 1
	resp, err := f.Post(context.Background(), srv.URL, 0, "", nil, nil)
	if err == nil {
		resp.Release()
		t.Fatalf("headers over %d bytes were accepted", MaxResponseHeaderBytes)
	}
	// The error is logged: it must not quote the answer's headers.
	if strings.Contains(err.Error(), "aaaa") {
		t.Fatalf("error %.200q quotes the answer", err)
	}
}

// countingServer is an unstarted test server with handler h that counts
// the connections it accepts.
func countingServer(h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	opened := new(atomic.Int64)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	return srv, opened
}
