package cli_test

import (
	"fmt"
	"strings"
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestConnectDoesNotShowURLPassword: a password in the URL's user info is
// a secret; neither the dial error nor the "connected to" line shows it.
func TestConnectDoesNotShowURLPassword(t *testing.T) {
	port := freePorts(t, 1)[0]
	r := run(t, nil, "connect", fmt.Sprintf("ws://alice:s3cretpw@127.0.0.1:%d/", port))
	if r.code != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Fatalf("want exit 1 with the dial error, got %v", r)
	}
	if strings.Contains(r.stderr, "s3cretpw") {
		t.Fatalf("the dial error shows the URL's password: %s", r.stderr)
	}

	g := gt.Start(t, "")
	u := strings.Replace(g.URL, "ws://", "ws://alice:s3cretpw@", 1)
	r = run(t, strings.NewReader("hi\n"), "connect", u)
	if r.code != 0 || !strings.Contains(r.stderr, "connected to") {
		t.Fatalf("want a connection, got %v", r)
	}
	if strings.Contains(r.stderr, "s3cretpw") {
		t.Fatalf("the connected line shows the URL's password: %s", r.stderr)
	}
}

// TestConnectMalformedURLDoesNotShowToken: a URL that does not parse is
// still not printed with its token.
func TestConnectMalformedURLDoesNotShowToken(t *testing.T) {
	r := run(t, nil, "connect", "ws://[::1/?access_token=s3cret")
	if r.code == 0 || r.stderr == "" {
		t.Fatalf("want a failure with a message, got %v", r)
	}
	if strings.Contains(r.stderr, "s3cret") {
		t.Fatalf("the error shows the token: %s", r.stderr)
	}
}

// TestPostMalformedEndpointDoesNotShowPassword: a malformed -endpoint is a
// usage error whose message does not repeat the password it holds.
func TestPostMalformedEndpointDoesNotShowPassword(t *testing.T) {
	r := run(t, nil, "post", "-endpoint", "http://ops:s3cretpw@[::1", "id", "msg")
	if r.code != 2 || !strings.Contains(r.stderr, "bad endpoint") {
		t.Fatalf("want a usage error about the endpoint, got %v", r)
	}
	if strings.Contains(r.stderr, "s3cretpw") {
		t.Fatalf("the error shows the endpoint's password: %s", r.stderr)
	}
}
