package gateway_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// buildLambda compiles a function under internal/integration/testdata.
func buildLambda(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, "../integration/testdata/"+name).CombinedOutput()
	if err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	return bin
}

func TestLambdaRoutes(t *testing.T) {
	fn := buildLambda(t, "echofn")
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $connect:
    integration: {type: lambda, lambda: {command: %q, concurrency: 1}}
  $default:
    integration: {type: lambda, lambda: {command: %q}}
    route_response: true
`, fn, fn))

	c := gt.Dial(t, g.URL, nil)
	c.Send("hello lambda")
	if got := c.NextText(); got != "hello lambda" {
		t.Fatalf("echo = %q", got)
	}
	c.Send("fail")
	if got := c.NextText(); !strings.Contains(got, `"message": "Internal server error"`) {
		t.Fatalf("function error frame = %q, want AWS's Internal server error frame", got)
	}
	c.Send("crash")
	if got := c.NextText(); !strings.Contains(got, `"message": "Internal server error"`) {
		t.Fatalf("crash frame = %q, want AWS's Internal server error frame", got)
	}
	c.Send("after the crash")
	if got := c.NextText(); got != "after the crash" {
		t.Fatalf("echo after a crash = %q", got)
	}

	if got := dialStatus(g.URL+"?do=forbid", nil); got != 403 {
		t.Fatalf("$connect answering statusCode 403: handshake %d, want 403", got)
	}
	if got := dialStatus(g.URL+"?do=fail", nil); got != 502 {
		t.Fatalf("$connect function error: handshake %d, want 502", got)
	}
	if got := dialStatus(g.URL+"?do=null", nil); got != 101 {
		t.Fatalf("$connect returning null: handshake %d, want 101", got)
	}
}

func TestLambdaAuthorizer(t *testing.T) {
	fn := buildLambda(t, "authfn")
	g := gt.Start(t, fmt.Sprintf(`
authorizer:
  type: lambda
  identity_sources: [route.request.querystring.Auth]
  lambda: {command: %q}
routes:
  $default:
    integration: {type: mock}
    route_response: true
`, fn))
	tests := []struct {
		query string
		want  int
	}{
		{"?Auth=allow", 101},
		{"?Auth=deny", 403},
		{"?Auth=other", 401},
		{"", 401},
	}
	for _, tt := range tests {
		if got := dialStatus(g.URL+tt.query, nil); got != tt.want {
			t.Errorf("%q: handshake %d, want %d", tt.query, got, tt.want)
		}
	}
}
