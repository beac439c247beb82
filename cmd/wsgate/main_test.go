package main_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// bin is the wsgate binary built by TestMain.
var bin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wsgate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "wsgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building wsgate: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left behind: %v\n", err)
			return 1
		}
	}
	return code
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer = gt.LogBuffer

// process is a running wsgate binary. It is killed on cleanup if it is still
// running.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when the process has exited
}

// startWsgate runs the binary with args in dir.
func startWsgate(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("wsgate %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit and returns its exit status, failing
// the test if it does not exit or dies of a signal.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("wsgate did not exit")
	}
	st := p.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("wsgate died of %v instead of exiting", ws.Signal())
	}
	return st.ExitCode()
}

// runWsgate runs the binary to completion.
func runWsgate(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startWsgate(t, dir, args...)
	code = p.wait(t)
	return code, p.stdout.String(), p.stderr.String()
}

// freePorts returns n distinct ports on 127.0.0.1 that were free a moment
// ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		p, err := servicetest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, p)
	}
	return ports
}

// waitReady polls the management API's health check until it answers,
// failing the test if the process exits first.
func waitReady(t *testing.T, p *process, mgmtURL string) {
	t.Helper()
	gt.Eventually(t, func() bool {
		if p.exited() {
			t.Fatalf("wsgate exited before it was ready\nstderr:\n%s", p.stderr)
		}
		resp, err := http.Get(mgmtURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "wsgate to answer %s/healthz", mgmtURL)
}

func TestServeGracefulShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			b := gt.NewBackend(t)
			ports := freePorts(t, 2)
			dir := t.TempDir()
			cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
routes:
  $connect: {integration: {type: http, url: %q}}
  $disconnect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock}, route_response: true}
management:
  listen: "127.0.0.1:%d"
log: {level: debug}
`, ports[0], b.URLFor("/connect"), b.URLFor("/disconnect"), ports[1])
			if err := os.WriteFile(filepath.Join(dir, "wsgate.yaml"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			p := startWsgate(t, dir, "serve", "-c", "wsgate.yaml")
			mgmtURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
			waitReady(t, p, mgmtURL)

			c := gt.Dial(t, fmt.Sprintf("ws://127.0.0.1:%d/", ports[0]), nil)
			c.Send("echo me")
			if got := c.NextText(); got != "echo me" {
				t.Fatalf("echo %q", got)
			}
			id := b.ConnectionID(t, "/connect", 0)
			resp, err := http.Post(mgmtURL+"/@connections/"+strings.ReplaceAll(id, "=", "%3D"), "text/plain", strings.NewReader("pushed"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST @connections: %s", resp.Status)
			}
			if got := c.NextText(); got != "pushed" {
				t.Fatalf("pushed message %q", got)
			}

			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			c.ExpectClose(1001)
			if code := p.wait(t); code != 0 {
				t.Fatalf("exit status %d after %v, want 0", code, sig)
			}
			// The $disconnect event was delivered before the process exited.
			evs := b.Events("/disconnect")
			if len(evs) != 1 {
				t.Fatalf("%d $disconnect events at exit, want 1", len(evs))
			}
			rc := evs[0].RequestContext
			if rc.ConnectionID != id || rc.EventType != "DISCONNECT" || rc.RouteKey != "$disconnect" || rc.DisconnectStatusCode != 1001 {
				t.Fatalf("$disconnect event: connectionId=%q eventType=%q routeKey=%q disconnectStatusCode=%d",
					rc.ConnectionID, rc.EventType, rc.RouteKey, rc.DisconnectStatusCode)
			}
		})
	}
}

// TestServeEmbeddedDefault runs `wsgate serve` without a config, as a first
// run would, on the embedded default's fixed ports.
func TestServeEmbeddedDefault(t *testing.T) {
	for _, addr := range []string{":8080", "127.0.0.1:9090"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("the embedded default listens on :8080 and 127.0.0.1:9090, and %s is not free here: %v", addr, err)
		}
		ln.Close()
	}
	p := startWsgate(t, t.TempDir(), "serve")
	waitReady(t, p, "http://127.0.0.1:9090")
	c := gt.Dial(t, "ws://127.0.0.1:8080/", nil)
	c.Send(`{"action":"anything"}`)
	if got := c.NextText(); got != `{"action":"anything"}` {
		t.Fatalf("echo %q", got)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.ExpectClose(1001)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
}

func TestServeBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := `listen: "127.0.0.1:0"
colour: blue
shutdown_timeout: soon
routes:
  $default:
    integration: {type: http, url: "not a url"}
`
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runWsgate(t, dir, "serve", "-c", "bad.yaml")
	if code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	for _, want := range []string{
		`bad.yaml:2: unknown key "colour"`,
		`bad.yaml:3: shutdown_timeout: `,
		`bad.yaml:6: routes.$default.integration.url: `,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not report %q", want)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

func TestServeMissingConfig(t *testing.T) {
	code, _, stderr := runWsgate(t, t.TempDir(), "serve", "-c", "missing.yaml")
	if code != 1 || !strings.Contains(stderr, "missing.yaml") {
		t.Fatalf("exit status %d, stderr %q", code, stderr)
	}
}

func TestServePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ports := freePorts(t, 1)
	dir := t.TempDir()
	cfg := fmt.Sprintf("listen: %q\nmanagement: {listen: \"127.0.0.1:%d\"}\n", ln.Addr().String(), ports[0])
	if err := os.WriteFile(filepath.Join(dir, "wsgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runWsgate(t, dir, "serve", "-c", "wsgate.yaml")
	if code != 1 || !strings.Contains(stderr, "listen "+ln.Addr().String()) {
		t.Fatalf("exit status %d, stderr %q", code, stderr)
	}
}

func TestVersionAndUsage(t *testing.T) {
	code, stdout, _ := runWsgate(t, t.TempDir(), "version")
	if code != 0 || !regexp.MustCompile(`^wsgate \S+\n$`).MatchString(stdout) {
		t.Fatalf("version: exit status %d, stdout %q", code, stdout)
	}
	code, _, stderr := runWsgate(t, t.TempDir())
	if code != 2 || !strings.Contains(stderr, "Usage:") {
		t.Fatalf("no arguments: exit status %d, stderr %q", code, stderr)
	}
}

func TestValidate(t *testing.T) {
	code, stdout, _ := runWsgate(t, t.TempDir(), "validate")
	if code != 0 || stdout != "embedded default config: ok\n" {
		t.Fatalf("exit status %d, stdout %q", code, stdout)
	}
}
