package main_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// The secrets the cluster's processes read from their environment.
const (
	clusterJWTSecretEnv = "WSGATE_E2E_JWT_SECRET"
	clusterJWTSecret    = "wsgate-e2e-cluster-jwt-secret-0123456789"
	clusterMgmtTokenEnv = "WSGATE_E2E_MGMT_TOKEN"
	clusterMgmtToken    = "e2e-cluster-mgmt-token"
)

// clusterNodeTimeout is the registry.node_timeout every node runs with.
const clusterNodeTimeout = 600 * time.Millisecond

// killTimeout bounds how long a node may take to exit after SIGTERM at the
// end of a test before it is killed.
const killTimeout = 15 * time.Second

// engineServer is the cluster engine's server: a redis-server child
// process or an embedded nats-server, which a test can stop and start
// again.
type engineServer interface {
	URL() string
	Stop()
	Start()
}

// gatewayCluster is an engine server, a recording backend and several
// wsgate processes sharing that engine as their registry.
type gatewayCluster struct {
	engine  engineServer
	backend *gt.Backend
	nodes   []*clusterNode
	// http calls the management APIs; its timeout is well above the
	// configured engine timeout (1s), so a call that hangs fails as a
	// transport error instead of passing.
	http *http.Client
}

// clusterNode is one wsgate process of a gatewayCluster.
type clusterNode struct {
	index   int
	proc    *process
	wsURL   string
	mgmtURL string
}

// startGatewayCluster starts redis-server, the backend and n wsgate
// processes, each with its own config file, and waits until every one
// answers GET /readyz with 200. extraYAML is added to every config. All of
// it is stopped by t.Cleanup: the processes with SIGTERM, and SIGKILL if
// they do not exit within killTimeout.
func startGatewayCluster(t *testing.T, n int, extraYAML string) *gatewayCluster {
	t.Helper()
	return startGatewayClusterOn(t, "redis", n, extraYAML)
}

