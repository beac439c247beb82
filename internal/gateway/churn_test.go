package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// The churn tests open and end connections by one path each and check that
// the gateway gives back everything they held: registry records, users'
// connection sets, topic memberships, message tails, goroutines, file
// descriptors and the open-connections gauge. A leak of one item per
// connection shows as a difference between rounds that grows with the
// number of connections, which the tests look for, rather than an absolute
// count: HTTP keep-alive pools and worker pools size themselves to the
// load, the first round included.

var churnRounds = roundsFromEnv()

// churnConfig is a gateway with a JWT authorizer (so connections have a
// principal), $connect/$disconnect/$default on b, the subscribe builtin,
// message tails and metrics on, and the given limits.
func churnConfig(b *gt.Backend, limits string) string {
	cfg := fmt.Sprintf(`
api_id: abc123def4
stage: prod
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256]}
  cache_ttl: 300ms
topics:
  allow: ["news", "rooms/*"]
management: {message_tail: true, metrics: true}
routes:
  $connect: {integration: {type: http, url: %q, timeout: 2s}}
  $disconnect: {integration: {type: http, url: %q}}
  $default: {integration: {type: http, url: %q, timeout: 3s}, route_response: true}
  subscribe: {builtin: subscribe}
`, b.URLFor("/connect"), b.URLFor("/disconnect"), b.URLFor("/default"))
	if limits != "" {
		cfg += "limits: " + limits + "\n"
	}
	return cfg
}

// churnUser is the principal of a churn test's connections.
func churnUser(i int) string { return fmt.Sprintf("churn-user-%d", i%7) }

