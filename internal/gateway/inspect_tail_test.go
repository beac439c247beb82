package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// logEntry is an item of GET /@log, of either kind.
type logEntry struct {
	Time        string   `json:"time"`
	NodeID      string   `json:"nodeId"`
	Authorizer  string   `json:"authorizer"`
	Decision    string   `json:"decision"`
	Reason      string   `json:"reason"`
	LatencyMs   *float64 `json:"latencyMs"`
	CacheHit    bool     `json:"cacheHit"`
	PrincipalID string   `json:"principalId"`
	SourceIP    string   `json:"sourceIp"`
	Status      int      `json:"status"`
	UserAgent   string   `json:"userAgent"`
	Path        string   `json:"path"`
}

// getLog returns GET /@log?kind=kind on g, and its raw body.
func getLog(t *testing.T, g *gt.Gateway, kind string) ([]logEntry, string) {
	t.Helper()
	status, _, body := g.MgmtDo(t, "GET", "/@log?maxResults=1000&kind="+kind, nil, nil)
	if status != 200 {
		t.Fatalf("GET /@log?kind=%s: %d %s", kind, status, body)
	}
	var out struct{ Items []logEntry }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("GET /@log: %v in %s", err, body)
	}
	return out.Items, body
}

// dialAs dials g with user agent ua and the query string query, and
// returns the handshake's status (101 when it succeeded).
func dialAs(g *gt.Gateway, ua, query string) int {
	return dialStatus(g.URL+query, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {ua}}})
}

