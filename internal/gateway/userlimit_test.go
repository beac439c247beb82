package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/registry"
)

// handshakes is how many handshakes of one user race in these tests, and
// userLimit the user's max_connections_per_user.
const (
	handshakes = 20
	userLimit  = 2
)

// connectKinds are the $connect integrations the races run against: one
// that takes a while, so that the handshakes overlap in it, and one that
// answers at once, so that they overlap only in the gateway.
var connectKinds = []struct {
	name string
	// slow sets up the backend and tells whether the $connect route is
	// the backend's (true) or a mock (false).
	slow bool
}{
	{"slow $connect", true},
	{"instant $connect", false},
}

// userLimitYAML is a jwt config whose $connect route is the backend's
// /connect (slow) or a mock, with a mock $default that echoes, extra at
// the top level.
func userLimitYAML(b *gt.Backend, slow bool, extra string) string {
	connect := "{integration: {type: mock}}"
	if slow {
		b.On("/connect", func(gt.Event) gt.Reply {
			return gt.Reply{Delay: 100 * time.Millisecond, Proxy: &events.APIGatewayProxyResponse{StatusCode: 200}}
		})
		connect = fmt.Sprintf("{integration: {type: http, url: %q}}", b.URLFor("/connect"))
	}
	return fmt.Sprintf(`
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256]}
%s
routes:
  $connect: %s
  $disconnect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock}, route_response: true}
`, extra, connect, b.URLFor("/disconnect"))
}

// raceResult is what a burst of handshakes came to.
type raceResult struct {
	open     []*watchedConn
	statuses map[int]int // handshake status → how many
}

// dialAtOnce starts n handshakes of one user at the same moment, spread
// over urls in turn, and waits for all of them. Open connections are
// watched for their close and closed by t.Cleanup.
func dialAtOnce(t *testing.T, urls []string, n int) raceResult {
	t.Helper()
	start := make(chan struct{})
	var mu sync.Mutex
	res := raceResult{statuses: map[int]int{}}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			c, resp, err := gt.TryDial(urls[i%len(urls)], nil)
			status := 101
			switch {
			case err == nil:
			case resp != nil:
				status = resp.StatusCode
			default:
				status = 0
			}
			mu.Lock()
			defer mu.Unlock()
			res.statuses[status]++
			if c != nil {
				res.open = append(res.open, watch(t, c))
			}
		})
	}
	close(start)
	wg.Wait()
	return res
}

// watchedConn is an open client connection whose close is recorded by a
// reader that echoes nothing and runs until the connection ends.
type watchedConn struct {
	*websocket.Conn
	done chan struct{}
	// code is the close code, once done is closed; -1 when the
	// connection ended without a close frame.
	code int
	// echo receives the text messages the connection reads.
	echo chan string
}

func watch(t *testing.T, c *websocket.Conn) *watchedConn {
	w := &watchedConn{Conn: c, done: make(chan struct{}), echo: make(chan string, 8)}
	go func() {
		defer close(w.done)
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				var ce websocket.CloseError
				w.code = -1
				if errors.As(err, &ce) {
					w.code = int(ce.Code)
				}
				return
			}
			select {
			case w.echo <- string(data):
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = c.CloseNow()
		<-w.done
	})
	return w
}

