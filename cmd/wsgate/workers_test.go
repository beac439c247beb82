package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// TestServeWorkers runs `wsgate serve -workers 3` on Redis: three processes
// share the client and management ports, connections land on several of
// them, and a push through the shared management port reaches every
// client whichever process holds it.
func TestServeWorkers(t *testing.T) {
	b := gt.NewBackend(t)
	p, ports, _ := startWorkers(t, b, 3)
	mgmtURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	const clients = 30
	var cs []*gt.Client
	for i := range clients {
		c := gt.Dial(t, fmt.Sprintf("ws://127.0.0.1:%d/", ports[0]), nil)
		c.ID = b.ConnectionID(t, "/connect", i)
		cs = append(cs, c)
	}
	for _, c := range cs {
		msg := "to " + c.ID
		resp, err := fresh.Post(mgmtURL+"/@connections/"+url.PathEscape(c.ID), "text/plain", strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST to %s through the shared port: %s", c.ID, resp.Status)
		}
		if got := c.NextText(); got != msg {
			t.Fatalf("%s got %q", c.ID, got)
		}
	}
	if n := strings.Count(p.stderr.String(), "wsgate listening"); n != 3 {
		t.Fatalf("%d workers listening, want 3", n)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		c.ExpectClose(1001)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	if n := strings.Count(p.stderr.String(), "msg=stopped"); n != 3 {
		t.Fatalf("%d workers stopped cleanly, want 3\n%s", n, p.stderr)
	}
}

// startWorkers runs `wsgate serve -workers n` with workersConfig and waits
// until n workers answer on the shared management port. It returns the
// supervisor, the client and management ports and the workers' node ids.
func startWorkers(t *testing.T, b *gt.Backend, n int) (*process, []int, map[string]bool) {
	t.Helper()
	dir, ports := workersConfig(t, b)
	p := startWsgate(t, dir, "serve", "-c", "wsgate.yaml", "-workers", strconv.Itoa(n))
	mgmtURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	nodes := map[string]bool{}
	gt.Eventually(t, func() bool {
		if p.exited() {
			t.Fatalf("wsgate exited\nstderr:\n%s", p.stderr)
		}
		nodes[readyNode(mgmtURL)] = true
		delete(nodes, "")
		return len(nodes) == n
	}, "%d workers answering on the shared management port", n)
	return p, ports, nodes
}

// workersConfig writes a config for workers on Redis in a new directory
// and returns the directory and its client and management ports.
func workersConfig(t *testing.T, b *gt.Backend) (string, []int) {
	t.Helper()
	redis := servicetest.Redis(t)
	ports := freePorts(t, 2)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
routes:
  $connect: {integration: {type: http, url: %q}}
  $disconnect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock}, route_response: true}
management:
  listen: "127.0.0.1:%d"
registry:
  type: redis
  redis: {url: %q}
  prefix: workers
  heartbeat_interval: 100ms
  node_timeout: 1s
