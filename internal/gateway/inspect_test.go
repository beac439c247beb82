package gateway_test

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// listedNode is an item of GET /@nodes; the pointers are nil for absent
// fields.
type listedNode struct {
	NodeID           string  `json:"nodeId"`
	Self             bool    `json:"self"`
	Reachable        bool    `json:"reachable"`
	HeartbeatAgeMs   *int64  `json:"heartbeatAgeMs"`
	Connections      *int    `json:"connections"`
	Subscriptions    *int    `json:"subscriptions"`
	MessagesReceived *uint64 `json:"messagesReceived"`
	MessagesSent     *uint64 `json:"messagesSent"`
	StartedAt        string  `json:"startedAt"`
}

type nodesAnswer struct {
	At    string       `json:"at"`
	Nodes []listedNode `json:"nodes"`
}

type topicsPage struct {
	Items []struct {
		Topic       string `json:"topic"`
		Subscribers int    `json:"subscribers"`
	} `json:"items"`
	NextToken string `json:"nextToken"`
}

// counts are a reachable node's counters, for comparison.
type counts struct {
	conns, subs    int
	received, sent uint64
}

func (n listedNode) counts() counts {
	if n.Connections == nil || n.Subscriptions == nil || n.MessagesReceived == nil || n.MessagesSent == nil {
		return counts{-1, -1, 0, 0}
	}
	return counts{*n.Connections, *n.Subscriptions, *n.MessagesReceived, *n.MessagesSent}
}

func getNodes(t *testing.T, g *gt.Gateway) nodesAnswer {
	t.Helper()
	var out nodesAnswer
	mgmtJSON(t, g, "GET", "/@nodes", "", 200, &out)
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", out.At); err != nil {
		t.Fatalf("at %q: %v", out.At, err)
	}
	return out
}

// walk lists every topic of query, page by page, asking the gateways in
// turn, and returns "topic=subscribers" items.
func walk(t *testing.T, gs []*gt.Gateway, query string) []string {
	t.Helper()
	var got []string
	next := ""
	for i := 0; ; i++ {
		q := query
		if next != "" {
			q += "&nextToken=" + url.QueryEscape(next)
		}
		var page topicsPage
		mgmtJSON(t, gs[i%len(gs)], "GET", "/prod/@topics?"+q, "", 200, &page)
		for _, it := range page.Items {
			got = append(got, it.Topic+"="+strconv.Itoa(it.Subscribers))
		}
		if page.NextToken == "" {
			return got
		}
		if len(page.Items) == 0 {
			t.Fatalf("an empty page with a nextToken")
		}
		next = page.NextToken
	}
}

// TestInspectSingleNode: a gateway alone lists itself, with counters that
// follow its connections, subscriptions and messages, and its topics.
func TestInspectSingleNode(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, ""))
	nodes := getNodes(t, g).Nodes
	if len(nodes) != 1 {
		t.Fatalf("nodes %+v, want this one", nodes)
	}
	n := nodes[0]
	var ready struct{ NodeID string }
	mgmtJSON(t, g, "GET", "/readyz", "", 200, &ready)
	started, err := time.Parse("2006-01-02T15:04:05.000Z", n.StartedAt)
	if n.NodeID != ready.NodeID || !n.Self || !n.Reachable || n.HeartbeatAgeMs != nil || n.counts() != (counts{}) ||
		err != nil || time.Since(started) > time.Hour || time.Until(started) > time.Minute {
		t.Fatalf("node %+v, want this one, idle, without a heartbeat age", n)
	}

	c := gt.Dial(t, g.URL, nil)
	c.ID = b.ConnectionID(t, "/connect", 0)
	c.Send(`{"action":"sendmessage","text":"hi"}`)
	mgmtJSON(t, g, "POST", "/@connections/"+url.PathEscape(c.ID), "pushed", 200, nil)
	if got := c.NextText(); got != "pushed" {
		t.Fatalf("client got %q", got)
	}
	mgmtJSON(t, g, "PUT", "/@connections/"+url.PathEscape(c.ID)+"/topics/news", "", 204, nil)
	gt.Eventually(t, func() bool {
		return getNodes(t, g).Nodes[0].counts() == counts{1, 1, 1, 1}
	}, "one connection, one subscription, one message each way")

	if got := walk(t, []*gt.Gateway{g}, "maxResults=5"); !slices.Equal(got, []string{"news=1"}) {
		t.Fatalf("topics %v", got)
	}
	mgmtJSON(t, g, "DELETE", "/@connections/"+url.PathEscape(c.ID), "", 204, nil)
	c.ExpectClose(1000)
	gt.Eventually(t, func() bool {
		return getNodes(t, g).Nodes[0].counts() == counts{0, 0, 1, 1} && len(walk(t, []*gt.Gateway{g}, "")) == 0
	}, "the connection and its subscription gone")

	fams := scrape(t, g)
	for _, op := range []string{"ListNodes", "ListTopics"} {
		if got := value(fams, "wsgate_management_calls_total", "operation", op, "status", "200"); got < 1 {
			t.Errorf("%s calls counted %v", op, got)
		}
	}
}

