package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// startAccessLogged runs `wsgate serve` with an access log to output and
// returns the process, its client URL and its management URL.
func startAccessLogged(t *testing.T, output string) (*process, string, string) {
	t.Helper()
	ports := freePorts(t, 2)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
management:
  listen: "127.0.0.1:%d"
access_log:
  format: "$context.eventType $context.routeKey $context.status $context.connectionId"
  output: %s
`, ports[0], ports[1], output)
	if err := os.WriteFile(filepath.Join(dir, "wsgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startWsgate(t, dir, "serve", "-c", "wsgate.yaml")
	mgmtURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	waitReady(t, p, mgmtURL)
	return p, fmt.Sprintf("ws://127.0.0.1:%d/", ports[0]), mgmtURL
}

func fileHas(path, s string) bool {
	data, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(data), s)
}

// TestServeAccessLogReopenOnSIGUSR1: after logrotate moves the file and
// sends SIGUSR1, the lines go to a new file by the configured name, and the
// process goes on serving.
func TestServeAccessLogReopenOnSIGUSR1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	p, url, _ := startAccessLogged(t, path)
	c := gt.Dial(t, url, nil)
	c.Send("one")
	c.NextText()
	gt.Eventually(t, func() bool { return fileHas(path, "MESSAGE $default 200") }, "the first message's line")

	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, func() bool { return strings.Contains(p.stderr.String(), "access log reopened") }, "the reopen")
	if p.exited() {
		t.Fatal("wsgate exited on SIGUSR1")
	}
	c.Send("two")
	c.NextText()
	gt.Eventually(t, func() bool { return fileHas(path, "MESSAGE $default 200") }, "the second message's line in the new file")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.ExpectClose(1001)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	old, err := os.ReadFile(rotated)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(old), "MESSAGE"); n != 1 || !strings.Contains(string(old), "CONNECT $connect 200 ") {
		t.Errorf("the rotated file holds:\n%s", old)
	}
	// Every line was written before the process exited, the DISCONNECT of
	// the shutdown included.
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cur), "MESSAGE $default 200") || !strings.Contains(string(cur), "DISCONNECT $disconnect 200 ") {
		t.Errorf("the new file holds:\n%s", cur)
	}
}

// TestServeAccessLogStdout: with output stdout the lines go to standard
// output, and the server's own log stays on standard error.
func TestServeAccessLogStdout(t *testing.T) {
	p, url, _ := startAccessLogged(t, "stdout")
	c := gt.Dial(t, url, nil)
	c.Send("hello")
	c.NextText()
	gt.Eventually(t, func() bool { return strings.Contains(p.stdout.String(), "MESSAGE $default 200 ") }, "the message's line on stdout")
	out := p.stdout.String()
	if !strings.Contains(out, "CONNECT $connect 200 ") || !strings.Contains(out, "MANAGEMENT Health 200 -") {
		t.Errorf("stdout:\n%s", out)
	}
	if strings.Contains(out, "level=") || strings.Contains(p.stderr.String(), "MESSAGE $default") {
		t.Errorf("the server log and the access log are mixed:\nstdout:\n%s\nstderr:\n%s", out, p.stderr)
	}
	// SIGUSR1 with standard output neither kills nor disturbs the process.
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, func() bool { return strings.Contains(p.stderr.String(), "access log reopened") }, "the signal handled")
	c.Send("again")
	c.NextText()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}