// startGatewayClusterOn is startGatewayCluster on the engine kind names,
// redis or nats.
func startGatewayClusterOn(t *testing.T, kind string, n int, extraYAML string) *gatewayCluster {
	t.Helper()
	var srv engineServer
	switch kind {
	case "redis":
		srv = servicetest.Redis(t)
	case "nats":
		srv = servicetest.NATS(t)
	default:
		t.Fatalf("unknown engine %q", kind)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	c := &gatewayCluster{
		engine:  srv,
		backend: gt.NewBackend(t),
		http:    &http.Client{Timeout: 10 * time.Second, Transport: tr},
	}
	t.Cleanup(tr.CloseIdleConnections)
	// Each test has its own engine server; a random prefix keeps the keys
	// apart anyway, should a test ever share one.
	prefix := "e2e-" + rand.Text()[:12]
	ports := freePorts(t, 2*n)
	for i := range n {
		dir := t.TempDir()
		cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
shutdown_timeout: 5s
authorizer:
  type: jwt
  jwt: {secret_env: %s, algorithms: [HS256], context_claims: [role]}
routes:
  $connect: {integration: {type: http, url: %q}}
  $disconnect: {integration: {type: http, url: %q}}
  $default: {integration: {type: http, url: %q}, route_response: true}
management:
  listen: "127.0.0.1:%d"
  auth: {bearer_tokens_env: %s}
registry:
  type: %s
  %s: {url: %q}
  prefix: %q
  heartbeat_interval: 100ms
  node_timeout: %s
  timeout: 1s
log: {level: info}
%s`, ports[2*i], clusterJWTSecretEnv,
			c.backend.URLFor("/connect"), c.backend.URLFor("/disconnect"), c.backend.URLFor("/default"),
			ports[2*i+1], clusterMgmtTokenEnv, kind, kind, srv.URL(), prefix, clusterNodeTimeout, extraYAML)
		if err := os.WriteFile(filepath.Join(dir, "wsgate.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		nd := &clusterNode{
			index:   i,
			proc:    startClusterProcess(t, i, dir),
			wsURL:   fmt.Sprintf("ws://127.0.0.1:%d/", ports[2*i]),
			mgmtURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		c.waitReadyz(t, nd.index, http.StatusOK)
	}
	return c
}

// startClusterProcess runs `wsgate serve -c wsgate.yaml` in dir with the
// cluster's secrets in its environment.
func startClusterProcess(t *testing.T, index int, dir string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, "serve", "-c", "wsgate.yaml"), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), clusterJWTSecretEnv+"="+clusterJWTSecret, clusterMgmtTokenEnv+"="+clusterMgmtToken)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(killTimeout):
				t.Errorf("node %d did not exit within %v of SIGTERM; killing it", index, killTimeout)
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("node %d (pid %d) stdout:\n%s\nnode %d stderr:\n%s", index, p.cmd.Process.Pid, p.stdout, index, p.stderr)
		}
	})
	return p
}

// waitReadyz polls node i's GET /readyz until it answers status.
func (c *gatewayCluster) waitReadyz(t *testing.T, i int, status int) {
	t.Helper()
	nd := c.nodes[i]
	last := ""
	waitUntil(t, 20*time.Second, func() bool {
		if nd.proc.exited() {
			t.Fatalf("node %d exited\nstderr:\n%s", i, nd.proc.stderr)
		}
		resp, err := c.http.Get(nd.mgmtURL + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		return resp.StatusCode == status
	}, "node %d: GET /readyz answering %d (last answer: %s)", i, status, &last)
}

// waitUntil polls cond every 10ms until it holds, failing the test after
// timeout. Arguments that are *string are printed by their value at the
// time of failure.
func waitUntil(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			for i, a := range args {
				if s, ok := a.(*string); ok {
					args[i] = *s
				}
			}
			t.Fatalf("timed out after %v waiting for "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mgmtResult is a management API answer.
type mgmtResult struct {
	Status  int
	ErrType string // X-Amzn-ErrorType
	Body    string
}

func (r mgmtResult) String() string {
	return fmt.Sprintf("%d %s %s", r.Status, r.ErrType, r.Body)
}

// do calls node i's management API. It is safe for concurrent use and does
// not touch t.
func (c *gatewayCluster) do(i int, method, path, body string) (mgmtResult, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.nodes[i].mgmtURL+path, rd)
	if err != nil {
		return mgmtResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+clusterMgmtToken)
	resp, err := c.http.Do(req)
	if err != nil {
		return mgmtResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return mgmtResult{}, err
	}
	return mgmtResult{resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), string(b)}, nil
}

// call is do that fails the test on a transport error (a refused
// connection, or no answer within the client's timeout).
func (c *gatewayCluster) call(t *testing.T, i int, method, path, body string) mgmtResult {
	t.Helper()
	r, err := c.do(i, method, path, body)
	if err != nil {
		t.Fatalf("node %d: %s %s: %v", i, method, path, err)
	}
	return r
}

// mustCall calls node i and requires status; with out, it decodes the JSON
// answer into it.
func (c *gatewayCluster) mustCall(t *testing.T, i int, method, path, body string, status int, out any) mgmtResult {
	t.Helper()
	r := c.call(t, i, method, path, body)
	if r.Status != status {
		t.Fatalf("node %d: %s %s answered %v, want %d", i, method, path, r, status)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(r.Body), out); err != nil {
			t.Fatalf("node %d: %s %s: %v in %q", i, method, path, err, r.Body)
		}
	}
	return r
}

// connPath is the management path of connection id, with = escaped as the
// AWS SDK escapes it.
func connPath(id string) string {
	return "/@connections/" + strings.ReplaceAll(id, "=", "%3D")
}

// wsClient is a WebSocket client of one node. A goroutine reads every
// message into received until the connection ends, so that a client never
// holds up the gateway and the test can check afterwards whether, and how,
// the connection ended.
type wsClient struct {
	name, user string
	node       int
	conn       *websocket.Conn
	// id and connectedAt (Unix ms) come from the $connect event.
	id          string
	connectedAt int64

	mu       sync.Mutex
	received []string
	cursor   int   // received[:cursor] has been consumed by the test
	readErr  error // why the connection ended
	done     chan struct{}
}

// dial connects name as principal user to node i and learns its connection
// id from the backend's $connect event, which carries the client's name in
// the query string.
func (c *gatewayCluster) dial(t *testing.T, i int, user, name string) *wsClient {
	t.Helper()
	cl := c.dialNoID(t, i, user, name)
	c.identify(t, cl)
	return cl
}

// dialNoID connects without waiting for the connection id; identify
// learns the ids of many clients at once.
func (c *gatewayCluster) dialNoID(t *testing.T, i int, user, name string) *wsClient {
	t.Helper()
	url := c.nodes[i].wsURL + "?access_token=" + mintToken(user) + "&client=" + name
	conn, resp, err := gt.TryDial(url, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {userAgent(name)}}})
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial node %d as %s (%s): %v %s", i, user, name, err, status)
	}
	cl := &wsClient{name: name, user: user, node: i, conn: conn, done: make(chan struct{})}
	go cl.read()
	t.Cleanup(func() {
		_ = conn.CloseNow()
		<-cl.done
	})
	return cl
}

// mintToken returns a token for principal user, valid for an hour, with
// the context claim role: tester.
func mintToken(user string) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "role": "tester", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(clusterJWTSecret))
	if err != nil {
		panic(err) // HS256 with a []byte key does not fail
	}
	return tok
}

// writeText sends msg as a text message.
func writeText(cl *wsClient, msg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.conn.Write(ctx, websocket.MessageText, []byte(msg))
}

func userAgent(name string) string { return "wsgate-e2e/" + name }

// identify waits for the $connect event of each client and fills in its id.
func (c *gatewayCluster) identify(t *testing.T, clients ...*wsClient) {
	t.Helper()
	waitUntil(t, 10*time.Second, func() bool {
		byName := make(map[string]gt.Event)
		for _, e := range c.backend.Events("/connect") {
			byName[e.QueryStringParameters["client"]] = e
		}
		for _, cl := range clients {
			e, ok := byName[cl.name]
			if !ok {
				return false
			}
			cl.id, cl.connectedAt = e.RequestContext.ConnectionID, e.RequestContext.ConnectedAt
		}
		return true
	}, "the $connect events of %d clients", len(clients))
}

func (cl *wsClient) read() {
	defer close(cl.done)
	for {
		_, data, err := cl.conn.Read(context.Background())
		cl.mu.Lock()
		if err != nil {
			cl.readErr = err
			cl.mu.Unlock()
			return
		}
		cl.received = append(cl.received, string(data))
		cl.mu.Unlock()
	}
}

// closed reports whether the connection has ended.
func (cl *wsClient) closed() bool {
	select {
	case <-cl.done:
		return true
	default:
		return false
	}
}

// next returns the next message not yet consumed, waiting for it.
func (cl *wsClient) next(t *testing.T) string {
	t.Helper()
	var msg string
	waitUntil(t, 10*time.Second, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if cl.cursor < len(cl.received) {
			msg = cl.received[cl.cursor]
			cl.cursor++
			return true
		}
		if cl.readErr != nil {
			t.Fatalf("client %s (%s) ended with %v while a message was expected", cl.name, cl.id, cl.readErr)
		}
		return false
	}, "a message for client %s (%s)", cl.name, cl.id)
	return msg
}

// expectNext requires the next message to be want.
func (cl *wsClient) expectNext(t *testing.T, want string) {
	t.Helper()
	if got := cl.next(t); got != want {
		t.Fatalf("client %s (%s on node %d) got %q, want %q", cl.name, cl.id, cl.node, got, want)
	}
}

// expectSet requires the next len(want) messages to be want in any order.
func (cl *wsClient) expectSet(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	for range want {
		got = append(got, cl.next(t))
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("client %s (%s on node %d) got %q, want %q in any order", cl.name, cl.id, cl.node, got, want)
	}
}

// waitFor consumes messages until want arrives, skipping any others (such
// as those of a load generator).
func (cl *wsClient) waitFor(t *testing.T, want string) {
	t.Helper()
	waitUntil(t, 10*time.Second, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		for cl.cursor < len(cl.received) {
			m := cl.received[cl.cursor]
			cl.cursor++
			if m == want {
				return true
			}
		}
		if cl.readErr != nil {
			t.Fatalf("client %s (%s) ended with %v while waiting for %q", cl.name, cl.id, cl.readErr, want)
		}
		return false
	}, "client %s (%s) to receive %q", cl.name, cl.id, want)
}

// expectClose waits for the connection to end with a close frame carrying
// code and reason.
func (cl *wsClient) expectClose(t *testing.T, code int, reason string) {
	t.Helper()
	waitUntil(t, 10*time.Second, cl.closed, "client %s (%s) to be closed", cl.name, cl.id)
	var ce websocket.CloseError
	if !errors.As(cl.readErr, &ce) {
		t.Fatalf("client %s ended with %v, want close %d %q", cl.name, cl.readErr, code, reason)
	}
	if int(ce.Code) != code || ce.Reason != reason {
		t.Fatalf("client %s closed with %d %q, want %d %q", cl.name, ce.Code, ce.Reason, code, reason)
	}
}

// requireOpen fails the test for every client whose connection has ended.
func requireOpen(t *testing.T, clients ...*wsClient) {
	t.Helper()
	for _, cl := range clients {
		if cl.closed() {
			t.Errorf("client %s (%s on node %d) was disconnected: %v", cl.name, cl.id, cl.node, cl.readErr)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// disconnects returns the $disconnect events the backend received, by
// connection id.
func (c *gatewayCluster) disconnects() map[string][]gt.Event {
	out := make(map[string][]gt.Event)
	for _, e := range c.backend.Events("/disconnect") {
		out[e.RequestContext.ConnectionID] = append(out[e.RequestContext.ConnectionID], e)
	}
	return out
}

// requireNoDisconnect fails the test if the backend got a $disconnect for
// any of clients.
func (c *gatewayCluster) requireNoDisconnect(t *testing.T, clients ...*wsClient) {
	t.Helper()
	dis := c.disconnects()
	for _, cl := range clients {
		for _, e := range dis[cl.id] {
			t.Errorf("$disconnect for live client %s (%s on node %d): %s", cl.name, cl.id, cl.node, e.Raw)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// waitPastMilli waits until the clock has passed the millisecond ms, so
// that the next connection's connectedAt is later than a connection made
// at ms (user connections are ordered by connectedAt, in milliseconds).
func waitPastMilli(t *testing.T, ms int64) {
	t.Helper()
	waitUntil(t, time.Second, func() bool { return time.Now().UnixMilli() > ms }, "the clock to pass %d", ms)
}

// isoMillis parses a GetConnection time into Unix milliseconds.
func isoMillis(t *testing.T, s string) int64 {
	t.Helper()
	tm, err := time.Parse("2006-01-02T15:04:05.000Z", s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return tm.UnixMilli()
}

// connInfo is GetConnection's answer.
type connInfo struct {
	ConnectedAt  string `json:"connectedAt"`
	LastActiveAt string `json:"lastActiveAt"`
	Identity     struct {
		SourceIP  string `json:"sourceIp"`
		UserAgent string `json:"userAgent"`
	} `json:"identity"`
}

// userInfo is GET /@users/{p}'s answer.
type userInfo struct {
	PrincipalID string `json:"principalId"`
	Connections []struct {
		ConnectionID string `json:"connectionId"`
		connInfo
	} `json:"connections"`
}

func (u userInfo) ids() []string {
	var out []string
	for _, c := range u.Connections {
		out = append(out, c.ConnectionID)
	}
	return out
}

func ids(clients ...*wsClient) []string {
	var out []string
	for _, cl := range clients {
		out = append(out, cl.id)
	}
	return out
}