func (w *watchedConn) closed() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// answers reports whether the connection echoes a message, skipping what
// it received before.
func (w *watchedConn) answers(t *testing.T) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
		return false
	}
	for {
		select {
		case got := <-w.echo:
			if got == `{"action":"ping"}` {
				return true
			}
		case <-w.done:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// checkRefuseNewest checks the outcome of a burst of handshakes of a user
// with refuse_newest: exactly the limit got in, everyone else 429; the
// slots are held by those connections only, so that closing one lets
// exactly one more in.
func checkRefuseNewest(t *testing.T, b *gt.Backend, slow bool, urls []string) {
	t.Helper()
	res := dialAtOnce(t, urls, handshakes)
	if len(res.open) != userLimit || res.statuses[http.StatusTooManyRequests] != handshakes-userLimit {
		t.Fatalf("%d handshakes of one user with max_connections_per_user %d: statuses %v; want %d × 101 and %d × 429",
			handshakes, userLimit, res.statuses, userLimit, handshakes-userLimit)
	}
	if slow {
		if n := len(b.Events("/connect")); n != userLimit {
			t.Fatalf("$connect ran %d times; a refused handshake must not reach it", n)
		}
	}
	for _, c := range res.open {
		if !c.answers(t) {
			t.Fatal("an admitted connection does not answer")
		}
	}
	_ = res.open[0].Close(websocket.StatusNormalClosure, "")
	dialWhenFree(t, urls[len(urls)-1], "a handshake once the user is under the limit again")
	for _, u := range urls {
		if got := dialStatus(u, nil); got != http.StatusTooManyRequests {
			t.Fatalf("a handshake of a user back at the limit: status %d, want 429", got)
		}
	}
}

// checkCloseOldest checks the outcome of a burst of handshakes of a user
// with close_oldest: every handshake is admitted, and all but the limit
// are then closed with 4008, leaving exactly the limit open.
func checkCloseOldest(t *testing.T, urls []string, users func() int) {
	t.Helper()
	res := dialAtOnce(t, urls, handshakes)
	if len(res.open) != handshakes {
		t.Fatalf("close_oldest refused handshakes: statuses %v", res.statuses)
	}
	gt.Eventually(t, func() bool {
		closed := 0
		for _, c := range res.open {
			if c.closed() {
				closed++
			}
		}
		return closed >= handshakes-userLimit
	}, "%d connections closed", handshakes-userLimit)
	var survivors []*watchedConn
	for _, c := range res.open {
		if !c.closed() {
			survivors = append(survivors, c)
		} else if c.code != 4008 {
			t.Fatalf("a connection closed with %d, want 4008", c.code)
		}
	}
	if len(survivors) != userLimit {
		t.Fatalf("%d connections of the user stay open, want %d", len(survivors), userLimit)
	}
	for _, c := range survivors {
		if !c.answers(t) {
			t.Fatalf("a surviving connection closed with %d", c.code)
		}
	}
	gt.Eventually(t, func() bool { return users() == userLimit }, "the registry to hold the user's %d connections", userLimit)
}

// userCount returns how many connections the management API of g lists
// for alice.
func userCount(t *testing.T, g *gt.Gateway) func() int {
	return func() int {
		var list struct{ Connections []any }
		mgmtJSON(t, g, "GET", "/@users/alice", "", 200, &list)
		return len(list.Connections)
	}
}

// TestUserLimitConcurrentHandshakes: handshakes of one user that race
// cannot exceed max_connections_per_user together.
func TestUserLimitConcurrentHandshakes(t *testing.T) {
	for _, kind := range connectKinds {
		t.Run(kind.name, func(t *testing.T) {
			b := gt.NewBackend(t)
			g := gt.Start(t, userLimitYAML(b, kind.slow, "limits: {max_connections_per_user: 2}"))
			checkRefuseNewest(t, b, kind.slow, []string{userURL(t, g, "alice")})
		})
	}
}

// TestUserLimitCloseOldestConcurrentHandshakes: with close_oldest, racing
// handshakes of one user all get in and all but the limit are closed.
func TestUserLimitCloseOldestConcurrentHandshakes(t *testing.T) {
	for _, kind := range connectKinds {
		t.Run(kind.name, func(t *testing.T) {
			b := gt.NewBackend(t)
			g := gt.Start(t, userLimitYAML(b, kind.slow, "limits: {max_connections_per_user: 2, user_limit_policy: close_oldest}"))
			checkCloseOldest(t, []string{userURL(t, g, "alice")}, userCount(t, g))
		})
	}
}

// startLimitCluster starts three gateways of one cluster with a user limit
// and returns them with a client URL of each for alice.
func startLimitCluster(t *testing.T, b *gt.Backend, slow bool, limits string, newEngine func() cluster.Engine) ([]*gt.Gateway, []string) {
	t.Helper()
	var gs []*gt.Gateway
	var urls []string
	for range 3 {
		cfg, err := config.Parse("test.yaml", []byte(userLimitYAML(b, slow, limits+"\nregistry: {heartbeat_interval: 100ms, node_timeout: 5s}")))
		if err != nil {
			t.Fatal(err)
		}
		g := gt.StartNode(t, cfg, newEngine())
		gs = append(gs, g)
		urls = append(urls, userURL(t, g, "alice"))
	}
	for _, g := range gs {
		gt.Eventually(t, func() bool {
			status, _, _ := g.MgmtDo(t, "GET", "/readyz", nil, nil)
			return status == 200
		}, "node ready")
	}
	return gs, urls
}

// TestClusterUserLimitConcurrentHandshakes: handshakes of one user racing
// on three nodes cannot exceed max_connections_per_user together.
func TestClusterUserLimitConcurrentHandshakes(t *testing.T) {
	eachEngine(t, func(t *testing.T, newEngine func() cluster.Engine) {
		for _, kind := range connectKinds {
			t.Run(kind.name, func(t *testing.T) {
				b := gt.NewBackend(t)
				_, urls := startLimitCluster(t, b, kind.slow, "limits: {max_connections_per_user: 2}", newEngine)
				checkRefuseNewest(t, b, kind.slow, urls)
			})
		}
	})
}

// TestClusterUserLimitCloseOldestConcurrentHandshakes: with close_oldest,
// handshakes of one user racing on three nodes all get in and all but the
// limit are closed, wherever they are.
func TestClusterUserLimitCloseOldestConcurrentHandshakes(t *testing.T) {
	eachEngine(t, func(t *testing.T, newEngine func() cluster.Engine) {
		for _, kind := range connectKinds {
			t.Run(kind.name, func(t *testing.T) {
				b := gt.NewBackend(t)
				gs, urls := startLimitCluster(t, b, kind.slow, "limits: {max_connections_per_user: 2, user_limit_policy: close_oldest}", newEngine)
				checkCloseOldest(t, urls, userCount(t, gs[0]))
			})
		}
	})
}

// failingRegister is an engine whose next failures Register calls fail.
type failingRegister struct {
	cluster.Engine
	failures atomic.Int32
}

func (e *failingRegister) Register(ctx context.Context, rec registry.Record) error {
	if e.failures.Add(-1) >= 0 {
		return errors.New("engine refused the write")
	}
	return e.Engine.Register(ctx, rec)
}

// connectFirst answers the first $connect with what first returns, and
// every later one with 200 at once.
func connectFirst(b *gt.Backend, first func() gt.Reply) {
	var calls atomic.Int32
	b.On("/connect", func(gt.Event) gt.Reply {
		if calls.Add(1) == 1 {
			return first()
		}
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200}}
	})
}

