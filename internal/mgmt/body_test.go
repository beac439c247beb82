package mgmt

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingReader is a request body that counts the bytes read from it.
type countingReader struct {
	r    io.Reader
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// withCountedBody replaces r's body with a counting reader of the same
// bytes.
func withCountedBody(r *http.Request, body string) (*http.Request, *countingReader) {
	cr := &countingReader{r: strings.NewReader(body)}
	r.Body = io.NopCloser(cr)
	r.ContentLength = int64(len(body))
	return r, cr
}

// TestRefusedBeforeReadingBody checks that a call whose credentials fail a
// check that needs no body is refused without reading a byte of it: a bad
// or missing bearer token, and a SigV4 header that is malformed, names an
// unknown key, region or service, leaves host or the date unsigned, carries
// a date out of range, or signs a declared body hash with the wrong secret.
// A body declared over the call's limit is refused unread too.
func TestRefusedBeforeReadingBody(t *testing.T) {
	big := strings.Repeat("x", MaxPayloadBytes)
	setAuth := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", v) }
	}
	replaceAuth := func(old, new string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
		}
	}
	tests := []struct {
		name   string
		change func(*signed)
		tamper func(*http.Request)
		status int
	}{
		{name: "no authorization", tamper: func(r *http.Request) { r.Header.Del("Authorization") }},
		{name: "wrong bearer token", tamper: setAuth("Bearer nope")},
		{name: "basic", tamper: setAuth("Basic dGVzdDp0ZXN0")},
		{name: "malformed sigv4", tamper: setAuth("AWS4-HMAC-SHA256 Credential=garbage")},
		{name: "wrong algorithm", tamper: replaceAuth("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")},
		{name: "unknown key id", change: func(s *signed) { s.keyID = "AKIAWSGATETEST0002" }},
		{name: "wrong region", change: func(s *signed) { s.region = "eu-west-1" }},
		{name: "wrong service", change: func(s *signed) { s.service = "execute" }},
		{name: "stale date", change: func(s *signed) { s.at = testNow.Add(-time.Hour) }},
		{name: "future date", change: func(s *signed) { s.at = testNow.Add(time.Hour) }},
		{name: "malformed x-amz-date", tamper: func(r *http.Request) { r.Header.Set("X-Amz-Date", "yesterday") }},
		{name: "scope date differs", tamper: replaceAuth("/20261121/", "/20261120/")},
		{name: "host unsigned", tamper: replaceAuth("host;", "")},
		{name: "signed header missing", tamper: func(r *http.Request) { r.Header.Del("Amz-Sdk-Invocation-Id") }},
		{name: "declared body hash, wrong secret", change: func(s *signed) { s.contentSHA, s.secret = true, "wrong" }},
		{name: "declared body over the limit", change: func(s *signed) { s.body = big + "x" }, status: http.StatusRequestEntityTooLarge},
	}
	s := newSigV4Server(t, "tok-1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sg := defaultSigned()
			sg.body = big
			if tt.change != nil {
				tt.change(&sg)
			}
			r, body := withCountedBody(sg.request(t), sg.body)
			if tt.tamper != nil {
				tt.tamper(r)
			}
			want := tt.status
			if want == 0 {
				want = http.StatusForbidden
			}
			status, typ, msg := serve(s, r)
			if status != want {
				t.Fatalf("got %d %s %q, want %d", status, typ, msg, want)
			}
			if n := body.read.Load(); n != 0 {
				t.Fatalf("%d bytes of the body were read before refusing it", n)
			}
		})
	}
	// The signature itself needs the body, unless its hash is declared.
	for _, declared := range []bool{false, true} {
		sg := defaultSigned()
		sg.body, sg.contentSHA = big, declared
		r, body := withCountedBody(sg.request(t), sg.body)
		if status, typ, msg := serve(s, r); status != http.StatusGone {
			t.Fatalf("declared hash %v: got %d %s %q, want 410", declared, status, typ, msg)
		}
		if n := body.read.Load(); n != int64(len(big)) {
			t.Fatalf("declared hash %v: read %d bytes of the body, want all %d", declared, n, len(big))
		}
	}
}

