package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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
	redis := servicetest.Redis(t)
	b := gt.NewBackend(t)
	ports := freePorts(t, 2)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
routes:
  $connect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock}, route_response: true}
management:
  listen: "127.0.0.1:%d"
registry:
  type: redis
  redis: {url: %q}
  prefix: workers
  heartbeat_interval: 100ms
  node_timeout: 1s
`, ports[0], b.URLFor("/connect"), ports[1], redis.URL())
	if err := os.WriteFile(filepath.Join(dir, "wsgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startWsgate(t, dir, "serve", "-c", "wsgate.yaml", "-workers", "3")
	mgmtURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	// A new TCP connection per request lets the kernel pick a worker each
	// time.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	nodes := map[string]bool{}
	gt.Eventually(t, func() bool {
		if p.exited() {
			t.Fatalf("wsgate exited\nstderr:\n%s", p.stderr)
		}
		resp, err := fresh.Get(mgmtURL + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct{ Status, NodeID string }
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
			return false
		}
		nodes[body.NodeID] = true
		return len(nodes) == 3
	}, "three workers answering on the shared management port")

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