// holdFirstConnect makes the first $connect wait until release is closed,
// then accept; later ones are accepted at once.
func holdFirstConnect(b *gt.Backend) (release chan struct{}) {
	release = make(chan struct{})
	connectFirst(b, func() gt.Reply {
		<-release
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200}}
	})
	return release
}

// dialWhenFree dials url until a handshake gets in, and watches the
// connection; what names the wait.
func dialWhenFree(t *testing.T, url, what string) *watchedConn {
	t.Helper()
	var c *websocket.Conn
	gt.Eventually(t, func() bool {
		var err error
		c, _, err = gt.TryDial(url, nil)
		return err == nil
	}, "%s", what)
	return watch(t, c)
}

// TestUserLimitSlotReleasedWhenHandshakeFails: a handshake that took its
// user's only slot and then fails gives the slot back, so that the user's
// next handshake gets in, whatever made it fail.
func TestUserLimitSlotReleasedWhenHandshakeFails(t *testing.T) {
	eachEngine(t, func(t *testing.T, newEngine func() cluster.Engine) {
		start := func(t *testing.T, b *gt.Backend, eng cluster.Engine) *gt.Gateway {
			cfg, err := config.Parse("test.yaml", []byte(userLimitYAML(b, true, "limits: {max_connections_per_user: 1}")))
			if err != nil {
				t.Fatal(err)
			}
			return gt.StartNode(t, cfg, eng)
		}
		for _, tc := range []struct {
			name   string
			first  gt.Reply
			status int
		}{
			{"$connect refuses", gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 403}}, 403},
			{"$connect integration fails", gt.Reply{Status: 500}, 502},
		} {
			t.Run(tc.name, func(t *testing.T) {
				user := tc.name
				b := gt.NewBackend(t)
				g := start(t, b, newEngine())
				connectFirst(b, func() gt.Reply { return tc.first })
				if got := dialStatus(userURL(t, g, user), nil); got != tc.status {
					t.Fatalf("first handshake: %d, want %d", got, tc.status)
				}
				gt.Dial(t, userURL(t, g, user), nil)
			})
		}
		t.Run("registry fails to record the connection", func(t *testing.T) {
			const user = "registry-fails"
			b := gt.NewBackend(t)
			eng := &failingRegister{Engine: newEngine()}
			g := start(t, b, eng)
			eng.failures.Store(1)
			if got := dialStatus(userURL(t, g, user), nil); got != 503 {
				t.Fatalf("handshake the registry did not record: %d, want 503", got)
			}
			gt.Dial(t, userURL(t, g, user), nil)
		})
		t.Run("client leaves during $connect", func(t *testing.T) {
			const user = "client-leaves"
			b := gt.NewBackend(t)
			g := start(t, b, newEngine())
			// The first $connect answers only when the gateway gives up on
			// it, which it does when the client leaves.
			connectFirst(b, func() gt.Reply { return gt.Reply{Delay: time.Hour} })
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			u := userURL(t, g, user)
			go func() {
				c, _, err := websocket.Dial(ctx, u, nil)
				if c != nil {
					_ = c.CloseNow()
				}
				done <- err
			}()
			b.WaitEvent(t, "/connect", nil)
			cancel()
			if err := <-done; err == nil {
				t.Fatal("a handshake whose client left succeeded")
			}
			dialWhenFree(t, userURL(t, g, user), "a handshake once the one whose client left gave its slot back")
		})
		t.Run("node shuts down during $connect", func(t *testing.T) {
			const user = "node-shuts-down"
			b := gt.NewBackend(t)
			g := start(t, b, newEngine())
			other := start(t, b, newEngine())
			release := holdFirstConnect(b)
			status := make(chan int, 1)
			u := userURL(t, g, user)
			go func() { status <- dialStatus(u, nil) }()
			b.WaitEvent(t, "/connect", nil)
			stopped := make(chan error, 1)
			go func() { stopped <- g.Shutdown(context.Background()) }()
			gt.Eventually(t, func() bool { return strings.Contains(g.Logs.String(), "shutting down") }, "the shutdown to start")
			close(release)
			if got := <-status; got != 503 {
				t.Fatalf("a handshake that ended during shutdown: %d, want 503", got)
			}
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
			dialWhenFree(t, userURL(t, other, user), "a handshake on another node once the stopped node's handshake gave its slot back")
		})
	})
}