// TestDeclaredBodyHashMustMatch checks that a request whose signature is
// valid over its X-Amz-Content-Sha256 is refused when the body it sends
// has another hash.
func TestDeclaredBodyHashMustMatch(t *testing.T) {
	s := newSigV4Server(t)
	sg := defaultSigned()
	sg.contentSHA = true
	r, _ := withCountedBody(sg.request(t), `{"hello":"World"}`)
	if status, typ, msg := serve(s, r); status != http.StatusForbidden || typ != "ForbiddenException" {
		t.Fatalf("got %d %s %q, want 403 ForbiddenException", status, typ, msg)
	}
}

// TestUnverifiedBodiesDoNotStarveAuthenticatedCalls: requests that name a
// known access key id (no secret: the access log prints it) with a made-up
// signature and no X-Amz-Content-Sha256 are read before the signature can
// be checked. Declaring the largest body and sending none of it, they hold
// at most their share of the body budget (one @batch of the default's
// quarter, 16 MiB: one), and are refused with 429 beyond it, so a call
// with a bearer token, or a SigV4 call that declares its body's hash, is
// still served.
func TestUnverifiedBodiesDoNotStarveAuthenticatedCalls(t *testing.T) {
	s := newSigV4Server(t, "tok-1")
	free := func() int64 {
		s.bodies.mu.Lock()
		defer s.bodies.mu.Unlock()
		return s.bodies.free
	}
	var pipes []*io.PipeWriter
	var held []chan int
	defer func() {
		for _, pw := range pipes {
			_ = pw.CloseWithError(errors.New("client gone"))
		}
		for _, done := range held {
			<-done
		}
		if got := free(); got != DefaultMaxBodyBytesInFlight {
			t.Errorf("%d bytes of the budget free once the calls ended, want %d", got, DefaultMaxBodyBytesInFlight)
		}
	}()
	refused := 0
	for len(pipes) < 16 && refused == 0 {
		before := free()
		pr, pw := io.Pipe()
		r := httptest.NewRequest("POST", "/@batch", nil)
		r.Body, r.ContentLength = pr, MaxBatchBytes
		r.Host = testHost
		r.Header.Set("X-Amz-Date", testNow.Format(amzDateFormat))
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testKeyID+
			"/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("0", 64))
		done := make(chan int, 1)
		go func() {
			status, _, _ := serve(s, r)
			done <- status
		}()
		// Either the call reserves its body and waits for it, or it is
		// refused at once.
		for free() == before && refused == 0 {
			select {
			case status := <-done:
				if status != http.StatusTooManyRequests {
					t.Fatalf("an unverified call beyond the share: %d, want 429", status)
				}
				refused++
			default:
				time.Sleep(time.Millisecond)
			}
		}
		if refused == 0 {
			pipes, held = append(pipes, pw), append(held, done)
		}
	}
	if len(held) != 1 || refused != 1 {
		t.Fatalf("%d unverified @batch bodies held, %d refused; want 1 held, then 429", len(held), refused)
	}
	r := httptest.NewRequest("POST", "/@connections/R1kmxc2VNjMCFIA%3D", strings.NewReader(`{"hello":"world"}`))
	r.Header.Set("Authorization", "Bearer tok-1")
	if status, typ, msg := serve(s, r); status != http.StatusGone {
		t.Fatalf("a bearer push while unverified bodies trickle: %d %s %q, want 410 (the unknown connection)", status, typ, msg)
	}
	sg := defaultSigned()
	sg.contentSHA = true
	if status, typ, msg := serve(s, sg.request(t)); status != http.StatusGone {
		t.Fatalf("a SigV4 push that declares its hash while unverified bodies trickle: %d %s %q, want 410", status, typ, msg)
	}
}