func churnToken(t testing.TB, sub string, ttl time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(ttl).Unix()}).
		SignedString([]byte(gt.TestJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fdCount is the number of file descriptors this process holds.
func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// gatewayState is what the management API and the node report as held.
type gatewayState struct {
	listed, topics, nodeConns, nodeSubs, users int
	edgeConns, inflight, tails                 int
	gauge                                      float64
}

func (s gatewayState) empty() bool {
	return s.listed == 0 && s.topics == 0 && s.nodeConns == 0 && s.nodeSubs == 0 && s.users == 0 &&
		s.edgeConns == 0 && s.inflight == 0 && s.tails == 0 && s.gauge == 0
}

func readState(t testing.TB, g *gt.Gateway) gatewayState {
	t.Helper()
	var s gatewayState
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	mgmtGet(t, g, "/@connections?maxResults=1000", &list)
	s.listed = len(list.Items)
	var topics topicsPage
	mgmtGet(t, g, "/@topics?maxResults=1000", &topics)
	s.topics = len(topics.Items)
	var nodes nodesAnswer
	mgmtGet(t, g, "/@nodes", &nodes)
	for _, n := range nodes.Nodes {
		if n.Connections != nil {
			s.nodeConns += *n.Connections
		}
		if n.Subscriptions != nil {
			s.nodeSubs += *n.Subscriptions
		}
	}
	for i := range 7 {
		var u struct {
			Connections []json.RawMessage `json:"connections"`
		}
		mgmtGet(t, g, "/@users/"+churnUser(i), &u)
		s.users += len(u.Connections)
	}
	st := g.EdgeStats()
	s.edgeConns, s.inflight = st.Connections, st.InflightMessages
	s.tails = g.OpenTails()
	s.gauge = metricValue(t, g, "wsgate_open_connections")
	return s
}

func mgmtGet(t testing.TB, g *gt.Gateway, path string, out any) {
	t.Helper()
	status, _, body := g.MgmtDo(t, "GET", path, nil, nil)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal([]byte(body), out); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// metricValue is the value of an unlabelled metric in GET /metrics.
func metricValue(t testing.TB, g *gt.Gateway, name string) float64 {
	t.Helper()
	status, _, body := g.MgmtDo(t, "GET", "/metrics", nil, nil)
	if status != 200 {
		t.Fatalf("GET /metrics: %d", status)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// waitEmpty waits, with a generous bound, for the gateway to hold no
// connection anywhere.
func waitEmpty(t testing.TB, g *gt.Gateway) {
	t.Helper()
	var s gatewayState
	deadline := time.Now().Add(20 * time.Second)
	for {
		s = readState(t, g)
		if s.empty() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway still holds connections after they all ended: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled waits for the gateway's goroutines and the sockets of its
// listeners to be at most base's plus slack, and returns what they are.
func settled(t testing.TB, g *gt.Gateway, base, slack [2]int) [2]int {
	t.Helper()
	var now [2]int
	deadline := time.Now().Add(20 * time.Second)
	for {
		now = [2]int{gatewayGoroutines(), listenerSockets(t, g)}
		if base[0] == 0 || (now[0] <= base[0]+slack[0] && now[1] <= base[1]+slack[1]) {
			return now
		}
		if time.Now().After(deadline) {
			return now
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gatewayGoroutines counts the goroutines running the gateway's code (or
// its libraries' on its behalf), not the test's clients and backends.
func gatewayGoroutines() int {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
	n := 0
	for _, stack := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(stack, "_test.") || strings.Contains(stack, "internal/gatewaytest.") || strings.Contains(stack, "net/http/httptest") {
			continue
		}
		if strings.Contains(stack, "github.com/wsgate/wsgate/internal/") || strings.Contains(stack, "lesismal/nbio") || strings.Contains(stack, "valyala/fasthttp") {
			n++
		}
	}
	return n
}

// listenerSockets counts this process's file descriptors that are TCP
// sockets on the local side of g's client or management port: the sockets
// of the gateway's accepted connections.
func listenerSockets(t testing.TB, g *gt.Gateway) int {
	t.Helper()
	ports := map[string]bool{}
	for _, addr := range []string{g.Addr(), g.ManagementAddr()} {
		if _, port, err := net.SplitHostPort(addr); err == nil {
			var p int
			fmt.Sscan(port, &p)
			ports[fmt.Sprintf("%04X", p)] = true
		}
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] == "0A" { // 0A: listening
				continue
			}
			if _, port, ok := strings.Cut(fields[1], ":"); ok && ports[port] {
				inodes[fields[9]] = true
			}
		}
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			n++
		}
	}
	return n
}

// churn runs rounds of n connections ended by end and fails when what the
// process holds grows from the first round to the last, or when the
// gateway still lists any of them.
func churn(t *testing.T, g *gt.Gateway, n int, round func(t *testing.T, round int)) {
	t.Helper()
	// A leak of one goroutine or descriptor per connection grows the
	// counts by n every round; pools that size themselves to the load grow
	// by a step, once.
	step := max(n/4, 8)
	var counts [][2]int
	for r := range churnRounds {
		round(t, r)
		waitEmpty(t, g)
		var prev [2]int
		if r > 0 {
			prev = counts[r-1]
		}
		now := settled(t, g, prev, [2]int{step, step})
		counts = append(counts, now)
		// The heap is logged, not checked: the test's backend and log
		// buffer keep what every connection did.
		t.Logf("round %d: %d gateway goroutines, %d sockets of its listeners (process: %d goroutines, %d fds), %d KiB of heap in use", r, now[0], now[1], runtime.NumGoroutine(), fdCount(t), heapInUse()>>10)
	}
	grew := func(k int) bool {
		for r := churnRounds - 2; r < churnRounds; r++ {
			if counts[r][k]-counts[r-1][k] <= step {
				return false
			}
		}
		return true
	}
	if grew(0) || grew(1) {
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Fatalf("%d rounds of %d connections: the gateway's goroutines or sockets grew every round: %v\n%s", churnRounds, n, counts, buf.String())
	}
}

// heapInUse is the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// dialChurn dials user i's connection and returns it with its id, learned
// from its own GET of itself: the tests run connections concurrently.
func dialChurn(t testing.TB, g *gt.Gateway, i int, opts *websocket.DialOptions) (*websocket.Conn, error) {
	c, _, err := gt.TryDial(g.URL+"?access_token="+churnToken(t, churnUser(i), time.Hour), opts)
	return c, err
}

// parallel runs f(i) for i in [0, n) on a few goroutines.
func parallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// whoAmI learns a connection's id from an echo of the $default route: the
// backend echoes the event body, so the test asks for its own id by having
// the backend put it in the reply.
func whoAmI(t testing.TB, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`)); err != nil {
		t.Errorf("whoami: %v", err)
		return ""
	}
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Errorf("whoami: %v", err)
		return ""
	}
	return string(data)
}

// churnBackend answers $connect with 200, and a message whose body is
// {"action":"whoami"} with the connection's id.
func churnBackend(t testing.TB) *gt.Backend {
	b := gt.NewBackend(t)
	b.On("/default", func(e gt.Event) gt.Reply {
		if e.Body == `{"action":"whoami"}` {
			return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: e.RequestContext.ConnectionID}}
		}
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: e.Body}}
	})
	return b
}

func escID(id string) string { return url.PathEscape(id) }

// TestChurnEndings ends connections by each path a connection can end and
// checks that the gateway returns to where it was.
func TestChurnEndings(t *testing.T) {
	churnSoak(t)
	const n = 60
	const workers = 6
	for _, tc := range []struct {
		name   string
		limits string
		// end ends an open connection (id is its connection id).
		end func(t *testing.T, g *gt.Gateway, c *websocket.Conn, id string)
	}{
		{"close frame", "", func(t *testing.T, g *gt.Gateway, c *websocket.Conn, id string) {
			_ = c.Close(websocket.StatusNormalClosure, "bye")
		}},
		{"dropped socket", "", func(t *testing.T, g *gt.Gateway, c *websocket.Conn, id string) {
			_ = c.CloseNow()
		}},
		{"management delete", "", func(t *testing.T, g *gt.Gateway, c *websocket.Conn, id string) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}()
			status, _, body := g.MgmtDo(t, "DELETE", "/@connections/"+escID(id), nil, nil)
			if status != http.StatusNoContent {
				t.Errorf("DELETE: %d %s", status, body)
			}
		}},
		{"idle timeout", "{idle_timeout: 400ms, ping_interval: 100ms}", func(t *testing.T, g *gt.Gateway, c *websocket.Conn, id string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					if websocket.CloseStatus(err) != websocket.StatusGoingAway {
						t.Errorf("idle connection ended with %v", err)
					}
					return
				}
			}
		}},
		{"subscribed and tailed, close frame", "", func(t *testing.T, g *gt.Gateway, c *websocket.Conn, id string) {
			subscribeAndTail(t, g, c, id)
			_ = c.Close(websocket.StatusNormalClosure, "bye")
		}},
		{"subscribed and tailed, dropped socket", "", func(t *testing.T, g *gt.Gateway, c *websocket.Conn, id string) {
			subscribeAndTail(t, g, c, id)
			_ = c.CloseNow()
		}},
		{"subscribed and tailed, management delete", "", func(t *testing.T, g *gt.Gateway, c *websocket.Conn, id string) {
			subscribeAndTail(t, g, c, id)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}()
			status, _, body := g.MgmtDo(t, "DELETE", "/@connections/"+escID(id), nil, nil)
			if status != http.StatusNoContent {
				t.Errorf("DELETE: %d %s", status, body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := churnBackend(t)
			g := gt.Start(t, churnConfig(b, tc.limits))
			churn(t, g, n, func(t *testing.T, r int) {
				parallel(n, workers, func(i int) {
					c, err := dialChurn(t, g, i, nil)
					if err != nil {
						t.Errorf("dial %d: %v", i, err)
						return
					}
					defer c.CloseNow()
					id := whoAmI(t, c)
					if id == "" {
						return
					}
					tc.end(t, g, c, id)
				})
			})
		})
	}
}

// subscribeAndTail subscribes c to two topics, one by its own message and
// one by the management API, and opens a message tail on it.
func subscribeAndTail(t *testing.T, g *gt.Gateway, c *websocket.Conn, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"subscribe","topic":"news"}`)); err != nil {
		t.Errorf("subscribe: %v", err)
		return
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Errorf("subscribe reply: %v", err)
		return
	}
	if status, _, body := g.MgmtDo(t, "PUT", "/@connections/"+escID(id)+"/topics/rooms/"+escID(id[:4]), nil, nil); status/100 != 2 {
		t.Errorf("PUT topic: %d %s", status, body)
	}
	if status, _, body := g.MgmtDo(t, "PUT", "/@connections/"+escID(id)+"/tail", nil, nil); status/100 != 2 {
		t.Errorf("PUT tail: %d %s", status, body)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`hello`)); err != nil {
		t.Errorf("hello: %v", err)
		return
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Errorf("hello reply: %v", err)
	}
}

// tcpDialer is a client whose sockets the test can reach, to reset them.
type tcpDialer struct {
	mu    sync.Mutex
	conns []*net.TCPConn
	// rcvbuf, when set, is the sockets' receive buffer.
	rcvbuf int
}

func (d *tcpDialer) options() *websocket.DialOptions {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := nc.(*net.TCPConn)
		if d.rcvbuf > 0 {
			_ = tc.SetReadBuffer(d.rcvbuf)
		}
		d.mu.Lock()
		d.conns = append(d.conns, tc)
		d.mu.Unlock()
		return tc, nil
	}}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}}
}

