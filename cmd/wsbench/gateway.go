//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// gatewayProc is one wsgate process started by wsbench. Its stdout and
// stderr go to a log file in the work directory.
type gatewayProc struct {
	index  int
	cmd    *exec.Cmd
	config string
	log    string
	addr   string // client listener

	done     chan struct{} // closed when the process has exited
	waitErr  error         // set before done is closed
	exitedAt time.Time     // set before done is closed
	logFile  *os.File
}

// gatewayConfig is the config wsbench writes for its i-th gateway: the
// defaults, loopback listeners on consecutive ports, log level logLevel, a
// custom route "x" next to $default, both mock integrations that echo, and,
// when jwtEnv is set, a jwt authorizer whose HMAC secret is in the
// environment variable jwtEnv. With connectURL set, $connect is an http
// integration POSTing the event to that URL. With registry set (a
// registrySection), the processes share it. routeX, when set, is route x's
// integration mapping in place of the mock (backendIntegration), and pprof
// turns on management.pprof, with the management API behind the bearer
// token in environment variable mgmtTokenEnv (a gateway running local
// functions requires authentication there).
func gatewayConfig(i int, listen, mgmt, logLevel, jwtEnv, connectURL, registry, routeX string, pprof bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by wsbench for gateway process %d. Everything not set here is the
# embedded default (wsgate default-config).
listen: %q
management:
  listen: %q
  pprof: %t
`, i, listen, mgmt, pprof)
	if pprof {
		fmt.Fprintf(&b, "  auth:\n    bearer_tokens_env: %s\n", mgmtTokenEnv)
	}
	fmt.Fprintf(&b, "log:\n  level: %s\n", logLevel)
	b.WriteString(registry)
	if jwtEnv != "" {
		fmt.Fprintf(&b, `authorizer:
  type: jwt
  jwt:
    secret_env: %s
    algorithms: [HS256]
`, jwtEnv)
	}
	b.WriteString("routes:\n")
	if connectURL != "" {
		fmt.Fprintf(&b, `  $connect:
    integration:
      type: http
      url: %q
      timeout: 10s
`, connectURL)
	}
	b.WriteString(`  $default:
    integration:
      type: mock
    route_response: true
  x:
    route_response: true
    integration:
`)
	if routeX == "" {
		routeX = "      type: mock\n"
	}
	b.WriteString(routeX)
	return b.String()
}

// mgmtTokenEnv is the environment variable holding the management API's
// bearer token in the configs wsbench writes with pprof on.
const mgmtTokenEnv = "WSBENCH_MGMT_TOKEN"

// registrySection is the registry section of the configs wsbench writes
// for the shared registry at rawURL, or "" for none.
func registrySection(rawURL string) (string, error) {
	if rawURL == "" {
		return "", nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("-registry %q: not a redis:// or nats:// URL", rawURL)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("-registry %q: must be on loopback", rawURL)
	}
	switch u.Scheme {
	case "redis":
		return fmt.Sprintf("registry:\n  type: redis\n  redis: {url: %q}\n  prefix: wsbench\n", rawURL), nil
	case "nats":
		return fmt.Sprintf("registry:\n  type: nats\n  nats: {url: %q}\n  prefix: wsbench\n", rawURL), nil
	}
	return "", fmt.Errorf("-registry %q: the scheme must be redis or nats", rawURL)
}

// checkPortFree fails if something already listens on addr, so that
// wsbench never measures a process it did not start.
func checkPortFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is not free (another gateway running?): %w", addr, err)
	}
	return ln.Close()
}

// startGateways starts the gateway processes of o and waits until each
// accepts TCP connections. On error, the processes already started are
// stopped.
func startGateways(ctx context.Context, o *commonOptions, workdir string) ([]*gatewayProc, error) {
	bin, err := filepath.Abs(o.gateway)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("-gateway: %w", err)
	}
	var procs []*gatewayProc
	fail := func(err error) ([]*gatewayProc, error) {
		stopGateways(procs, 5*time.Second)
		return nil, err
	}
	reg, err := registrySection(o.registry)
	if err != nil {
		return nil, err
	}
	var tlsText string
	if o.tls && o.config == "" {
		cert, key, err := writeCertificate(workdir)
		if err != nil {
			return nil, fmt.Errorf("-tls: %w", err)
		}
		tlsText = tlsSection(cert, key)
	}
	for i, t := range o.targets {
		g := &gatewayProc{index: i, addr: t.Addr, done: make(chan struct{})}
		if err := checkPortFree(t.Addr); err != nil {
			return fail(err)
		}
		if o.config != "" {
			g.config, err = filepath.Abs(o.config)
			if err != nil {
				return fail(err)
			}
		} else {
			mgmt := fmt.Sprintf("127.0.0.1:%d", o.mgmtPort+i)
			if err := checkPortFree(mgmt); err != nil {
				return fail(err)
			}
			g.config = filepath.Join(workdir, fmt.Sprintf("gateway-%d.yaml", i))
			text := gatewayConfig(i, t.Addr, mgmt, o.logLevel, o.jwtEnv, o.connectURL, reg, o.routeX, o.pprof)
			if o.configFor != nil {
				text = o.configFor(i, t.Addr, mgmt)
			}
			text += tlsText
			if err := os.WriteFile(g.config, []byte(text), 0o644); err != nil {
				return fail(err)
			}
		}
		g.log = filepath.Join(workdir, fmt.Sprintf("gateway-%d.log", i))
		g.logFile, err = os.Create(g.log)
		if err != nil {
			return fail(err)
		}
		g.cmd = exec.Command(bin, "serve", "-c", g.config)
		g.cmd.Stdout, g.cmd.Stderr = g.logFile, g.logFile
		g.cmd.Env = append(os.Environ(), o.env...)
		if o.gctrace {
			g.cmd.Env = withGCTrace(g.cmd.Env)
		}
		// The gateway is stopped by wsbench; should wsbench die first, the
		// kernel sends it SIGTERM.
		g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := g.cmd.Start(); err != nil {
			_ = g.logFile.Close()
			return fail(fmt.Errorf("start gateway %d: %w", i, err))
		}
		procs = append(procs, g)
		go func() {
			g.waitErr = g.cmd.Wait()
			g.exitedAt = time.Now()
			_ = g.logFile.Close()
			close(g.done)
		}()
	}
	for _, g := range procs {
		if err := g.waitListening(ctx, 15*time.Second); err != nil {
			return fail(err)
		}
	}
	// A cluster node refuses connections until it has reached its engine;
	// wait for every node's readiness before measuring.
	if o.registry != "" && o.config == "" {
		for i, g := range procs {
			if err := g.waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", o.mgmtPort+i), 15*time.Second); err != nil {
				return fail(err)
			}
		}
	}
	return procs, nil
}

func (g *gatewayProc) pid() int { return g.cmd.Process.Pid }

// exited returns an error describing the exit when the process has ended,
// and nil while it runs.
func (g *gatewayProc) exited() error {
	select {
	case <-g.done:
		return fmt.Errorf("gateway %d (pid %d) exited: %v; last log lines:\n%s", g.index, g.pid(), exitText(g.waitErr), g.tail(20))
	default:
		return nil
	}
}

func (g *gatewayProc) waitListening(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := g.exited(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", g.addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway %d does not accept on %s after %s: %w", g.index, g.addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitReady polls the management API's readiness URL until it answers 200.
func (g *gatewayProc) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		if err := g.exited(); err != nil {
			return err
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				client.CloseIdleConnections()
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway %d not ready at %s after %s: %w; last log lines:\n%s", g.index, url, timeout, err, g.tail(10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopResult is how a gateway process ended when wsbench stopped it.
type stopResult struct {
	Took    time.Duration // from SIGTERM to exit
	Err     error         // from Wait
	Killed  bool          // it did not exit within the timeout and was killed
	Already bool          // it had exited before
}

// stopGateways sends SIGTERM to every process, waits for them to exit up
// to timeout, and kills the ones still running.
func stopGateways(procs []*gatewayProc, timeout time.Duration) []stopResult {
	res := make([]stopResult, len(procs))
	start := time.Now()
	for i, g := range procs {
		select {
		case <-g.done:
			res[i].Already = true
		default:
			_ = g.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	expired := false
	for i, g := range procs {
		if !expired {
			select {
			case <-g.done:
			case <-timer.C:
				expired = true
			}
		}
		if expired {
			select {
			case <-g.done:
			default:
				_ = g.cmd.Process.Kill()
				res[i].Killed = true
				<-g.done
			}
		}
		res[i].Err = g.waitErr
		if !res[i].Already {
			res[i].Took = g.exitedAt.Sub(start)
		}
	}
	return res
}

// tail returns the last n lines of the gateway's log.
func (g *gatewayProc) tail(n int) string {
	b, err := os.ReadFile(g.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// logProblems returns the number of WARN and ERROR lines in the log (and
// lines that look like a panic) and up to max of them.
func (g *gatewayProc) logProblems(max int) (int, []string, error) {
	f, err := os.Open(g.log)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	n := 0
	var first []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") ||
			strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) ||
			strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
			n++
			if len(first) < max {
				first = append(first, line)
			}
		}
	}
	return n, first, sc.Err()
}

// withGCTrace returns env with gctrace=1 added to GODEBUG.
func withGCTrace(env []string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			found = true
			if v != "" {
				v += ","
			}
			kv = "GODEBUG=" + v + "gctrace=1"
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG=gctrace=1")
	}
	return out
}

// lastGC returns the last gctrace line of the log ("gc 12 @3.4s ...: 40->41->20 MB, ..."),
// or "" when there is none.
func (g *gatewayProc) lastGC() string {
	f, err := os.Open(g.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	last := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "gc ") {
			last = sc.Text()
		}
	}
	return last
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
	}
	return err.Error()
}