`, ports[0], b.URLFor("/connect"), b.URLFor("/disconnect"), ports[1], redis.URL())
	if err := os.WriteFile(filepath.Join(dir, "wsgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, ports
}

// readyNode asks the management port's /readyz over a new TCP connection,
// so that the kernel picks a worker, and returns the node id that
// answered, or "" when none did.
func readyNode(mgmtURL string) string {
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := fresh.Get(mgmtURL + "/readyz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var body struct{ Status, NodeID string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return ""
	}
	return body.NodeID
}

// TestServeWorkersRestartCrashed: a worker killed with SIGKILL is started
// again, and the new process serves on the shared ports.
func TestServeWorkersRestartCrashed(t *testing.T) {
	b := gt.NewBackend(t)
	p, ports, before := startWorkers(t, b, 2)
	mgmtURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	victim := workerPIDs(t, p, 2)[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, func() bool {
		if p.exited() {
			t.Fatalf("the supervisor exited when a worker was killed\nstderr:\n%s", p.stderr)
		}
		n := readyNode(mgmtURL)
		return n != "" && !before[n]
	}, "a new worker answering in place of the killed one")
	if !strings.Contains(p.stderr.String(), "worker exited; restarting it") {
		t.Fatalf("no restart logged:\n%s", p.stderr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
}

// workerPIDs returns the process ids of the supervisor's n workers.
func workerPIDs(t *testing.T, p *process, n int) []int {
	t.Helper()
	// Each thread of the supervisor lists the children it forked.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p.cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("cannot list the supervisor's threads: %v", err)
	}
	var pids []int
	for _, f := range tasks {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, field := range strings.Fields(string(raw)) {
			pid, err := strconv.Atoi(field)
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
	}
	if len(pids) != n {
		t.Fatalf("supervisor has children %v, want %d workers", pids, n)
	}
	return pids
}

// TestServeWorkersSIGHUP: SIGHUP reloads every worker of `serve -workers`,
// whether it reaches the supervisor alone (which passes it on) or, as when
// a terminal hangs up, every process at once: no client is closed, and each
// client's next message, whichever worker holds it, is answered by the new
// configuration.
func TestServeWorkersSIGHUP(t *testing.T) {
	for _, target := range []string{"supervisor", "every process"} {
		t.Run(target, func(t *testing.T) {
			b := gt.NewBackend(t)
			dir, ports := workersConfig(t, b)
			p := startWsgate(t, dir, "serve", "-c", "wsgate.yaml", "-workers", "2")
			mgmtURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
			nodes := map[string]bool{}
			gt.Eventually(t, func() bool {
				if p.exited() {
					t.Fatalf("wsgate exited\nstderr:\n%s", p.stderr)
				}
				nodes[readyNode(mgmtURL)] = true
				delete(nodes, "")
				return len(nodes) == 2
			}, "2 workers answering on the shared management port")
			var cs []*gt.Client
			for i := range 8 {
				c := gt.Dial(t, fmt.Sprintf("ws://127.0.0.1:%d/", ports[0]), nil)
				c.ID = b.ConnectionID(t, "/connect", i)
				c.Send("before")
				if got := c.NextText(); got != "before" {
					t.Fatalf("echo %q", got)
				}
				cs = append(cs, c)
			}
			cfg, err := os.ReadFile(filepath.Join(dir, "wsgate.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			changed := strings.Replace(string(cfg), "$default: {integration: {type: mock}, route_response: true}",
				`$default: {integration: {type: mock, body: "reloaded"}, route_response: true}`, 1)
			if changed == string(cfg) {
				t.Fatal("the test's config has no $default mock route to change")
			}
			if err := os.WriteFile(filepath.Join(dir, "wsgate.yaml"), []byte(changed), 0o600); err != nil {
				t.Fatal(err)
			}
			pids := []int{p.cmd.Process.Pid}
			if target == "every process" {
				pids = append(workerPIDs(t, p, 2), pids...)
			}
			for _, pid := range pids {
				if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
			}
			gt.Eventually(t, func() bool {
				if p.exited() {
					t.Fatalf("wsgate exited after SIGHUP\nstderr:\n%s", p.stderr)
				}
				logs := p.stderr.String()
				return strings.Contains(logs, "configuration reloaded") && reloadedWorkers(logs) == 2
			}, "both workers to log their reload")
			for _, c := range cs {
				c.Send("after")
				if got := c.NextText(); got != "reloaded" {
					t.Fatalf("%s: answer %q after the reload, want the new configuration's", c.ID, got)
				}
			}
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				c.ExpectClose(1001)
			}
			if code := p.wait(t); code != 0 {
				t.Fatalf("exit status %d, want 0", code)
			}
		})
	}
}

// reloadedWorkers counts the workers that logged an applied reload.
func reloadedWorkers(logs string) int {
	seen := map[string]bool{}
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "configuration reloaded") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "worker=") {
				seen[f] = true
			}
		}
	}
	return len(seen)
}

// TestServeWorkersNeedSharedRegistry: several processes with the memory
// registry would each see only their own connections.
func TestServeWorkersNeedSharedRegistry(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "wsgate.yaml"), []byte("listen: \"127.0.0.1:1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runWsgate(t, dir, "serve", "-c", "wsgate.yaml", "-workers", "2")
	if code != 2 || !strings.Contains(stderr, "registry.type redis or nats") {
		t.Fatalf("exit %d, stderr %q; want 2 and a message naming the registry", code, stderr)
	}
	code, _, stderr = runWsgate(t, dir, "serve", "-workers", "0")
	if code != 2 || !strings.Contains(stderr, "-workers must be at least 1") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestServeWorkersPortTaken: workers that cannot start (their port is held
// by a process that does not share it) stop the supervisor with an error
// instead of being restarted forever.
func TestServeWorkersPortTaken(t *testing.T) {
	b := gt.NewBackend(t)
	dir, ports := workersConfig(t, b)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, stderr := runWsgate(t, dir, "serve", "-c", "wsgate.yaml", "-workers", "2")
	if code != 1 || !strings.Contains(stderr, "exited while starting") || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("exit %d, stderr:\n%s\nwant 1, the worker's bind error and the supervisor's", code, stderr)
	}
}
