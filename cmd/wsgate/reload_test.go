package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestServeReload: SIGHUP to `wsgate serve` reloads its configuration
// file without closing the open connection; a configuration that fails
// validation or changes the listener is refused, with its line in the log
// and in the answer of POST /reload, and the running one is kept; SIGTERM
// still stops gracefully.
func TestServeReload(t *testing.T) {
	ports := freePorts(t, 3)
	dir := t.TempDir()
	write := func(body, listen string) {
		t.Helper()
		cfg := fmt.Sprintf(`listen: %q
routes:
  $default: {integration: {type: mock, body: %q}, route_response: true}
management:
  listen: "127.0.0.1:%d"
  auth: {bearer_tokens_file: tokens}
`, listen, body, ports[1])
		if err := os.WriteFile(filepath.Join(dir, "wsgate.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", ports[0])
	write("A", listen)
	p := startWsgate(t, dir, "serve", "-c", "wsgate.yaml")
	mgmtURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	waitReady(t, p, mgmtURL)
	c := gt.Dial(t, "ws://"+listen+"/", nil)
	c.Send("x")
	if got := c.NextText(); got != "A" {
		t.Fatalf("before the reload: %q", got)
	}

	write("B", listen)
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte("second-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, func() bool { return strings.Contains(p.stderr.String(), "configuration reloaded") },
		"the reload to be logged")
	c.Send("x")
	if got := c.NextText(); got != "B" {
		t.Fatalf("after SIGHUP: %q", got)
	}
	reload := func(token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", mgmtURL+"/reload", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// The token file was read again.
	if code, body := reload("first-token"); code != http.StatusForbidden {
		t.Fatalf("POST /reload with the old token: %d %s", code, body)
	}

	// Line 3 is invalid.
	if err := os.WriteFile(filepath.Join(dir, "wsgate.yaml"), []byte(fmt.Sprintf(`listen: %q
routes:
  $default: {integration: {type: http, url: "not a url"}}
management:
  listen: "127.0.0.1:%d"
  auth: {bearer_tokens_file: tokens}
`, listen, ports[1])), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := reload("second-token")
	var refused struct {
		Message string
		Errors  []string
	}
	if err := json.Unmarshal([]byte(body), &refused); err != nil || code != http.StatusBadRequest ||
		len(refused.Errors) != 1 || !strings.HasPrefix(refused.Errors[0], "wsgate.yaml:3: routes.$default.integration.url: ") {
		t.Fatalf("POST /reload of an invalid config: %d %s", code, body)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, func() bool {
		return strings.Count(p.stderr.String(), "wsgate.yaml:3: routes.$default.integration.url") >= 2
	}, "the refusal of SIGHUP to be logged with its line")

	// The listener cannot move.
	write("C", fmt.Sprintf("127.0.0.1:%d", ports[2]))
	code, body = reload("second-token")
	if code != http.StatusBadRequest || !strings.Contains(body, "wsgate.yaml:1: listen: cannot change while wsgate runs") {
		t.Fatalf("POST /reload moving the listener: %d %s", code, body)
	}
	c.Send("x")
	if got := c.NextText(); got != "B" {
		t.Fatalf("after refused reloads: %q, want the configuration kept", got)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.ExpectClose(1001)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	if logs := p.stderr.String(); strings.Contains(logs, "first-token") || strings.Contains(logs, "second-token") {
		t.Fatal("a management token reached the log")
	}
}
