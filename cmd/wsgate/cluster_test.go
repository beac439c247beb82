package main_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// These tests run the cluster as it is deployed: three `wsgate serve`
// processes of the built binary sharing a real redis-server (or, for one
// test, an embedded nats-server) as their registry.
// internal/gateway/cluster_test.go runs the same logic in one process on
// each engine.

// TestClusterProcessesManagementAcrossNodes calls every management
// operation on a node that does not hold the connection, user or
// subscriber it is about.
func TestClusterProcessesManagementAcrossNodes(t *testing.T) {
	c := startGatewayCluster(t, 3, "limits: {max_connections_per_user: 2, user_limit_policy: close_oldest}\n")

	alice0 := c.dial(t, 0, "alice", "alice0")
	waitPastMilli(t, alice0.connectedAt)
	alice1 := c.dial(t, 1, "alice", "alice1")
	bob2 := c.dial(t, 2, "bob", "bob2")

	// PostToConnection from each node that does not hold it.
	for _, via := range []int{1, 2} {
		msg := fmt.Sprintf("to alice0 via node %d", via)
		c.mustCall(t, via, "POST", connPath(alice0.id), msg, 200, nil)
		alice0.expectNext(t, msg)
	}

	// GetConnection from another node: bob's times and identity, and a
	// lastActiveAt that moves when he sends a message.
	var info connInfo
	c.mustCall(t, 0, "GET", connPath(bob2.id), "", 200, &info)
	if got := isoMillis(t, info.ConnectedAt); got != bob2.connectedAt {
		t.Fatalf("GetConnection via node 0: connectedAt %s (%d), want %d as in the $connect event", info.ConnectedAt, got, bob2.connectedAt)
	}
	if info.Identity.SourceIP != "127.0.0.1" || info.Identity.UserAgent != userAgent("bob2") {
		t.Fatalf("GetConnection via node 0: identity %+v, want 127.0.0.1 and %q", info.Identity, userAgent("bob2"))
	}
	before := isoMillis(t, info.LastActiveAt)
	if before < bob2.connectedAt {
		t.Fatalf("lastActiveAt %s before connectedAt %s", info.LastActiveAt, info.ConnectedAt)
	}
	// Activity is kept in milliseconds: send until one lands in a later
	// millisecond than the last (the first one practically always does).
	n := 0
	waitUntil(t, 10*time.Second, func() bool {
		n++
		msg := fmt.Sprintf(`{"action":"ping","n":%d}`, n)
		if err := writeText(bob2, msg); err != nil {
			t.Fatalf("bob2 write: %v", err)
		}
		bob2.expectNext(t, msg) // the $default route echoes it
		var after connInfo
		c.mustCall(t, 1, "GET", connPath(bob2.id), "", 200, &after)
		if after.ConnectedAt != info.ConnectedAt {
			t.Fatalf("connectedAt changed from %s to %s", info.ConnectedAt, after.ConnectedAt)
		}
		return isoMillis(t, after.LastActiveAt) > before
	}, "lastActiveAt of bob2, read via node 1, to move after his messages")
	c.backend.WaitEvent(t, "/default", func(e gt.Event) bool { return e.RequestContext.ConnectionID == bob2.id })

	// A user with connections on nodes 0 and 1, reached from node 2.
	var delivered struct{ Delivered int }
	c.mustCall(t, 2, "POST", "/@users/alice", "hi alice", 200, &delivered)
	if delivered.Delivered != 2 {
		t.Fatalf("POST /@users/alice via node 2 delivered %d, want 2", delivered.Delivered)
	}
	alice0.expectNext(t, "hi alice")
	alice1.expectNext(t, "hi alice")
	c.mustCall(t, 0, "POST", "/@users/bob", "hi bob", 200, &delivered)
	if delivered.Delivered != 1 {
		t.Fatalf("POST /@users/bob via node 0 delivered %d, want 1", delivered.Delivered)
	}
	bob2.expectNext(t, "hi bob")
	for i := range c.nodes {
		var list userInfo
		c.mustCall(t, i, "GET", "/@users/alice", "", 200, &list)
		if list.PrincipalID != "alice" || !slices.Equal(list.ids(), ids(alice0, alice1)) {
			t.Fatalf("GET /@users/alice via node %d = %+v, want alice0 %s then alice1 %s", i, list, alice0.id, alice1.id)
		}
		for k, cl := range []*wsClient{alice0, alice1} {
			got := list.Connections[k]
			if isoMillis(t, got.ConnectedAt) != cl.connectedAt || got.Identity.UserAgent != userAgent(cl.name) {
				t.Fatalf("GET /@users/alice via node %d: %s has connectedAt %s, identity %+v", i, cl.name, got.ConnectedAt, got.Identity)
			}
		}
	}

	// Topics: each connection subscribed through a node that does not
	// hold it, the publication sent from yet another.
	const topic = "orders/42"
	c.mustCall(t, 1, "PUT", connPath(alice0.id)+"/topics/"+topic, "", 204, nil)
	c.mustCall(t, 2, "PUT", connPath(alice1.id)+"/topics/"+topic, "", 204, nil)
	c.mustCall(t, 0, "PUT", connPath(bob2.id)+"/topics/"+topic, "", 204, nil)
	c.mustCall(t, 0, "PUT", connPath(bob2.id)+"/topics/"+topic, "", 204, nil) // twice is fine
	requireSubscribers(t, c, topic, 3)
	c.mustCall(t, 0, "POST", "/@topics/"+topic, "order 42 shipped", 200, &delivered)
	if delivered.Delivered != 3 {
		t.Fatalf("POST /@topics/%s via node 0 delivered %d, want 3", topic, delivered.Delivered)
	}
	for _, cl := range []*wsClient{alice0, alice1, bob2} {
		cl.expectNext(t, "order 42 shipped")
	}
	// alice1 (node 1) unsubscribed through node 0, which neither holds her
	// nor subscribed her.
	c.mustCall(t, 0, "DELETE", connPath(alice1.id)+"/topics/"+topic, "", 204, nil)
	requireSubscribers(t, c, topic, 2)
	// Published from alice1's own node: its local subscribers get it before
	// the call returns, so if she were still one, "second" would come
	// before the message that follows.
	c.mustCall(t, 1, "POST", "/@topics/"+topic, "second", 200, &delivered)
	if delivered.Delivered != 2 {
		t.Fatalf("POST /@topics/%s via node 1 after an unsubscribe delivered %d, want 2", topic, delivered.Delivered)
	}
	alice0.expectNext(t, "second")
	bob2.expectNext(t, "second")
	c.mustCall(t, 1, "POST", connPath(alice1.id), "after unsubscribe", 200, nil)
	alice1.expectNext(t, "after unsubscribe")

	// A batch with connection, user and topic items for every node.
	batch, _ := json.Marshal(map[string]any{"items": []map[string]string{
		{"connectionId": alice0.id, "data": "b0"},
		{"connectionId": bob2.id, "data": "b1"},
		{"connectionId": alice1.id, "data": "b2"},
		{"connectionId": "AAAAAAAAAAAAAAA=", "data": "b3"},
		{"principalId": "alice", "data": "b4"},
		{"principalId": "nobody", "data": "b5"},
		{"topic": topic, "data": "b6"},
		{"connectionId": bob2.id, "dataBase64": base64.StdEncoding.EncodeToString([]byte("b7"))},
	}})
	var results struct {
		Results []struct {
			Status    int    `json:"status"`
			Delivered int    `json:"delivered"`
			Error     string `json:"error"`
		} `json:"results"`
	}
	c.mustCall(t, 1, "POST", "/@batch", string(batch), 200, &results)
	var got []string
	for _, r := range results.Results {
		got = append(got, fmt.Sprintf("%d/%d/%s", r.Status, r.Delivered, r.Error))
	}
	want := []string{"200/1/", "200/1/", "200/1/", "410/0/GoneException", "200/2/", "410/0/GoneException", "200/2/", "200/1/"}
	if !slices.Equal(got, want) {
		t.Fatalf("POST /@batch via node 1: results %q, want %q", got, want)
	}
	alice0.expectSet(t, "b0", "b4", "b6")
	alice1.expectSet(t, "b2", "b4")
	bob2.expectSet(t, "b1", "b6", "b7")

	// DeleteConnection with a code through another node; afterwards every
	// node answers 410 for it.
	c.mustCall(t, 0, "DELETE", connPath(bob2.id)+"?code=4000&reason=bye", "", 204, nil)
	bob2.expectClose(t, 4000, "bye")
	dis := c.backend.WaitEvent(t, "/disconnect", func(e gt.Event) bool { return e.RequestContext.ConnectionID == bob2.id })
	if rc := dis.RequestContext; rc.DisconnectStatusCode != 4000 || rc.DisconnectReason == nil || *rc.DisconnectReason != "bye" {
		t.Fatalf("$disconnect of bob2: %s, want code 4000 reason bye", dis.Raw)
	}
	for i := range c.nodes {
		for _, call := range [][2]string{{"POST", connPath(bob2.id)}, {"GET", connPath(bob2.id)}, {"DELETE", connPath(bob2.id)}, {"PUT", connPath(bob2.id) + "/topics/" + topic}} {
			var r mgmtResult
			waitUntil(t, 10*time.Second, func() bool {
				r = c.call(t, i, call[0], call[1], "x")
				return r.Status != 200 && r.Status != 204
			}, "node %d to stop accepting %s %s", i, call[0], call[1])
			if r.Status != http.StatusGone || r.ErrType != "GoneException" {
				t.Fatalf("node %d: %s %s for a deleted connection answered %v, want 410 GoneException", i, call[0], call[1], r)
			}
		}
		var list userInfo
		c.mustCall(t, i, "GET", "/@users/bob", "", 200, &list)
		if len(list.Connections) != 0 {
			t.Fatalf("GET /@users/bob via node %d after his only connection closed: %+v", i, list)
		}
	}
	requireSubscribers(t, c, topic, 1)
	c.mustCall(t, 2, "POST", "/@users/bob", "anyone?", 410, nil)

	// max_connections_per_user: 2 with close_oldest counts the user's
	// connections on every node: carol's third connection, on node 2,
	// closes her oldest, on node 0.
	carol0 := c.dial(t, 0, "carol", "carol0")
	waitPastMilli(t, carol0.connectedAt)
	carol1 := c.dial(t, 1, "carol", "carol1")
	waitPastMilli(t, carol1.connectedAt)
	carol2 := c.dial(t, 2, "carol", "carol2")
	carol0.expectClose(t, 4008, "too many connections for this user")
	dis = c.backend.WaitEvent(t, "/disconnect", func(e gt.Event) bool { return e.RequestContext.ConnectionID == carol0.id })
	if dis.RequestContext.DisconnectStatusCode != 4008 {
		t.Fatalf("$disconnect of carol0: %s, want code 4008", dis.Raw)
	}
	waitUntil(t, 10*time.Second, func() bool {
		var list userInfo
		c.mustCall(t, 0, "GET", "/@users/carol", "", 200, &list)
		return slices.Equal(list.ids(), ids(carol1, carol2))
	}, "GET /@users/carol to list carol1 then carol2")
	c.mustCall(t, 0, "POST", "/@users/carol", "hi carol", 200, &delivered)
	if delivered.Delivered != 2 {
		t.Fatalf("POST /@users/carol delivered %d, want 2", delivered.Delivered)
	}
	carol1.expectNext(t, "hi carol")
	carol2.expectNext(t, "hi carol")
	requireOpen(t, alice0, alice1, carol1, carol2)
	c.requireNoDisconnect(t, alice0, alice1, carol1, carol2)
}

