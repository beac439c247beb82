package gateway_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/cluster"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

type listedConn struct {
	ConnectionID string `json:"connectionId"`
	ConnectedAt  string `json:"connectedAt"`
	LastActiveAt string `json:"lastActiveAt"`
	Identity     struct {
		SourceIP  string `json:"sourceIp"`
		UserAgent string `json:"userAgent"`
	} `json:"identity"`
	PrincipalID string         `json:"principalId"`
	Authorizer  map[string]any `json:"authorizer"`
	NodeID      string         `json:"nodeId"`
	Topics      []string       `json:"topics"`
}

type listPage struct {
	Items     []listedConn `json:"items"`
	NextToken string       `json:"nextToken"`
}

// TestClusterListConnections lists a two-node cluster's connections
// through either node: each node sees the other's connections, with
// their node, principal, authorizer output and topics, filtered and paged.
func TestClusterListConnections(t *testing.T) {
	eachEngine(t, testListConnections)
}

func testListConnections(t *testing.T, newEngine func() cluster.Engine) {
	b := gt.NewBackend(t)
	g := startCluster(t, b, 2, newEngine)
	var nodes [2]string
	for i := range g {
		var ready struct{ NodeID string }
		mgmtJSON(t, g[i], "GET", "/readyz", "", 200, &ready)
		nodes[i] = ready.NodeID
	}
	aliceTok := mint(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	alice := gt.Dial(t, g[0].URL+"?access_token="+aliceTok, nil)
	alice.ID = b.ConnectionID(t, "/connect", 0)
	bob := dialUser(t, g[1], b, "bob", 1, nil)
	mgmtJSON(t, g[0], "PUT", "/@connections/"+url.PathEscape(bob.ID)+"/topics/news", "", 204, nil)

	for i, via := range g {
		status, _, body := via.MgmtDo(t, "GET", "/@connections", nil, nil)
		if status != 200 {
			t.Fatalf("node %d: %d %s", i, status, body)
		}
		if strings.Contains(body, aliceTok) {
			t.Fatalf("the listing holds alice's token: %s", body)
		}
		var page listPage
		mgmtJSON(t, via, "GET", "/prod/@connections", "", 200, &page)
		if page.NextToken != "" || len(page.Items) != 2 {
			t.Fatalf("node %d lists %+v, want alice and bob on one page", i, page)
		}
		byID := map[string]listedConn{}
		for _, c := range page.Items {
			byID[c.ConnectionID] = c
		}
		for _, want := range []struct {
			id, principal, node string
			topics              []string
		}{{alice.ID, "alice", nodes[0], []string{}}, {bob.ID, "bob", nodes[1], []string{"news"}}} {
			c, ok := byID[want.id]
			if !ok {
				t.Fatalf("node %d does not list %s: %+v", i, want.principal, page)
			}
			if c.PrincipalID != want.principal || c.NodeID != want.node || !slices.Equal(c.Topics, want.topics) ||
				c.Identity.SourceIP != "127.0.0.1" || c.ConnectedAt == "" || c.LastActiveAt < c.ConnectedAt ||
				c.Authorizer["principalId"] != want.principal {
				t.Fatalf("node %d lists %s as %+v", i, want.principal, c)
			}
		}
	}

	// Filters, through the node that does not hold the connection.
	for _, tc := range []struct {
		via   *gt.Gateway
		query string
		want  []string
	}{
		{g[0], "principal=bob", []string{bob.ID}},
		{g[1], "principal=alice", []string{alice.ID}},
		{g[0], "node=" + url.QueryEscape(nodes[1]), []string{bob.ID}},
		{g[1], "topic=news", []string{bob.ID}},
		{g[0], "topic=news&principal=alice", nil},
		{g[0], "principal=carol", nil},
	} {
		var page listPage
		mgmtJSON(t, tc.via, "GET", "/@connections?"+tc.query, "", 200, &page)
		var got []string
		for _, c := range page.Items {
			got = append(got, c.ConnectionID)
		}
		if !slices.Equal(got, tc.want) || page.NextToken != "" {
			t.Fatalf("?%s lists %v (next %q), want %v", tc.query, got, page.NextToken, tc.want)
		}
	}

	// One connection a page, the second page asked of the other node.
	var first, second listPage
	mgmtJSON(t, g[0], "GET", "/@connections?maxResults=1", "", 200, &first)
	if len(first.Items) != 1 || first.NextToken == "" {
		t.Fatalf("first page %+v, want one connection and a nextToken", first)
	}
	mgmtJSON(t, g[1], "GET", "/@connections?maxResults=1&nextToken="+url.QueryEscape(first.NextToken), "", 200, &second)
	if len(second.Items) > 1 {
		t.Fatalf("second page %+v over maxResults", second)
	}
	seen := []string{first.Items[0].ConnectionID}
	for page := second; ; {
		for _, c := range page.Items {
			seen = append(seen, c.ConnectionID)
		}
		if page.NextToken == "" {
			break
		}
		next := page.NextToken
		page = listPage{}
		mgmtJSON(t, g[0], "GET", "/@connections?maxResults=1&nextToken="+url.QueryEscape(next), "", 200, &page)
	}
	slices.Sort(seen)
	if want := slices.Sorted(slices.Values([]string{alice.ID, bob.ID})); !slices.Equal(seen, want) {
		t.Fatalf("the pages list %v, want %v", seen, want)
	}

	// Refused listings answer as AWS does.
	for _, tc := range []struct{ query, message string }{
		{"nextToken=bm9wZQ", `{"message":"nextToken is not one that GET /@connections returned"}`},
		{"principal=bob&nextToken=" + url.QueryEscape(first.NextToken),
			`{"message":"nextToken was returned for other filters; repeat the principal, topic and node of the call that returned it"}`},
		{"maxResults=1001", `{"message":"maxResults must be a whole number from 1 to 1000, got \"1001\""}`},
		{"owner=bob", `{"message":"unknown query parameter \"owner\"; GET /@connections takes principal, topic, node, maxResults and nextToken"}`},
	} {
		status, h, body := g[1].MgmtDo(t, "GET", "/@connections?"+tc.query, nil, nil)
		if status != 400 || body != tc.message || h.Get("X-Amzn-ErrorType") != "BadRequestException" {
			t.Fatalf("?%s: %d %v %s, want 400 BadRequestException %s", tc.query, status, h, body, tc.message)
		}
	}

	// A closed connection leaves the listing.
	mgmtJSON(t, g[1], "DELETE", "/@connections/"+url.PathEscape(alice.ID), "", 204, nil)
	alice.ExpectClose(1000)
	gt.Eventually(t, func() bool {
		var page listPage
		mgmtJSON(t, g[1], "GET", "/@connections", "", 200, &page)
		return len(page.Items) == 1 && page.Items[0].ConnectionID == bob.ID
	}, "alice gone from the listing")
}
