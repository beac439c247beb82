package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/natsregistry"
	"github.com/wsgate/wsgate/internal/redisregistry"
	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// clusterConfig is jwtConfig with heartbeats fast enough for a test, and a
// node timeout short enough that tests of lost nodes end quickly.
func clusterConfig(t *testing.T, b *gt.Backend) *config.Config {
	return clusterConfigTimeout(t, b, 300*time.Millisecond)
}

// clusterConfigTimeout is clusterConfig with registry.node_timeout set to
// nodeTimeout.
func clusterConfigTimeout(t *testing.T, b *gt.Backend, nodeTimeout time.Duration) *config.Config {
	t.Helper()
	reg := fmt.Sprintf("registry: {heartbeat_interval: 50ms, node_timeout: %v}", nodeTimeout)
	cfg, err := config.Parse("test.yaml", []byte(jwtConfig(b, reg)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// engines makes, for each kind of engine, a function that returns a new
// node's client of one shared engine: the in-process network, a
// redis-server and an embedded nats-server started for the test.
var engines = map[string]func(t *testing.T) func() cluster.Engine{
	"memory": func(t *testing.T) func() cluster.Engine {
		net := cluster.NewMemoryNetwork()
		return func() cluster.Engine { return net.Engine() }
	},
	"redis": func(t *testing.T) func() cluster.Engine {
		srv := servicetest.Redis(t)
		return func() cluster.Engine {
			e, err := redisregistry.New(redisregistry.Config{URL: srv.URL(), Prefix: "test"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
	},
	"nats": func(t *testing.T) func() cluster.Engine {
		srv := servicetest.NATS(t)
		return func() cluster.Engine {
			e, err := natsregistry.New(natsregistry.Config{URL: srv.URL(), Prefix: "test"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
	},
}

// eachEngine runs f once per kind of engine.
func eachEngine(t *testing.T, f func(t *testing.T, newEngine func() cluster.Engine)) {
	for _, name := range []string{"memory", "redis", "nats"} {
		t.Run(name, func(t *testing.T) { f(t, engines[name](t)) })
	}
}

// startCluster starts n gateways as nodes of one cluster.
func startCluster(t *testing.T, b *gt.Backend, n int, newEngine func() cluster.Engine) []*gt.Gateway {
	t.Helper()
	return startClusterTimeout(t, b, n, newEngine, 300*time.Millisecond)
}

// startClusterTimeout is startCluster with registry.node_timeout set to
// nodeTimeout.
func startClusterTimeout(t *testing.T, b *gt.Backend, n int, newEngine func() cluster.Engine, nodeTimeout time.Duration) []*gt.Gateway {
	t.Helper()
	var gs []*gt.Gateway
	for range n {
		gs = append(gs, gt.StartNode(t, clusterConfigTimeout(t, b, nodeTimeout), newEngine()))
	}
	for _, g := range gs {
		gt.Eventually(t, func() bool {
			status, _, _ := g.MgmtDo(t, "GET", "/readyz", nil, nil)
			return status == 200
		}, "node ready")
	}
	return gs
}

// TestClusterManagementAcrossNodes calls every management operation on one
// node for connections that live on the others.
func TestClusterManagementAcrossNodes(t *testing.T) {
	eachEngine(t, testManagementAcrossNodes)
}

func testManagementAcrossNodes(t *testing.T, newEngine func() cluster.Engine) {
	b := gt.NewBackend(t)
	g := startCluster(t, b, 3, newEngine)
	alice0 := dialUser(t, g[0], b, "alice", 0, nil)
	alice1 := dialUser(t, g[1], b, "alice", 1, nil)
	bob2 := dialUser(t, g[2], b, "bob", 2, nil)
	esc := url.PathEscape

	// One connection, from each of the other nodes.
	for i, via := range []*gt.Gateway{g[1], g[2]} {
		msg := fmt.Sprintf("to alice0 via node %d", i+1)
		mgmtJSON(t, via, "POST", "/@connections/"+esc(alice0.ID), msg, 200, nil)
		if got := alice0.NextText(); got != msg {
			t.Fatalf("alice0 got %q, want %q", got, msg)
		}
	}
	var info struct {
		ConnectedAt  string `json:"connectedAt"`
		LastActiveAt string `json:"lastActiveAt"`
		Identity     struct {
			SourceIP string `json:"sourceIp"`
		} `json:"identity"`
	}
	// Times have millisecond resolution: bob talks until his lastActiveAt,
	// read through another node, moves past his connectedAt.
	gt.Eventually(t, func() bool {
		bob2.Send(`{"action":"nothing"}`)
		if got := bob2.NextText(); got == "" {
			t.Fatal("no echo")
		}
		mgmtJSON(t, g[0], "GET", "/@connections/"+esc(bob2.ID), "", 200, &info)
		if info.Identity.SourceIP != "127.0.0.1" || info.ConnectedAt == "" {
			t.Fatalf("GetConnection across nodes = %+v", info)
		}
		return info.LastActiveAt > info.ConnectedAt
	}, "lastActiveAt after bob's messages, through another node")

	// A user with connections on two nodes, reached from the third.
	var res struct{ Delivered int }
	mgmtJSON(t, g[2], "POST", "/@users/alice", "hi alice", 200, &res)
	if res.Delivered != 2 || alice0.NextText() != "hi alice" || alice1.NextText() != "hi alice" {
		t.Fatalf("POST /@users/alice delivered %d", res.Delivered)
	}
	var list struct {
		Connections []struct {
			ConnectionID string `json:"connectionId"`
		} `json:"connections"`
	}
	mgmtJSON(t, g[2], "GET", "/@users/alice", "", 200, &list)
	if len(list.Connections) != 2 || list.Connections[0].ConnectionID != alice0.ID || list.Connections[1].ConnectionID != alice1.ID {
		t.Fatalf("GET /@users/alice = %+v, want alice0 then alice1", list)
	}

	// Topics: subscriptions made through any node, publication from any.
	mgmtJSON(t, g[0], "PUT", "/@connections/"+esc(bob2.ID)+"/topics/orders/42", "", 204, nil)
	mgmtJSON(t, g[2], "PUT", "/@connections/"+esc(alice1.ID)+"/topics/orders/42", "", 204, nil)
	var count struct{ Subscribers int }
	mgmtJSON(t, g[0], "GET", "/@topics/orders/42", "", 200, &count)
	if count.Subscribers != 2 {
		t.Fatalf("subscribers %d, want 2", count.Subscribers)
	}
	mgmtJSON(t, g[0], "POST", "/@topics/orders/42", "order 42 shipped", 200, &res)
	if res.Delivered != 2 || bob2.NextText() != "order 42 shipped" || alice1.NextText() != "order 42 shipped" {
		t.Fatalf("publish delivered %d", res.Delivered)
	}
	mgmtJSON(t, g[0], "DELETE", "/@connections/"+esc(alice1.ID)+"/topics/orders/42", "", 204, nil)
	mgmtJSON(t, g[1], "POST", "/@topics/orders/42", "second", 200, &res)
	if res.Delivered != 1 || bob2.NextText() != "second" {
		t.Fatalf("publish after unsubscribe delivered %d", res.Delivered)
	}

	// A batch mixing targets on every node.
	batch, _ := json.Marshal(map[string]any{"items": []map[string]string{
		{"connectionId": alice0.ID, "data": "b0"},
		{"connectionId": bob2.ID, "data": "b1"},
		{"connectionId": "nobody=", "data": "b2"},
		{"principalId": "alice", "data": "b3"},
		{"topic": "orders/42", "data": "b4"},
	}})
	var results struct {
		Results []struct {
			Status    int
			Delivered int
		}
	}
	mgmtJSON(t, g[1], "POST", "/@batch", string(batch), 200, &results)
	var statuses []string
	for _, r := range results.Results {
		statuses = append(statuses, fmt.Sprintf("%d/%d", r.Status, r.Delivered))
	}
	if strings.Join(statuses, " ") != "200/1 200/1 410/0 200/2 200/1" {
		t.Fatalf("batch results %v", statuses)
	}
	for c, want := range map[*gt.Client][]string{alice0: {"b0", "b3"}, alice1: {"b3"}, bob2: {"b1", "b4"}} {
		for _, w := range want {
			if got := c.NextText(); got != w {
				t.Fatalf("%s got %q, want %q", c.ID, got, w)
			}
		}
	}

	// DELETE with a code, across nodes; then the connection is gone
	// everywhere.
	mgmtJSON(t, g[0], "DELETE", "/@connections/"+esc(bob2.ID)+"?code=4000&reason=bye", "", 204, nil)
	bob2.ExpectClose(4000)
	dis := b.WaitEvent(t, "/disconnect", func(e gt.Event) bool { return e.RequestContext.ConnectionID == bob2.ID })
	if dis.RequestContext.DisconnectStatusCode != 4000 {
		t.Fatalf("$disconnect code %d", dis.RequestContext.DisconnectStatusCode)
	}
	for _, g := range g {
		gt.Eventually(t, func() bool {
			status, _, _ := g.MgmtDo(t, "POST", "/@connections/"+esc(bob2.ID), strings.NewReader("x"), nil)
			return status == 410
		}, "410 for a closed connection")
	}
	mgmtJSON(t, g[1], "GET", "/@topics/orders/42", "", 200, &count)
	if count.Subscribers != 0 {
		t.Fatalf("a closed connection is still subscribed: %d", count.Subscribers)
	}
}

// TestClusterUserLimitAcrossNodes: max_connections_per_user counts the
// user's connections on every node, and close_oldest closes the oldest
// wherever it is.
func TestClusterUserLimitAcrossNodes(t *testing.T) {
	b := gt.NewBackend(t)
	net := cluster.NewMemoryNetwork()
	var g []*gt.Gateway
	for range 2 {
		cfg := clusterConfig(t, b)
		cfg.Limits.MaxConnectionsPerUser = 1
		cfg.Limits.UserLimitPolicy = config.CloseOldest
		g = append(g, gt.StartNode(t, cfg, net.Engine()))
	}
	first := dialUser(t, g[0], b, "carol", 0, nil)
	dialUser(t, g[1], b, "carol", 1, nil)
	first.ExpectClose(4008)
}

// TestClusterLostNode: a node that stops heartbeating is declared lost; the
// survivors answer 410 for its connections and deliver a $disconnect (1006,
// naming the node) for every one of them, retrying while the backend
// fails.
func TestClusterLostNode(t *testing.T) {
	eachEngine(t, testLostNode)
}

func testLostNode(t *testing.T, newEngine func() cluster.Engine) {
	b := gt.NewBackend(t)
	var failures atomic.Int32
	b.On("/disconnect", func(e gt.Event) gt.Reply {
		// The first event fails; the cluster must deliver it again.
		if failures.Add(1) == 1 {
			return gt.Reply{Status: 503}
		}
		return gt.Reply{}
	})
	g := startCluster(t, b, 2, newEngine)
	observer := newEngine()
	defer observer.Close()

	// A node that registered connections and heartbeat, then vanished as a
	// process killed with SIGKILL does: no close, no $disconnect.
	ghost := newEngine()
	ctx := context.Background()
	if err := ghost.Listen("ghost", silent{}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 5 {
		rec := registry.Record{
			ConnectionID: fmt.Sprintf("ghost-conn-%d=", i),
			NodeID:       "ghost",
			PrincipalID:  "dave",
			ConnectedAt:  time.Now().Add(-time.Minute),
			SourceIP:     "198.51.100.7",
			UserAgent:    "ghost-client/1",
			DomainName:   "ws.example.com",
			Authorizer:   map[string]any{"principalId": "dave", "role": "reader"},
		}
		if err := ghost.Register(ctx, rec); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ConnectionID)
	}
	if _, err := ghost.Heartbeat(ctx, "ghost"); err != nil {
		t.Fatal(err)
	}
	_ = ghost.Close()

	// Its connections are gone once the survivors notice; until then a
	// call may answer 503, never anything else.
	gt.Eventually(t, func() bool {
		status, _, body := g[0].MgmtDo(t, "POST", "/@connections/"+url.PathEscape(ids[0]), strings.NewReader("x"), nil)
		if status != 410 && status != 503 {
			t.Fatalf("POST to a lost node's connection: %d %s", status, body)
		}
		return status == 410
	}, "410 for a lost node's connection")

	// Every one of them gets its $disconnect, the failed one again.
	var seen []string
	gt.Eventually(t, func() bool {
		seen = seen[:0]
		for _, e := range b.Events("/disconnect") {
			rc := e.RequestContext
			if rc.DisconnectStatusCode != 1006 || rc.DisconnectReason == nil || *rc.DisconnectReason != "node ghost lost" {
				t.Fatalf("$disconnect code %d reason %v, want 1006 \"node ghost lost\"", rc.DisconnectStatusCode, rc.DisconnectReason)
			}
			if rc.Authorizer.(map[string]any)["role"] != "reader" || rc.Identity.SourceIP != "198.51.100.7" || e.Headers["Host"] != "ws.example.com" {
				t.Fatalf("$disconnect lost the connection's context: %s", e.Raw)
			}
			if !slices.Contains(seen, rc.ConnectionID) {
				seen = append(seen, rc.ConnectionID)
			}
		}
		// The failed call is recorded too: one more call than
		// connections shows it was delivered again.
		return len(seen) == len(ids) && failures.Load() == int32(len(ids))+1
	}, "a $disconnect for each of the lost node's connections, the failed one again")
	gt.Eventually(t, func() bool {
		var list struct{ Connections []any }
		mgmtJSON(t, g[1], "GET", "/@users/dave", "", 200, &list)
		recs, _ := observer.UserConnections(ctx, "dave")
		return len(list.Connections) == 0 && len(recs) == 0
	}, "the lost node's connections leave the registry")
	gt.Eventually(t, func() bool {
		nodes, _ := observer.Nodes(ctx)
		_, present := nodes["ghost"]
		return !present
	}, "the lost node is forgotten")
}

// silent is a node's handler that never gets to answer.
type silent struct{}

func (silent) HandleRequest([]byte) []byte  { return nil }
func (silent) HandlePublish(string, []byte) {}

// countingEngine counts the topic publications its node receives.
type countingEngine struct {
	cluster.Engine
	publications atomic.Int32
}

func (e *countingEngine) Listen(node string, h cluster.Handler) error {
	return e.Engine.Listen(node, countingHandler{h, e})
}

type countingHandler struct {
	cluster.Handler
	e *countingEngine
}

func (h countingHandler) HandlePublish(topic string, msg []byte) {
	h.e.publications.Add(1)
	h.Handler.HandlePublish(topic, msg)
}

// TestClusterTopicTrafficOnlyToInterestedNodes: a publication reaches the
// nodes that hold subscribers, once each, and no other node.
func TestClusterTopicTrafficOnlyToInterestedNodes(t *testing.T) {
	eachEngine(t, func(t *testing.T, newEngine func() cluster.Engine) {
		b := gt.NewBackend(t)
		var engs []*countingEngine
		var g []*gt.Gateway
		for range 3 {
			e := &countingEngine{Engine: newEngine()}
			engs = append(engs, e)
			g = append(g, gt.StartNode(t, clusterConfig(t, b), e))
		}
		subs := []*gt.Client{dialUser(t, g[1], b, "u1", 0, nil), dialUser(t, g[1], b, "u2", 1, nil)}
		for _, c := range subs {
			mgmtJSON(t, g[0], "PUT", "/@connections/"+url.PathEscape(c.ID)+"/topics/news", "", 204, nil)
		}
		var res struct{ Delivered int }
		mgmtJSON(t, g[0], "POST", "/@topics/news", "extra", 200, &res)
		for _, c := range subs {
			if got := c.NextText(); got != "extra" {
				t.Fatalf("subscriber got %q", got)
			}
		}
		if res.Delivered != 2 {
			t.Fatalf("delivered %d, want 2", res.Delivered)
		}
		if n := engs[1].publications.Load(); n != 1 {
			t.Fatalf("the subscribers' node received the publication %d times, want once", n)
		}
		// A node with no subscriber, and the publishing node, get nothing:
		// a later publication on a topic node 2 subscribes to shows that
		// node 2 is listening, and still counts only that one.
		other := dialUser(t, g[2], b, "u3", 2, nil)
		mgmtJSON(t, g[0], "PUT", "/@connections/"+url.PathEscape(other.ID)+"/topics/sport", "", 204, nil)
		mgmtJSON(t, g[0], "POST", "/@topics/sport", "goal", 200, nil)
		if got := other.NextText(); got != "goal" {
			t.Fatalf("node 2's subscriber got %q", got)
		}
		if n := engs[2].publications.Load(); n != 1 {
			t.Fatalf("node 2 received %d publications, want only the one for its subscriber", n)
		}
		if n := engs[0].publications.Load(); n != 0 {
			t.Fatalf("the publishing node, with no subscribers, received %d publications", n)
		}
	})
}

// restartable is a test engine server that can be stopped and started again
// on the same address.
type restartable interface {
	URL() string
	Stop()
	Start()
}

// TestClusterEngineRestart: while Redis or NATS is down, connections stay
// up, local delivery works, calls that need the engine answer 503 and
// /readyz says so; once it is back, the nodes register their connections
// and subscriptions again and every call works across nodes.
func TestClusterEngineRestart(t *testing.T) {
	servers := map[string]func(t *testing.T) (restartable, func() cluster.Engine){
		"redis": func(t *testing.T) (restartable, func() cluster.Engine) {
			srv := servicetest.Redis(t)
			return srv, func() cluster.Engine {
				e, err := redisregistry.New(redisregistry.Config{URL: srv.URL(), Prefix: "restart"}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
		},
		"nats": func(t *testing.T) (restartable, func() cluster.Engine) {
			srv := servicetest.NATS(t)
			return srv, func() cluster.Engine {
				e, err := natsregistry.New(natsregistry.Config{URL: srv.URL(), Prefix: "restart"}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
		},
	}
	for _, name := range []string{"redis", "nats"} {
		t.Run(name, func(t *testing.T) {
			srv, newEngine := servers[name](t)
			b := gt.NewBackend(t)
			// The default node_timeout: a node is declared lost only when
			// it stays silent that long after the others reached the
			// engine again, and on a loaded machine one node's reconnect
			// can lag the other's by more than a test's 300ms.
			g := startClusterTimeout(t, b, 2, newEngine, 5*time.Second)
			a := dialUser(t, g[0], b, "ann", 0, nil)
			bo := dialUser(t, g[1], b, "ben", 1, nil)
			mgmtJSON(t, g[0], "PUT", "/@connections/"+url.PathEscape(bo.ID)+"/topics/alerts", "", 204, nil)

			srv.Stop()
			for _, gw := range g {
				gt.Eventually(t, func() bool {
					status, _, _ := gw.MgmtDo(t, "GET", "/readyz", nil, nil)
					return status == 503
				}, "/readyz 503 while the engine is down")
			}
			mgmtJSON(t, g[0], "POST", "/@connections/"+url.PathEscape(a.ID), "local while down", 200, nil)
			if got := a.NextText(); got != "local while down" {
				t.Fatalf("local delivery while the engine is down: %q", got)
			}
			h := mgmtJSON(t, g[0], "POST", "/@connections/"+url.PathEscape(bo.ID), "remote while down", 503, nil)
			if h.Get("X-Amzn-ErrorType") != "ServiceUnavailableException" {
				t.Fatalf("error type %q", h.Get("X-Amzn-ErrorType"))
			}
			mgmtJSON(t, g[1], "GET", "/@users/ann", "", 503, nil)

			srv.Start()
			for _, gw := range g {
				gt.Eventually(t, func() bool {
					status, _, _ := gw.MgmtDo(t, "GET", "/readyz", nil, nil)
					return status == 200
				}, "/readyz 200 once the engine is back")
			}
			// Registrations come back with the nodes' next heartbeats.
			gt.Eventually(t, func() bool {
				var list struct{ Connections []any }
				mgmtJSON(t, g[1], "GET", "/@users/ann", "", 200, &list)
				var count struct{ Subscribers int }
				mgmtJSON(t, g[0], "GET", "/@topics/alerts", "", 200, &count)
				return len(list.Connections) == 1 && count.Subscribers == 1
			}, "connections and subscriptions registered again")
			mgmtJSON(t, g[0], "POST", "/@connections/"+url.PathEscape(bo.ID), "remote again", 200, nil)
			if got := bo.NextText(); got != "remote again" {
				t.Fatalf("ben got %q", got)
			}
			var res struct{ Delivered int }
			mgmtJSON(t, g[0], "POST", "/@topics/alerts", "alert", 200, &res)
			if got := bo.NextText(); got != "alert" || res.Delivered != 1 {
				t.Fatalf("publication after the restart: %q, delivered %d", got, res.Delivered)
			}
			for _, e := range b.Events("/disconnect") {
				t.Fatalf("a connection was lost during the outage: %s", e.RequestContext.ConnectionID)
			}
		})
	}
}
