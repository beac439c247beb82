package acmecert_test

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// TestCAErrorResponsesFailHandshakesPromptly checks that a CA that answers,
// but only with an error autocert's ACME client would retry (503 while it
// is down for maintenance, 429 with a long Retry-After when the account is
// rate-limited), fails the handshake within the documented bound instead of
// holding it, and every other handshake for the domain, for autocert's
// five-minute bound. The failure is logged with the CA's reason.
func TestCAErrorResponsesFailHandshakesPromptly(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		retryAfter string
		problem    string
	}{
		{"unavailable", http.StatusServiceUnavailable, "", "serverInternal"},
		{"rate limited", http.StatusTooManyRequests, "3600", "rateLimited"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ca := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.retryAfter != "" {
					w.Header().Set("Retry-After", c.retryAfter)
				}
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(`{"type":"urn:ietf:params:acme:error:` + c.problem + `","detail":"try later"}`))
			}))
			t.Cleanup(ca.Close)

			logs := &logBuffer{}
			mgr := newManager(t, config.ACME{
				Domains: []string{domain}, DirectoryURL: ca.URL + "/dir", CacheDir: t.TempDir(),
			}, logs)

			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_ = tls.Server(c, mgr.TLSConfig()).Handshake()
			}()
			t.Cleanup(func() { _ = ln.Close() })

			// The documented bound is 30 seconds for a request to the CA;
			// a CA that answers at once must not take longer than that.
			const bound = 35 * time.Second
			start := time.Now()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(start.Add(bound))
			err = tls.Client(conn, &tls.Config{ServerName: domain, InsecureSkipVerify: true}).Handshake()
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("handshake succeeded without a certificate")
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("handshake still waiting for the CA after %v (a CA answering %d holds it for autocert's 5 minutes)", elapsed.Round(time.Second), c.status)
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the server's handshake did not end")
			}
			if out := logs.String(); !strings.Contains(out, "cannot obtain a certificate") || !strings.Contains(out, strconv.Itoa(c.status)) {
				t.Fatalf("log lacks the failure or the CA's status %d:\n%s", c.status, out)
			}
		})
	}
}