// TestClusterUserSlotOfDeadNodeExpires: the reservation of a node that
// died mid-handshake holds the user's slot only until it expires.
func TestClusterUserSlotOfDeadNodeExpires(t *testing.T) {
	eachEngine(t, func(t *testing.T, newEngine func() cluster.Engine) {
		b := gt.NewBackend(t)
		_, urls := startLimitCluster(t, b, false, "limits: {max_connections_per_user: 1}", newEngine)
		ghost := newEngine()
		ok, err := ghost.ReserveUserSlot(context.Background(), "alice", "ghost-conn=", 1, 3*time.Second)
		if err != nil || !ok {
			t.Fatalf("the dying node's reservation: %v, %v", ok, err)
		}
		_ = ghost.Close()
		if got := dialStatus(urls[0], nil); got != 429 {
			t.Fatalf("a handshake beside a dead node's reservation: %d, want 429", got)
		}
		dialWhenFree(t, urls[1], "a handshake once the dead node's reservation expired")
	})
}

// TestUserLimitHandshakeOutlivesReservation: a handshake that took longer
// than its reservation lives renews it before it registers, and is refused
// when another handshake took the user's slot meanwhile.
func TestUserLimitHandshakeOutlivesReservation(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, userLimitYAML(b, true, "limits: {max_connections_per_user: 1}"))
	g.SetUserSlotTTL(200 * time.Millisecond)
	release := holdFirstConnect(b)
	status := make(chan int, 1)
	u := userURL(t, g, "alice")
	go func() { status <- dialStatus(u, nil) }()
	stalled := b.ConnectionID(t, "/connect", 0)
	dialWhenFree(t, u, "a handshake once the stalled one's reservation expired")
	close(release)
	if got := <-status; got != 429 {
		t.Fatalf("the stalled handshake: %d, want 429", got)
	}
	dis := b.WaitEvent(t, "/disconnect", func(e gt.Event) bool { return e.RequestContext.ConnectionID == stalled })
	if dis.RequestContext.DisconnectStatusCode != 4008 {
		t.Fatalf("$disconnect of the refused handshake: code %d, want 4008", dis.RequestContext.DisconnectStatusCode)
	}
	gt.Eventually(t, func() bool { return userCount(t, g)() == 1 }, "alice to hold one connection")
}

