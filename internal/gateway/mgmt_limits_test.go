package gateway_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// rawTimeout bounds every read of a raw management client, so that a server
// that never answers fails the test instead of hanging it. It is no
// statement about how fast the server answers.
const rawTimeout = 20 * time.Second

// rawMgmt opens a TCP connection to g's management listener and writes
// head, which may end anywhere: in the headers, in the body or after it.
func rawMgmt(t *testing.T, g *gt.Gateway, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(g.MgmtURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(rawTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// readResponse reads one response from c.
func readResponse(t *testing.T, c net.Conn, br *bufio.Reader) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// expectClosed reads from c until the server closes it, failing the test if
// it is still open after rawTimeout.
func expectClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	_, err := io.Copy(io.Discard, br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept the connection open")
	}
}

// TestMgmtRefusesBadAuthWithoutReadingBody sends many calls that declare a
// 10 MB body, send none of it and wait, with credentials that fail before
// the body matters: each must get 403 at once and the connection closed,
// where a server that reads the body first would wait forever (and hold up
// to 10 MB per call once the body came).
func TestMgmtRefusesBadAuthWithoutReadingBody(t *testing.T) {
	g := gt.Start(t, sigv4AndBearerConfig)
	day := time.Now().UTC().Format("20060102")
	auths := []string{
		"",
		"Authorization: Bearer wrong\r\n",
		"Authorization: AWS4-HMAC-SHA256 Credential=garbage\r\n",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAUNKNOWNKEY000001/" + day + "/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64) + "\r\nX-Amz-Date: " + day + "T000000Z\r\n",
		"Authorization: AWS4-HMAC-SHA256 Credential=" + gt.TestSigV4KeyID + "/20200101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64) + "\r\nX-Amz-Date: 20200101T000000Z\r\n",
	}
	const calls = 40
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		auth := auths[i%len(auths)]
		c := rawMgmt(t, g, "POST /prod/@batch HTTP/1.1\r\nHost: x\r\n"+auth+"Content-Length: 10485760\r\n\r\n")
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				errs <- fmt.Errorf("auth %q: no response: %v", auth, err)
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || !resp.Close {
				errs <- fmt.Errorf("auth %q: %s, close=%v; want 403 and the connection closed", auth, resp.Status, resp.Close)
				return
			}
			if _, err := io.Copy(io.Discard, br); errors.Is(err, os.ErrDeadlineExceeded) {
				errs <- fmt.Errorf("auth %q: the connection stayed open", auth)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMgmtBodyBudget checks management.max_body_bytes_in_flight: while one
// call holds the whole budget with a 10 MB body it sends slowly, another
// call with a body gets 429 LimitExceededException (which the AWS SDK
// retries), and once the first is gone the budget is free again.
func TestMgmtBodyBudget(t *testing.T) {
	g := gt.Start(t, `
management:
  max_body_bytes_in_flight: 10485760
  auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}
`)
	bearer := http.Header{"Authorization": {"Bearer " + gt.TestToken}}
	holder := rawMgmt(t, g, "POST /@batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+gt.TestToken+
		"\r\nContent-Length: 10485760\r\n\r\n{\"items\":[")
	gt.Eventually(t, func() bool {
		status, hdr, _ := g.MgmtDo(t, "POST", "/@connections/AAAAAAAAAAAAAAA%3D", strings.NewReader("hi"), bearer)
		if status != http.StatusTooManyRequests {
			return false
		}
		if hdr.Get("X-Amzn-ErrorType") != "LimitExceededException" {
			t.Fatalf("429 with error type %q", hdr.Get("X-Amzn-ErrorType"))
		}
		return true
	}, "a call to be refused while the budget is taken")
	// Calls without a body do not need the budget.
	if status, _, body := g.MgmtDo(t, "GET", "/@topics/t", nil, bearer); status != http.StatusOK {
		t.Fatalf("GET while the budget is taken: %d %q", status, body)
	}
	_ = holder.Close()
	// The budget is exactly the holder's 10 MB, so once a 2-byte body fits
	// again the holder's bytes are back.
	gt.Eventually(t, func() bool {
		status, _, _ := g.MgmtDo(t, "POST", "/@connections/AAAAAAAAAAAAAAA%3D", strings.NewReader("hi"), bearer)
		return status == http.StatusGone
	}, "the budget to be free again")
	// Alone, a batch of nearly 10 MB goes through.
	batch := `{"items":[{"topic":"t","data":"` + strings.Repeat("x", 100000) + `"}` +
		strings.Repeat(`,{"topic":"t","data":"`+strings.Repeat("x", 100000)+`"}`, 99) + `]}`
	if status, _, body := g.MgmtDo(t, "POST", "/@batch", strings.NewReader(batch), bearer); status != http.StatusOK {
		t.Fatalf("a %d-byte batch: %d %q", len(batch), status, body)
	}
}

// TestMgmtTimeouts checks that the management server closes connections that
// stall: a request whose headers or body stop coming (management.read_timeout)
// and a keep-alive connection left idle (management.idle_timeout). The
// timeouts are small here; the test asserts that the connection is closed,
// not when.
func TestMgmtTimeouts(t *testing.T) {
	g := gt.Start(t, `
management:
  read_timeout: 200ms
  idle_timeout: 200ms
  auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}
`)
	t.Run("stalled body", func(t *testing.T) {
		c := rawMgmt(t, g, "POST /@connections/AAAAAAAAAAAAAAA%3D HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+gt.TestToken+
			"\r\nContent-Length: 100\r\n\r\nonly ten b")
		expectClosed(t, bufio.NewReader(c))
	})
	t.Run("stalled headers", func(t *testing.T) {
		c := rawMgmt(t, g, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		expectClosed(t, bufio.NewReader(c))
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := rawMgmt(t, g, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		if resp := readResponse(t, c, br); resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("healthz: %s close=%v, want 200 keeping the connection", resp.Status, resp.Close)
		}
		expectClosed(t, br)
	})
}

// TestMgmtHeaderLimit checks that request headers are bounded.
func TestMgmtHeaderLimit(t *testing.T) {
	g := gt.Start(t, "")
	c := rawMgmt(t, g, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 100<<10)+"\r\n\r\n")
	if resp := readResponse(t, c, bufio.NewReader(c)); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KiB of headers: %s, want 431", resp.Status)
	}
}

// TestMgmtPprof checks that management.pprof reaches the management API:
// with it, an authenticated call reads the goroutine profile and a call
// without credentials gets the 403 every call gets; without it, the path
// is unknown.
func TestMgmtPprof(t *testing.T) {
	bearer := http.Header{"Authorization": {"Bearer " + gt.TestToken}}
	on := gt.Start(t, sigv4AndBearerConfig+"  pprof: true\n")
	status, _, body := on.MgmtDo(t, "GET", "/debug/pprof/goroutine?debug=1", nil, bearer)
	if status != http.StatusOK || !strings.HasPrefix(body, "goroutine profile: total ") {
		t.Errorf("pprof on, authenticated: %d %.100q", status, body)
	}
	if status, _, body := on.MgmtDo(t, "GET", "/debug/pprof/goroutine?debug=1", nil, nil); status != http.StatusForbidden {
		t.Errorf("pprof on, no credentials: %d %.100q, want 403", status, body)
	}
	off := gt.Start(t, sigv4AndBearerConfig)
	if status, _, body := off.MgmtDo(t, "GET", "/debug/pprof/goroutine?debug=1", nil, bearer); status != http.StatusNotFound {
		t.Errorf("pprof off, authenticated: %d %.100q, want 404", status, body)
	}
}