// reset sends RST on every socket dialed so far.
func (d *tcpDialer) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, tc := range d.conns {
		_ = tc.SetLinger(0)
		_ = tc.Close()
	}
	d.conns = nil
}

// TestChurnMoreEndings covers the endings that need their own clients or
// backends: socket resets, token expiry, refused and abandoned handshakes,
// messages in flight, slow consumers and reloads.
func TestChurnMoreEndings(t *testing.T) {
	churnSoak(t)
	const n = 40
	for _, tc := range []struct {
		name    string
		limits  string
		workers int
		setup   func(b *gt.Backend)
		// one runs connection i from dial to end.
		one func(t *testing.T, g *gt.Gateway, i int)
		// round, when set, replaces running one for every i.
		round func(t *testing.T, g *churnGateway)
		// after, when set, checks the gateway once the connections of
		// every round are gone.
		after func(t *testing.T, g *gt.Gateway)
	}{
		{name: "socket reset", one: func(t *testing.T, g *gt.Gateway, i int) {
			d := &tcpDialer{}
			c, err := dialChurn(t, g, i, d.options())
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			if whoAmI(t, c) == "" {
				return
			}
			d.reset()
		}},
		{name: "token expiry", workers: n, one: func(t *testing.T, g *gt.Gateway, i int) {
			tok := churnToken(t, churnUser(i), 2*time.Second)
			c, _, err := gt.TryDial(g.URL+"?access_token="+tok, nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					if code := websocket.CloseStatus(err); code != 4401 {
						t.Errorf("ended with %v, want 4401", err)
					}
					return
				}
			}
		}},
		{name: "connect refused by the backend", setup: func(b *gt.Backend) {
			b.On("/connect", func(gt.Event) gt.Reply {
				return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 403}}
			})
		}, one: func(t *testing.T, g *gt.Gateway, i int) {
			if c, err := dialChurn(t, g, i, nil); err == nil {
				_ = c.CloseNow()
				t.Errorf("connected")
			}
		}},
		{name: "connect refused by the authorizer", one: func(t *testing.T, g *gt.Gateway, i int) {
			if got := dialStatus(g.URL+"?access_token=not-a-token-"+fmt.Sprint(i), nil); got != 401 {
				t.Errorf("handshake %d, want 401", got)
			}
		}},
		{name: "client gone while connect integration runs", workers: 10, setup: func(b *gt.Backend) {
			b.On("/connect", func(gt.Event) gt.Reply {
				return gt.Reply{Delay: 700 * time.Millisecond, Proxy: &events.APIGatewayProxyResponse{StatusCode: 200}}
			})
		}, one: func(t *testing.T, g *gt.Gateway, i int) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			c, _, err := websocket.Dial(ctx, g.URL+"?access_token="+churnToken(t, churnUser(i), time.Hour), nil)
			if err == nil {
				_ = c.CloseNow()
			}
		}},
		{name: "client gone while connect integration times out", workers: 10, setup: func(b *gt.Backend) {
			b.On("/connect", func(gt.Event) gt.Reply {
				return gt.Reply{Delay: 5 * time.Second, Proxy: &events.APIGatewayProxyResponse{StatusCode: 200}}
			})
		}, one: func(t *testing.T, g *gt.Gateway, i int) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			c, _, err := websocket.Dial(ctx, g.URL+"?access_token="+churnToken(t, churnUser(i), time.Hour), nil)
			if err == nil {
				_ = c.CloseNow()
			}
		}},
		{name: "dropped while a message is in flight", workers: 10, setup: func(b *gt.Backend) {
			b.On("/default", func(e gt.Event) gt.Reply {
				if e.Body == `{"action":"whoami"}` {
					return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: e.RequestContext.ConnectionID}}
				}
				return gt.Reply{Delay: 300 * time.Millisecond, Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: e.Body}}
			})
		}, one: func(t *testing.T, g *gt.Gateway, i int) {
			c, err := dialChurn(t, g, i, nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			if whoAmI(t, c) == "" {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = c.Write(ctx, websocket.MessageText, []byte("slow"))
			_ = c.Write(ctx, websocket.MessageText, []byte("slow"))
			if i%2 == 0 {
				_ = c.CloseNow()
			} else {
				_ = c.Close(websocket.StatusNormalClosure, "bye")
			}
		}},
		{name: "slow consumer", workers: 4, limits: "{max_frame_bytes: 1024, max_message_bytes: 1024, outbound_queue_bytes: 2048}",
			one: func(t *testing.T, g *gt.Gateway, i int) {
				d := &tcpDialer{rcvbuf: 2048}
				c, err := dialChurn(t, g, i, d.options())
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				defer c.CloseNow()
				id := whoAmI(t, c)
				if id == "" {
					return
				}
				msg := strings.Repeat("x", 1000)
				for k := 0; ; k++ {
					status, _, body := g.MgmtDo(t, "POST", "/@connections/"+escID(id), strings.NewReader(msg), nil)
					if status == http.StatusGone {
						return
					}
					if status != 200 || k > 20000 {
						t.Errorf("post %d: %d %s", k, status, body)
						return
					}
				}
			}},
		{name: "ping timeout", limits: "{idle_timeout: 5s, ping_interval: 100ms}", one: func(t *testing.T, g *gt.Gateway, i int) {
			c, err := dialChurn(t, g, i, nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			id := whoAmI(t, c)
			if id == "" {
				return
			}
			// Not reading: the gateway's pings go unanswered.
			gt.Eventually(t, func() bool { return connectionGone(t, g, id) }, "the silent connection to be dropped")
		}},
		{name: "max connection duration", limits: "{max_connection_duration: 300ms}", one: func(t *testing.T, g *gt.Gateway, i int) {
			c, err := dialChurn(t, g, i, nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}},
		{name: "protocol error", one: func(t *testing.T, g *gt.Gateway, i int) {
			c, err := dialChurn(t, g, i, nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
			for {
				if _, _, err := c.Read(ctx); err != nil {
					if code := websocket.CloseStatus(err); code != websocket.StatusUnsupportedData {
						t.Errorf("ended with %v, want 1003", err)
					}
					return
				}
			}
		}},
		{name: "user limit refuse newest", workers: 10, limits: "{max_connections_per_user: 2}", one: func(t *testing.T, g *gt.Gateway, i int) {
			c, err := dialChurn(t, g, i, nil)
			if err != nil {
				return // 429: the user has two already
			}
			defer c.CloseNow()
			whoAmI(t, c)
			_ = c.Close(websocket.StatusNormalClosure, "bye")
		}, after: func(t *testing.T, g *gt.Gateway) {
			// Every user's slots are free again: no reservation outlived
			// its handshake.
			for i := range 7 {
				for k := range 2 {
					c, err := dialChurn(t, g, i, nil)
					if err != nil {
						t.Fatalf("user %s, connection %d of 2: %v", churnUser(i), k+1, err)
					}
					defer c.CloseNow()
				}
			}
		}},
		{name: "user limit close oldest", workers: 10, limits: "{max_connections_per_user: 2, user_limit_policy: close_oldest}", one: func(t *testing.T, g *gt.Gateway, i int) {
			c, err := dialChurn(t, g, i, nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`))
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return // closed as the user's oldest
				}
				if i%3 == 0 {
					_ = c.Close(websocket.StatusNormalClosure, "bye")
					return
				}
				ctx2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
				_, _, err := c.Read(ctx2)
				cancel2()
				if err != nil {
					if ctx.Err() == nil && websocket.CloseStatus(err) == -1 && ctx2.Err() != nil {
						_ = c.Close(websocket.StatusNormalClosure, "bye")
					}
					return
				}
			}
		}},
		{name: "reload while open", round: func(t *testing.T, cg *churnGateway) {
			g := cg.Gateway
			var conns []*websocket.Conn
			var ids []string
			for i := range n {
				c, err := dialChurn(t, g, i, nil)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				id := whoAmI(t, c)
				subscribeAndTail(t, g, c, id)
				conns, ids = append(conns, c), append(ids, id)
			}
			g.SetYAML(strings.Replace(cg.ConfigText, "cache_ttl: 300ms", "cache_ttl: 200ms", 1))
			if status, _, body := g.MgmtDo(t, "POST", "/reload", nil, nil); status != 200 {
				t.Fatalf("reload: %d %s", status, body)
			}
			for i, c := range conns {
				if i%2 == 0 {
					_ = c.Close(websocket.StatusNormalClosure, "bye")
				} else {
					_ = c.CloseNow()
				}
			}
			gt.Eventually(t, func() bool { return g.Retiring() == 0 }, "the replaced configuration to be closed")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := churnBackend(t)
			if tc.setup != nil {
				tc.setup(b)
			}
			text := churnConfig(b, tc.limits)
			g := &churnGateway{Gateway: gt.Start(t, text), ConfigText: text}
			g.SetYAML(text)
			workers := tc.workers
			if workers == 0 {
				workers = 6
			}
			churn(t, g.Gateway, n, func(t *testing.T, r int) {
				if tc.round != nil {
					tc.round(t, g)
					return
				}
				parallel(n, workers, func(i int) { tc.one(t, g.Gateway, i) })
			})
			if tc.after != nil {
				tc.after(t, g.Gateway)
			}
			if c := g.AuthCacheLen(); c > 0 {
				t.Logf("authorizer cache: %d entries", c)
			}
		})
	}
}

type churnGateway struct {
	*gt.Gateway
	ConfigText string
}

// roundsFromEnv is the number of churn rounds: 4, or WSGATE_CHURN_ROUNDS.
func roundsFromEnv() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("WSGATE_CHURN_ROUNDS"), &n); err == nil && n >= 3 {
		return n
	}
	return 4
}

// churnSoak skips t unless WSGATE_CHURN_ROUNDS is set: the churn tests wait
// out idle timeouts and slow consumers round after round (about 90 s in
// all), so they are a soak run of their own, not part of go test ./...
func churnSoak(t *testing.T) {
	t.Helper()
	if os.Getenv("WSGATE_CHURN_ROUNDS") == "" {
		t.Skip("connection churn soak: set WSGATE_CHURN_ROUNDS (3 or more; README, Tests) to run it")
	}
}