// TestClusterUserLimitCloseOldestDuringHandshake: with close_oldest, a
// connection closed for its user's limit before its handshake completed is
// closed once it opens, with 4008, even if it refreshes its token at once.
func TestClusterUserLimitCloseOldestDuringHandshake(t *testing.T) {
	eachEngine(t, func(t *testing.T, newEngine func() cluster.Engine) {
		b := gt.NewBackend(t)
		gs, urls := startLimitCluster(t, b, true, "limits: {max_connections_per_user: 1, user_limit_policy: close_oldest}", newEngine)
		release := holdFirstConnect(b)
		// The first handshake starts first and finishes last: in the
		// registry's order it is the older one, or the newer one.
		first := make(chan *websocket.Conn, 1)
		go func() {
			c, _, err := gt.TryDial(urls[0], nil)
			if err != nil {
				t.Errorf("first handshake: %v", err)
			}
			first <- c
		}()
		b.WaitEvent(t, "/connect", nil)
		c2, _, err := gt.TryDial(urls[1], nil)
		if err != nil {
			t.Fatal(err)
		}
		second := watch(t, c2)
		close(release)
		c1 := <-first
		if c1 == nil {
			t.FailNow()
		}
		firstConn := watch(t, c1)
		refresh := fmt.Sprintf(`{"action":"$refresh","token":%q}`, mint(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(2 * time.Hour).Unix()}))
		for _, c := range []*watchedConn{firstConn, second} {
			_ = c.Write(context.Background(), websocket.MessageText, []byte(refresh))
		}
		gt.Eventually(t, func() bool { return firstConn.closed() || second.closed() }, "one of the two to close")
		closed, open := firstConn, second
		if second.closed() {
			closed, open = second, firstConn
		}
		if closed.code != 4008 {
			t.Fatalf("closed with %d, want 4008", closed.code)
		}
		if !open.answers(t) {
			t.Fatal("the newest connection closed too")
		}
		gt.Eventually(t, func() bool { return userCount(t, gs[2])() == 1 }, "alice to hold one connection")
	})
}