// TestInspectorLog: refused handshakes of several kinds and the
// authorizer's decisions appear in GET /@log with their status, reason and
// client, newest first, and no token appears in the answer.
func TestInspectorLog(t *testing.T) {
	b := gt.NewBackend(t)
	b.On("/connect", func(ev gt.Event) gt.Reply {
		if ev.RequestContext.Authorizer.(map[string]any)["principalId"] == "mallory" {
			return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 403}}
		}
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200}}
	})
	g := gt.Start(t, jwtConfig(b, "  cache_ttl: 1h"))

	good := mint(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	expired := mint(t, jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(-time.Hour).Unix()})
	mallory := mint(t, jwt.MapClaims{"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()})
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "eve"}).SignedString([]byte("not the secret"))
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		ua, query string
		status    int
	}{
		{"ua-good", "?access_token=" + good, 101},
		{"ua-good-again", "?access_token=" + good, 101},
		{"ua-none", "", 401},
		{"ua-expired", "?access_token=" + expired, 401},
		{"ua-expired-again", "?access_token=" + expired, 401},
		{"ua-forged", "?access_token=" + forged, 401},
		{"ua-mallory", "?access_token=" + mallory, 403},
	}
	for _, s := range steps {
		if got := dialAs(g, s.ua, s.query); got != s.status {
			t.Fatalf("%s: handshake %d, want %d", s.ua, got, s.status)
		}
	}
	// Not the upgrade path, and not an upgrade request.
	u, _ := url.Parse(g.URL)
	for _, tc := range []struct{ path, ua string }{{"/elsewhere?access_token=" + good, "ua-path"}, {u.Path + "?access_token=" + good, "ua-plain"}} {
		req, _ := http.NewRequest("GET", "http://"+u.Host+tc.path, nil)
		req.Header.Set("User-Agent", tc.ua)
		if tc.ua == "ua-path" {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	refused, body := getLog(t, g, "refused")
	for _, tok := range []string{good, expired, mallory, forged} {
		if strings.Contains(body, tok) {
			t.Fatalf("GET /@log?kind=refused shows %q: %s", tok, body)
		}
	}
	byUA := map[string]logEntry{}
	for i, e := range refused {
		byUA[e.UserAgent] = e
		if i > 0 && e.Time > refused[i-1].Time {
			t.Errorf("not newest first: %s after %s", e.Time, refused[i-1].Time)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", e.Time); err != nil {
			t.Errorf("time %q: %v", e.Time, err)
		}
	}
	if len(refused) != 7 {
		t.Errorf("%d refused entries, want 7: %s", len(refused), body)
	}
	for ua, want := range map[string]struct {
		status int
		reason string
		path   string
	}{
		"ua-none":          {401, "identity source route.request.querystring.access_token is missing or empty", u.Path},
		"ua-expired":       {401, "authorizer denied: invalid claims: token is expired", u.Path},
		"ua-expired-again": {401, "authorizer denied: invalid claims: token is expired", u.Path},
		"ua-forged":        {401, "authorizer denied: bad signature", u.Path},
		"ua-mallory":       {403, "$connect integration answered 403", u.Path},
		"ua-path":          {404, "not the upgrade path", "/elsewhere"},
		"ua-plain":         {400, "missing connection: upgrade header", u.Path},
	} {
		e, ok := byUA[ua]
		if !ok {
			t.Errorf("%s: no refused entry", ua)
			continue
		}
		if e.Status != want.status || !strings.HasPrefix(e.Reason, want.reason) || e.Path != want.path ||
			e.SourceIP != "127.0.0.1" || e.NodeID == "" {
			t.Errorf("%s: %+v, want status %d, reason %q…, path %s", ua, e, want.status, want.reason, want.path)
		}
	}

	decisions, body := getLog(t, g, "authorizer")
	for _, tok := range []string{good, expired, mallory, forged} {
		if strings.Contains(body, tok) {
			t.Fatalf("GET /@log?kind=authorizer shows a token: %s", body)
		}
	}
	// Newest first: mallory (allowed; the integration refused), forged,
	// expired from the cache, expired, good from the cache, good.
	type dec struct {
		decision, principal string
		cache               bool
	}
	var got []dec
	for _, e := range decisions {
		got = append(got, dec{e.Decision, e.PrincipalID, e.CacheHit})
		if e.Authorizer != "jwt" || e.SourceIP != "127.0.0.1" || e.LatencyMs == nil {
			t.Errorf("entry %+v", e)
		}
		if e.Decision == "deny" && e.Reason != "invalid claims: token is expired" && e.Reason != "bad signature" {
			t.Errorf("deny without its reason: %+v", e)
		}
		if e.CacheHit && *e.LatencyMs != 0 {
			t.Errorf("cache hit with latency: %+v", e)
		}
	}
	want := []dec{{"allow", "mallory", false}, {"deny", "", false}, {"deny", "", true}, {"deny", "", false}, {"allow", "alice", true}, {"allow", "alice", false}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("decisions %v, want %v (%s)", got, want, body)
	}
}

// TestInspectorLogLimits: handshakes refused by $connect throttling and by
// limits.max_connections appear with their status and reason.
func TestInspectorLogLimits(t *testing.T) {
	g := gt.Start(t, `
limits: {max_connections: 2}
routes:
  $connect: {integration: {type: mock}, throttling: {rate: 0.001, burst: 2}}
  $default: {integration: {type: mock}, route_response: true}
`)
	c1 := gt.Dial(t, g.URL, nil)
	defer c1.CloseNow()
	c2 := gt.Dial(t, g.URL, nil)
	if got := dialAs(g, "ua-full", ""); got != 503 {
		t.Fatalf("third connection: %d, want 503", got)
	}
	_ = c2.CloseNow()
	// Once the second connection has left, the bucket is what refuses.
	gt.Eventually(t, func() bool { return dialAs(g, "ua-throttled", "") == 429 }, "a throttled handshake")
	refused, body := getLog(t, g, "refused")
	var full, throttled bool
	for _, e := range refused {
		full = full || (e.UserAgent == "ua-full" && e.Status == 503 && e.Reason == "at limits.max_connections")
		throttled = throttled || (e.UserAgent == "ua-throttled" && e.Status == 429 && e.Reason == "throttled ($connect route throttling)")
	}
	if !full || !throttled {
		t.Fatalf("max connections %v, throttled %v: %s", full, throttled, body)
	}
	if entries, _ := getLog(t, g, "authorizer"); len(entries) != 0 {
		t.Fatalf("authorizer entries without an authorizer: %+v", entries)
	}
}

// TestInspectorTailReload: management.message_tail changes on reload;
// turned off, tail calls answer 403 and the open tails stop.
func TestInspectorTailReload(t *testing.T) {
	b := gt.NewBackend(t)
	text := func(tail bool) string { return jwtConfig(b, fmt.Sprintf("management: {message_tail: %v}", tail)) }
	g := gt.Start(t, text(false))
	c := dialUser(t, g, b, "alice", 0, nil)
	tailPath := "/@connections/" + url.PathEscape(c.ID) + "/tail"
	mgmtJSON(t, g, "PUT", tailPath, "", 403, nil)
	g.SetYAML(text(true))
	mgmtJSON(t, g, "POST", "/reload", "", 200, nil)
	mgmtJSON(t, g, "PUT", tailPath, "", 204, nil)
	c.Send("hello")
	c.NextText()
	var page tailPage
	mgmtJSON(t, g, "GET", tailPath, "", 200, &page)
	if len(page.Items) != 2 {
		t.Fatalf("tail %+v", page)
	}
	g.SetYAML(text(false))
	mgmtJSON(t, g, "POST", "/reload", "", 200, nil)
	mgmtJSON(t, g, "GET", tailPath, "", 403, nil)
	g.SetYAML(text(true))
	mgmtJSON(t, g, "POST", "/reload", "", 200, nil)
	mgmtJSON(t, g, "GET", tailPath, "", 404, nil)
}

type tailPage struct {
	Items []struct {
		Seq       uint64 `json:"seq"`
		Time      string `json:"time"`
		Direction string `json:"direction"`
		Data      string `json:"data"`
		Bytes     int    `json:"bytes"`
		Truncated bool   `json:"truncated"`
		Binary    bool   `json:"binary"`
	} `json:"items"`
	Next    *uint64 `json:"next"`
	Dropped *uint64 `json:"dropped"`
}

// TestInspectorAcrossNodes tails, through node A's management API, a
// connection that lives on node B, and reads B's log entries through A.
func TestInspectorAcrossNodes(t *testing.T) {
	eachEngine(t, testInspectorAcrossNodes)
}

func testInspectorAcrossNodes(t *testing.T, newEngine func() cluster.Engine) {
	b := gt.NewBackend(t)
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	var g []*gt.Gateway
	for range 2 {
		cfg, err := config.Parse("test.yaml", []byte(jwtConfig(b,
			"registry: {heartbeat_interval: 50ms, node_timeout: 300ms}\nmanagement: {message_tail: true}")))
		if err != nil {
			t.Fatal(err)
		}
		g = append(g, gt.StartNodeWith(t, cfg, newEngine(), func(o *gateway.Options) { o.Now = now }))
	}
	var nodeB string
	for i, n := range g {
		gt.Eventually(t, func() bool {
			status, _, body := n.MgmtDo(t, "GET", "/readyz", nil, nil)
			if i == 1 {
				var r struct{ NodeID string }
				_ = json.Unmarshal([]byte(body), &r)
				nodeB = r.NodeID
			}
			return status == 200
		}, "node ready")
	}
	a := g[0]
	alice := dialUser(t, g[1], b, "alice", 0, nil)
	tailPath := "/@connections/" + url.PathEscape(alice.ID) + "/tail"

	// B's log, through A.
	if got := dialAs(g[1], "ua-b", ""); got != 401 {
		t.Fatalf("handshake without a token: %d", got)
	}
	refused, _ := getLog(t, a, "refused")
	if len(refused) != 1 || refused[0].NodeID != nodeB || refused[0].UserAgent != "ua-b" || refused[0].Status != 401 {
		t.Fatalf("B's refused handshake through A: %+v (B is %s)", refused, nodeB)
	}
	decisions, _ := getLog(t, a, "authorizer")
	if len(decisions) != 1 || decisions[0].NodeID != nodeB || decisions[0].PrincipalID != "alice" || decisions[0].Decision != "allow" {
		t.Fatalf("B's decision through A: %+v", decisions)
	}

	mgmtJSON(t, a, "GET", tailPath, "", 404, nil)
	mgmtJSON(t, a, "PUT", tailPath, "", 204, nil)
	alice.Send(`{"action":"chat","password":"hunter2","text":"hi"}`)
	if got := alice.NextText(); !strings.Contains(got, "hunter2") {
		t.Fatalf("route response %q", got)
	}
	mgmtJSON(t, a, "POST", "/@connections/"+url.PathEscape(alice.ID), "auth: Bearer abc123secret", 200, nil)
	alice.NextText()
	var page tailPage
	mgmtJSON(t, a, "GET", tailPath, "", 200, &page)
	redacted := `{"action":"chat","password":"[redacted]","text":"hi"}`
	if len(page.Items) != 3 || *page.Next != 3 || *page.Dropped != 0 {
		t.Fatalf("tail %+v", page)
	}
	for i, want := range []struct{ dir, data string }{{"in", redacted}, {"out", redacted}, {"out", "auth: [redacted]"}} {
		it := page.Items[i]
		if it.Seq != uint64(i+1) || it.Direction != want.dir || it.Data != want.data || it.Truncated || it.Binary {
			t.Errorf("item %d: %+v, want %s %s", i, it, want.dir, want.data)
		}
	}
	if page.Items[0].Bytes != len(`{"action":"chat","password":"hunter2","text":"hi"}`) {
		t.Errorf("bytes %d", page.Items[0].Bytes)
	}

	// 120 more: seq 4..123, of which the ring holds 24..123.
	for i := range 120 {
		mgmtJSON(t, a, "POST", "/@connections/"+url.PathEscape(alice.ID), fmt.Sprintf("m%d", i), 200, nil)
	}
	for range 120 {
		alice.NextText()
	}
	page = tailPage{}
	mgmtJSON(t, a, "GET", tailPath+"?after=3", "", 200, &page)
	if len(page.Items) != 100 || page.Items[0].Seq != 24 || page.Items[0].Data != "m20" || *page.Next != 123 || *page.Dropped != 20 {
		t.Fatalf("after the ring overflowed: %d items from %d (%q), next %d, dropped %d",
			len(page.Items), page.Items[0].Seq, page.Items[0].Data, *page.Next, *page.Dropped)
	}
	page = tailPage{}
	mgmtJSON(t, a, "GET", tailPath+"?after=123", "", 200, &page)
	if len(page.Items) != 0 || *page.Next != 123 || *page.Dropped != 0 {
		t.Fatalf("nothing new: %+v", page)
	}

	// Renewed within its lapse, the tail lives on; a minute after the
	// last PUT, it has lapsed.
	offset.Add(int64(50 * time.Second))
	mgmtJSON(t, a, "PUT", tailPath, "", 204, nil)
	offset.Add(int64(50 * time.Second))
	mgmtJSON(t, a, "GET", tailPath+"?after=123", "", 200, nil)
	offset.Add(int64(10 * time.Second))
	mgmtJSON(t, a, "GET", tailPath, "", 404, nil)

	// A stopped tail is gone; a new one starts over.
	mgmtJSON(t, a, "PUT", tailPath, "", 204, nil)
	mgmtJSON(t, a, "DELETE", tailPath, "", 204, nil)
	mgmtJSON(t, a, "GET", tailPath, "", 404, nil)
	mgmtJSON(t, a, "PUT", tailPath, "", 204, nil)
	alice.Send("again")
	alice.NextText()
	page = tailPage{}
	mgmtJSON(t, a, "GET", tailPath, "", 200, &page)
	if len(page.Items) != 2 || page.Items[0].Seq != 1 || page.Items[0].Data != "again" {
		t.Fatalf("new tail: %+v", page)
	}

	// A closed connection's tail is freed: 410.
	_ = alice.Close(websocket.StatusNormalClosure, "bye")
	gt.Eventually(t, func() bool {
		status, _, _ := a.MgmtDo(t, "GET", tailPath, nil, nil)
		return status == 410
	}, "410 for the tail of a closed connection")
	mgmtJSON(t, a, "PUT", tailPath, "", 410, nil)
	mgmtJSON(t, a, "DELETE", tailPath, "", 204, nil)
}