// requireSubscribers requires every node to count n subscribers of topic.
func requireSubscribers(t *testing.T, c *gatewayCluster, topic string, n int) {
	t.Helper()
	for i := range c.nodes {
		var count struct {
			Topic       string `json:"topic"`
			Subscribers int    `json:"subscribers"`
		}
		c.mustCall(t, i, "GET", "/@topics/"+topic, "", 200, &count)
		if count.Topic != topic || count.Subscribers != n {
			t.Fatalf("GET /@topics/%s via node %d = %+v, want %d subscribers", topic, i, count, n)
		}
	}
}

// TestClusterProcessesNodeKilled: a node killed with SIGKILL sends nothing;
// the survivors notice its heartbeat stopped, deliver a $disconnect (1006,
// "node <id> lost") for every one of its connections, and answer 410 for
// them, while their own connections carry on.
func TestClusterProcessesNodeKilled(t *testing.T) {
	c := startGatewayCluster(t, 3, "")
	const lostCount, surviving = 50, 5
	var lost, survivors []*wsClient
	for k := range lostCount {
		lost = append(lost, c.dialNoID(t, 2, "crowd", fmt.Sprintf("lost%d", k)))
	}
	for k := range surviving {
		for _, i := range []int{0, 1} {
			survivors = append(survivors, c.dialNoID(t, i, "crowd", fmt.Sprintf("node%d-%d", i, k)))
		}
	}
	all := append(slices.Clone(lost), survivors...)
	c.identify(t, all...)

	// Everyone is registered: a push to the user reaches all of them.
	var delivered struct{ Delivered int }
	c.mustCall(t, 0, "POST", "/@users/crowd", "hello crowd", 200, &delivered)
	if delivered.Delivered != len(all) {
		t.Fatalf("POST /@users/crowd delivered %d, want %d", delivered.Delivered, len(all))
	}
	for _, cl := range all {
		cl.expectNext(t, "hello crowd")
	}

	node2 := c.nodes[2].proc
	if err := node2.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-node2.done
	waitUntil(t, 10*time.Second, func() bool {
		for _, cl := range lost {
			if !cl.closed() {
				return false
			}
		}
		return true
	}, "the killed node's clients to see their connections end")

	// Every one of the killed node's connections gets a $disconnect with
	// 1006 and the same "node <id> lost" reason.
	lostReason := regexp.MustCompile(`^node (\S+) lost$`)
	missing := ""
	waitUntil(t, 30*time.Second, func() bool {
		dis := c.disconnects()
		n := 0
		for _, cl := range lost {
			if len(dis[cl.id]) == 0 {
				n++
			}
		}
		missing = fmt.Sprint(n)
		return n == 0
	}, "a $disconnect for each of the %d connections of the killed node (%s missing)", lostCount, &missing)
	dis := c.disconnects()
	reason := ""
	for _, cl := range lost {
		e := dis[cl.id][0]
		rc := e.RequestContext
		if rc.DisconnectStatusCode != 1006 || rc.DisconnectReason == nil || !lostReason.MatchString(*rc.DisconnectReason) {
			t.Fatalf("$disconnect of %s: %s; want code 1006 and reason \"node <id> lost\"", cl.name, e.Raw)
		}
		if reason == "" {
			reason = *rc.DisconnectReason
		} else if *rc.DisconnectReason != reason {
			t.Fatalf("$disconnect reasons %q and %q: the connections of one node name two nodes", reason, *rc.DisconnectReason)
		}
		// The event is built from the registry record: it keeps the
		// connection's identity and authorizer context.
		if rc.Identity.UserAgent != userAgent(cl.name) || rc.ConnectedAt != cl.connectedAt || rc.EventType != "DISCONNECT" || rc.RouteKey != "$disconnect" {
			t.Fatalf("$disconnect of %s lost the connection's context: %s", cl.name, e.Raw)
		}
		if a, _ := rc.Authorizer.(map[string]any); a["principalId"] != "crowd" || a["role"] != "tester" {
			t.Fatalf("$disconnect of %s has authorizer %v, want principalId crowd and role tester", cl.name, rc.Authorizer)
		}
	}

	// Once a survivor reports the cleanup finished, each connection has
	// had exactly one $disconnect.
	waitUntil(t, 30*time.Second, func() bool {
		return strings.Contains(c.nodes[0].proc.stderr.String(), "lost node cleaned up") ||
			strings.Contains(c.nodes[1].proc.stderr.String(), "lost node cleaned up")
	}, "a survivor to log that the lost node is cleaned up")
	dis = c.disconnects()
	for _, cl := range lost {
		if len(dis[cl.id]) != 1 {
			t.Errorf("%d $disconnect events for %s (%s), want 1", len(dis[cl.id]), cl.name, cl.id)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The survivors answer 410 for all of them.
	for k, cl := range lost {
		r := c.call(t, k%2, "POST", connPath(cl.id), "anyone there?")
		if r.Status != http.StatusGone || r.ErrType != "GoneException" {
			t.Fatalf("node %d: POST to lost connection %s answered %v, want 410 GoneException", k%2, cl.name, r)
		}
	}

	// The survivors' own connections are untouched: listed, and reached
	// from either survivor.
	for i := range 2 {
		var list userInfo
		c.mustCall(t, i, "GET", "/@users/crowd", "", 200, &list)
		gotIDs, wantIDs := list.ids(), ids(survivors...)
		slices.Sort(gotIDs)
		slices.Sort(wantIDs)
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("GET /@users/crowd via node %d lists %d connections %v, want the %d survivors %v", i, len(gotIDs), gotIDs, len(wantIDs), wantIDs)
		}
		msg := fmt.Sprintf("still here, says node %d", i)
		c.mustCall(t, i, "POST", "/@users/crowd", msg, 200, &delivered)
		if delivered.Delivered != len(survivors) {
			t.Fatalf("POST /@users/crowd via node %d delivered %d, want %d", i, delivered.Delivered, len(survivors))
		}
		for _, cl := range survivors {
			cl.expectNext(t, msg)
		}
	}
	for _, cl := range survivors {
		via := 1 - cl.node
		msg := "direct via node " + fmt.Sprint(via)
		c.mustCall(t, via, "POST", connPath(cl.id), msg, 200, nil)
		cl.expectNext(t, msg)
	}
	requireOpen(t, survivors...)
	c.requireNoDisconnect(t, survivors...)
	for i := range 2 {
		c.waitReadyz(t, i, http.StatusOK)
	}
}

// TestClusterProcessesRedisRestart: while Redis is down every node reports
// not ready and answers 503 to calls that need Redis, quickly, but keeps
// its clients and delivers to its own connections; when Redis comes back
// empty, the nodes register their connections and subscriptions again, and
// no client was disconnected.
func TestClusterProcessesRedisRestart(t *testing.T) {
	engineRestart(t, startGatewayCluster(t, 3, ""))
}

// TestClusterProcessesNATSRestart is TestClusterProcessesRedisRestart on
// NATS, whose server comes back with its JetStream state.
func TestClusterProcessesNATSRestart(t *testing.T) {
	engineRestart(t, startGatewayClusterOn(t, "nats", 3, ""))
}

// engineRestart stops the engine under cluster c, checks what the nodes do
// without it and starts it again.
func engineRestart(t *testing.T, c *gatewayCluster) {
	var rita, sam []*wsClient
	for i := range c.nodes {
		rita = append(rita, c.dialNoID(t, i, "rita", fmt.Sprintf("rita%d", i)))
		sam = append(sam, c.dialNoID(t, i, "sam", fmt.Sprintf("sam%d", i)))
	}
	all := append(slices.Clone(rita), sam...)
	c.identify(t, all...)
	const topic = "news/today"
	for i, cl := range sam {
		c.mustCall(t, (i+1)%3, "PUT", connPath(cl.id)+"/topics/"+topic, "", 204, nil)
	}
	requireSubscribers(t, c, topic, 3)

	// Load: pushes to rita's connections, each from a node that does not
	// hold it, until the end of the test.
	load := startPusher(c, rita)
	t.Cleanup(load.stop)
	waitUntil(t, 10*time.Second, func() bool { return load.count(phaseBefore, 200) >= 20 }, "the load to get through")

	// Calls started from here on may meet the engine down.
	load.setPhase(phaseOutage)
	c.engine.Stop()
	stopped := time.Now()
	for i := range c.nodes {
		c.waitReadyz(t, i, http.StatusServiceUnavailable)
	}
	// Calls that need the engine answer 503 ServiceUnavailableException; the
	// client's timeout (10s) is far above the engine's (1s), so a call
	// that hung would fail as a transport error.
	for _, call := range []struct {
		node         int
		method, path string
	}{
		{0, "POST", connPath(rita[1].id)},
		{0, "GET", connPath(rita[2].id)},
		{1, "DELETE", connPath(rita[2].id)},
		{2, "PUT", connPath(sam[0].id) + "/topics/other"},
		{2, "DELETE", connPath(sam[0].id) + "/topics/" + topic},
		{1, "POST", "/@users/rita"},
		{2, "GET", "/@users/rita"},
		{0, "POST", "/@topics/" + topic},
		{1, "GET", "/@topics/" + topic},
	} {
		r := c.call(t, call.node, call.method, call.path, "during the outage")
		if r.Status != http.StatusServiceUnavailable || r.ErrType != "ServiceUnavailableException" {
			t.Errorf("engine down: node %d %s %s answered %v, want 503 ServiceUnavailableException", call.node, call.method, call.path, r)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// Local delivery needs no engine.
	for i, cl := range rita {
		msg := fmt.Sprintf("local delivery on node %d during the outage", i)
		c.mustCall(t, i, "POST", connPath(cl.id), msg, 200, nil)
		cl.waitFor(t, msg)
	}
	// A new client cannot be registered, so it is refused.
	if status := dialStatus(c, 0, "newcomer"); status != http.StatusServiceUnavailable {
		t.Fatalf("engine down: a new client got %d, want 503", status)
	}
	// Keep the engine down for several node timeouts, so that any node that
	// would take the others for lost has had the time to.
	waitUntil(t, 10*time.Second, func() bool {
		return time.Since(stopped) > 4*clusterNodeTimeout && load.count(phaseOutage, 503) >= 5
	}, "the outage to outlast the node timeout")
	requireOpen(t, all...)
	c.requireNoDisconnect(t, all...)

	c.engine.Start()
	load.setPhase(phaseRecovering)
	for i := range c.nodes {
		c.waitReadyz(t, i, http.StatusOK)
	}
	load.setPhase(phaseAfter)

	// Every node reaches every connection again, from a node that does not
	// hold it.
	for _, cl := range all {
		via := (cl.node + 2) % 3
		msg := fmt.Sprintf("after the outage to %s via node %d", cl.name, via)
		var r mgmtResult
		waitUntil(t, 10*time.Second, func() bool {
			r = c.call(t, via, "POST", connPath(cl.id), msg)
			return r.Status != http.StatusServiceUnavailable
		}, "POST to %s via node %d to stop answering 503", cl.name, via)
		if r.Status != http.StatusOK {
			t.Fatalf("after the engine came back and every node is ready: POST to live client %s (%s on node %d) via node %d answered %v, want 200", cl.name, cl.id, cl.node, via, r)
		}
		cl.waitFor(t, msg)
	}
	for i := range c.nodes {
		for _, u := range []struct {
			name    string
			clients []*wsClient
		}{{"rita", rita}, {"sam", sam}} {
			var list userInfo
			c.mustCall(t, i, "GET", "/@users/"+u.name, "", 200, &list)
			if !slices.Equal(list.ids(), ids(u.clients...)) {
				t.Fatalf("after the outage, GET /@users/%s via node %d lists %v, want %v", u.name, i, list.ids(), ids(u.clients...))
			}
		}
	}
	// Subscriptions made before the outage hold again, on every node.
	requireSubscribers(t, c, topic, 3)
	for i := range c.nodes {
		msg := fmt.Sprintf("news from node %d", i)
		var delivered struct{ Delivered int }
		c.mustCall(t, i, "POST", "/@topics/"+topic, msg, 200, &delivered)
		if delivered.Delivered != 3 {
			t.Fatalf("after the outage, POST /@topics/%s via node %d delivered %d, want 3", topic, i, delivered.Delivered)
		}
		for _, cl := range sam {
			cl.expectNext(t, msg)
		}
	}
	waitUntil(t, 10*time.Second, func() bool { return load.count(phaseAfter, 200) >= 20 }, "the load to get through again")
	load.stop()

	requireOpen(t, all...)
	c.requireNoDisconnect(t, all...)
	// The load saw only 200 and, in calls that overlapped the outage or the
	// recovery, 503: never 410 for a connection that is alive.
	for ph, byStatus := range load.snapshot() {
		for status, n := range byStatus {
			ok := status == 200 || (status == 503 && ph != phaseBefore && ph != phaseAfter)
			if !ok {
				t.Errorf("load in phase %s: %d answers %d; first: %s", ph, n, status, load.firstOf(ph, status))
			}
		}
	}
	t.Logf("load answers by phase: %v", load.snapshot())
}

// dialStatus dials node i and returns the handshake's status (101 on
// success).
func dialStatus(c *gatewayCluster, i int, name string) int {
	conn, resp, err := gt.TryDial(c.nodes[i].wsURL+"?client="+name+"&access_token="+mintToken(name), nil)
	if err == nil {
		_ = conn.CloseNow()
		return 101
	}
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// The phases of engineRestart.
const (
	phaseBefore     = "before"
	phaseOutage     = "outage"
	phaseRecovering = "recovering"
	phaseAfter      = "after"
)

// pusher posts to its targets, each through the next node, as fast as the
// answers come, and counts the answers by phase and status. A call that
// began in one phase and ended in another is counted under "from→to".
type pusher struct {
	c       *gatewayCluster
	targets []*wsClient
	phase   atomic.Pointer[string]

	mu     sync.Mutex
	counts map[string]map[int]int
	first  map[string]map[int]string

	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
}

func startPusher(c *gatewayCluster, targets []*wsClient) *pusher {
	p := &pusher{c: c, targets: targets, counts: map[string]map[int]int{}, first: map[string]map[int]string{},
		quit: make(chan struct{}), done: make(chan struct{})}
	p.setPhase(phaseBefore)
	go p.run()
	return p
}

func (p *pusher) setPhase(ph string) { p.phase.Store(&ph) }

func (p *pusher) run() {
	defer close(p.done)
	for seq := 0; ; seq++ {
		select {
		case <-p.quit:
			return
		default:
		}
		target := p.targets[seq%len(p.targets)]
		via := (target.node + 1) % len(p.c.nodes)
		ph := *p.phase.Load()
		r, err := p.c.do(via, "POST", connPath(target.id), fmt.Sprintf("load-%d", seq))
		if end := *p.phase.Load(); end != ph {
			// The call straddled a change, such as the engine stopping.
			ph += "→" + end
		}
		status := r.Status
		what := fmt.Sprintf("POST to %s via node %d: %v", target.name, via, r)
		if err != nil {
			status, what = -1, fmt.Sprintf("POST to %s via node %d: %v", target.name, via, err)
		}
		p.mu.Lock()
		if p.counts[ph] == nil {
			p.counts[ph], p.first[ph] = map[int]int{}, map[int]string{}
		}
		if p.counts[ph][status] == 0 {
			p.first[ph][status] = what
		}
		p.counts[ph][status]++
		p.mu.Unlock()
	}
}

func (p *pusher) stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	<-p.done
}

func (p *pusher) count(ph string, status int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[ph][status]
}

func (p *pusher) firstOf(ph string, status int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first[ph][status]
}

func (p *pusher) snapshot() map[string]map[int]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]map[int]int{}
	for ph, m := range p.counts {
		out[ph] = map[int]int{}
		for s, n := range m {
			out[ph][s] = n
		}
	}
	return out
}

// TestClusterProcessesRedisBlip: a short Redis outage, over as soon as
// every node has noticed it. Once every node answers /readyz with 200
// again, a call for a live connection may still answer 503 (retry later)
// while the cluster settles, but never 410 GoneException, which tells the
// caller the client is gone for good (AWS SDK callers delete it); and a
// call answered 503 must not have delivered its message (the management
// API promises never to answer 5xx after delivering, so that retries do
// not duplicate).
func TestClusterProcessesRedisBlip(t *testing.T) {
	c := startGatewayCluster(t, 3, "")
	var clients []*wsClient
	for i := range c.nodes {
		clients = append(clients, c.dialNoID(t, i, "blip", fmt.Sprintf("blip%d", i)))
	}
	c.identify(t, clients...)

	type answer struct {
		round        int
		client       *wsClient
		via          int
		msg, when, r string
	}
	var gone, failedButDelivered []answer
	var unavailable []answer
	for round := range 3 {
		c.engine.Stop()
		for i := range c.nodes {
			c.waitReadyz(t, i, http.StatusServiceUnavailable)
		}
		c.engine.Start()
		for i := range c.nodes {
			c.waitReadyz(t, i, http.StatusOK)
		}
		// Every node says it is ready: each live client is reachable
		// from every other node.
		for _, cl := range clients {
			for via := range c.nodes {
				if via == cl.node {
					continue
				}
				deadline := time.Now().Add(10 * time.Second)
				for attempt := 0; ; attempt++ {
					msg := fmt.Sprintf("round %d to %s via node %d, attempt %d", round, cl.name, via, attempt)
					r := c.call(t, via, "POST", connPath(cl.id), msg)
					a := answer{round, cl, via, msg, time.Now().UTC().Format("15:04:05.000"), r.String()}
					if r.Status == http.StatusOK {
						cl.waitFor(t, msg)
						break
					}
					switch r.Status {
					case http.StatusGone:
						gone = append(gone, a)
					case http.StatusServiceUnavailable:
						unavailable = append(unavailable, a)
					default:
						t.Fatalf("round %d: POST to %s via node %d answered %v", round, cl.name, via, r)
					}
					if time.Now().After(deadline) {
						t.Fatalf("round %d: POST to %s via node %d still fails after %d attempts: %v", round, cl.name, via, attempt+1, r)
					}
					time.Sleep(10 * time.Millisecond) // poll, as waitUntil does
				}
			}
		}
	}
	for _, a := range unavailable {
		a.client.mu.Lock()
		delivered := slices.Contains(a.client.received, a.msg)
		a.client.mu.Unlock()
		if delivered {
			failedButDelivered = append(failedButDelivered, a)
		}
	}
	for _, a := range gone {
		t.Errorf("round %d, %s UTC: POST to live client %s (%s on node %d) via node %d, with every node ready, answered %s",
			a.round, a.when, a.client.name, a.client.id, a.client.node, a.via, a.r)
	}
	for _, a := range failedButDelivered {
		t.Errorf("round %d, %s UTC: POST to %s via node %d answered %s, but the client received %q",
			a.round, a.when, a.client.name, a.via, a.r, a.msg)
	}
	requireOpen(t, clients...)
	c.requireNoDisconnect(t, clients...)
}