// TestClusterInspect lists the nodes and topics of a two-node cluster
// through either node, with a node that crashed and one that stopped.
func TestClusterInspect(t *testing.T) {
	eachEngine(t, testClusterInspect)
}

func testClusterInspect(t *testing.T, newEngine func() cluster.Engine) {
	b := gt.NewBackend(t)
	// No node is declared lost during the test: the crashed one stays.
	g := startClusterTimeout(t, b, 2, newEngine, time.Minute)
	var ids [2]string
	for i := range g {
		var ready struct{ NodeID string }
		mgmtJSON(t, g[i], "GET", "/readyz", "", 200, &ready)
		ids[i] = ready.NodeID
	}
	alice := dialUser(t, g[0], b, "alice", 0, nil)
	bob := dialUser(t, g[1], b, "bob", 1, nil)
	carol := dialUser(t, g[1], b, "carol", 2, nil)
	for _, s := range []struct {
		c      *gt.Client
		topics []string
	}{
		{alice, []string{"news", "orders/1"}},
		{bob, []string{"news", "orders/2"}},
		{carol, []string{"orders/1", "chat", "orders/10"}},
	} {
		for _, topic := range s.topics {
			// Through the node that does not hold the connection too.
			for _, via := range g {
				mgmtJSON(t, via, "PUT", "/@connections/"+url.PathEscape(s.c.ID)+"/topics/"+topic, "", 204, nil)
			}
		}
	}

	wantCounts := func(i int) counts {
		return [2]counts{{1, 2, 0, 0}, {2, 5, 0, 0}}[i]
	}
	for self, via := range g {
		gt.Eventually(t, func() bool {
			nodes := getNodes(t, via).Nodes
			if len(nodes) != 2 {
				t.Fatalf("node %d lists %+v, want two nodes", self, nodes)
			}
			for _, n := range nodes {
				i := slices.Index(ids[:], n.NodeID)
				if i < 0 || n.Self != (i == self) || !n.Reachable || n.counts() != wantCounts(i) || n.StartedAt == "" {
					t.Fatalf("node %d lists %+v", self, n)
				}
				if n.HeartbeatAgeMs == nil || *n.HeartbeatAgeMs < 0 || *n.HeartbeatAgeMs > 60000 {
					return false
				}
			}
			return nodes[0].NodeID < nodes[1].NodeID
		}, "node %d lists both nodes with heartbeat ages", self)
	}

	// Messages move the counters of the node that holds the connection,
	// as either node sees it.
	// $default answers with the backend's reply: one message each way.
	bob.Send(`{"text":"hi"}`)
	if got := bob.NextText(); got != `{"text":"hi"}` {
		t.Fatalf("bob got %q, want the backend's echo", got)
	}
	mgmtJSON(t, g[0], "POST", "/@topics/orders/2", "to bob", 200, nil)
	if got := bob.NextText(); got != "to bob" {
		t.Fatalf("bob got %q", got)
	}
	for _, via := range g {
		gt.Eventually(t, func() bool {
			for _, n := range getNodes(t, via).Nodes {
				if n.NodeID == ids[1] {
					return n.counts() == counts{2, 5, 1, 2}
				}
			}
			return false
		}, "bob's node counting his messages")
	}

	// Every walk of the topics, through either node, finds them all with
	// their subscribers summed over the nodes.
	all := []string{"chat=1", "news=2", "orders/1=2", "orders/10=1", "orders/2=1"}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", all},
		{"maxResults=1", all},
		{"maxResults=2", all},
		{"maxResults=1000", all},
		{"prefix=orders/", all[2:]},
		{"prefix=orders/&maxResults=1", all[2:]},
		{"prefix=orders/1", all[2:4]},
		{"prefix=" + url.QueryEscape("n"), all[1:2]},
		{"prefix=zzz", nil},
	} {
		if got := walk(t, g, tc.query); !slices.Equal(got, tc.want) {
			t.Fatalf("?%s lists %v, want %v", tc.query, got, tc.want)
		}
	}
	var first topicsPage
	mgmtJSON(t, g[0], "GET", "/@topics?prefix=orders/&maxResults=1", "", 200, &first)
	for _, tc := range []struct{ query, message string }{
		{"nextToken=bm9wZQ", `{"message":"nextToken is not one that GET /@topics returned"}`},
		{"nextToken=" + url.QueryEscape(first.NextToken),
			`{"message":"nextToken was returned for another prefix; repeat the prefix of the call that returned it"}`},
		{"prefix=&maxResults=1", `{"message":"prefix is empty; leave it out to list topics of any name"}`},
		{"maxResults=0", `{"message":"maxResults must be a whole number from 1 to 1000, got \"0\""}`},
		{"topic=news", `{"message":"unknown query parameter \"topic\"; GET /@topics takes prefix, maxResults and nextToken"}`},
	} {
		status, h, body := g[1].MgmtDo(t, "GET", "/@topics?"+tc.query, nil, nil)
		if status != 400 || body != tc.message || h.Get("X-Amzn-ErrorType") != "BadRequestException" {
			t.Fatalf("?%s: %d %v %s, want 400 BadRequestException %s", tc.query, status, h, body, tc.message)
		}
	}

	// A node that heartbeat and then died without a word: listed
	// unreachable, and the topic listing, which would be wrong without
	// it, answers 503 until the node is forgotten.
	ctx := context.Background()
	ghost := newEngine()
	if err := ghost.Listen("ghost", silent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ghost.Heartbeat(ctx, "ghost"); err != nil {
		t.Fatal(err)
	}
	_ = ghost.Close()
	for _, via := range g {
		nodes := getNodes(t, via).Nodes
		i := slices.IndexFunc(nodes, func(n listedNode) bool { return n.NodeID == "ghost" })
		if len(nodes) != 3 || i < 0 || nodes[i].Reachable || nodes[i].Self || nodes[i].Connections != nil ||
			nodes[i].MessagesSent != nil || nodes[i].StartedAt != "" {
			t.Fatalf("nodes %+v, want the ghost unreachable and without counters", nodes)
		}
		for _, n := range nodes {
			if n.NodeID != "ghost" && !n.Reachable {
				t.Fatalf("node %s unreachable", n.NodeID)
			}
		}
		status, h, body := via.MgmtDo(t, "GET", "/@topics", nil, nil)
		if status != 503 || h.Get("X-Amzn-ErrorType") != "ServiceUnavailableException" ||
			body != `{"message":"Node ghost did not answer within 1s; the answer would be incomplete without it. Retry later"}` {
			t.Fatalf("GET /@topics with a dead node: %d %v %s", status, h, body)
		}
	}
	forgetter := newEngine()
	defer forgetter.Close()
	if err := forgetter.ForgetNode(ctx, "ghost"); err != nil {
		t.Fatal(err)
	}
	if got := walk(t, g, ""); !slices.Equal(got, all) {
		t.Fatalf("after the dead node was forgotten: %v", got)
	}

	// A node that stops leaves the list, and its subscribers the topics.
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- g[1].Shutdown(sctx) }()
	// Its clients answer the close frame, so that it need not wait.
	bob.ExpectClose(1001)
	carol.ExpectClose(1001)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, func() bool {
		nodes := getNodes(t, g[0]).Nodes
		return len(nodes) == 1 && nodes[0].NodeID == ids[0] && nodes[0].Self
	}, "the stopped node gone from the list")
	if got := walk(t, g[:1], ""); !slices.Equal(got, []string{"news=1", "orders/1=1"}) {
		t.Fatalf("after a node stopped: %v", got)
	}
}
