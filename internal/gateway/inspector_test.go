package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/browsertest"
	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// updateScreenshotsEnv names the environment variable that, set to 1, makes
// the inspector tests copy their screenshots to docs/images/ui-*.png; they
// are always in the test's artifact directory.
const updateScreenshotsEnv = "WSGATE_UPDATE_SCREENSHOTS"

// inspectorWait bounds how long a test waits for the page to show
// something; it only decides when a test gives up.
const inspectorWait = 15 * time.Second

// inspectorYAML is jwtConfig with management bearer tokens and message
// tails on, plus extra top-level keys.
func inspectorYAML(b *gt.Backend, extra string) string {
	return jwtConfig(b, "management:\n  auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}\n  message_tail: true\n"+extra)
}

// TestInspector drives the inspector UI at /ui/ in a headless Chromium
// against real gateways: the login, a connection that appears while the
// page refreshes, its message tail, sending to it and disconnecting it,
// publishing to a topic, a refused handshake in the log, a two-node cluster
// seen from one node, and user-supplied text shown as text. It takes the
// screenshots of docs/images/ui-*.png on the way.
func TestInspector(t *testing.T) {
	browser := browsertest.Start(t)
	b := gt.NewBackend(t)
	g := gt.Start(t, inspectorYAML(b, ""))
	users := newPopulation(t, g, b)
	users.populate()

	t.Run("Login", func(t *testing.T) {
		p := openTab(t, browser)
		p.navigate(g.MgmtURL + "/ui/")
		p.waitVisible("#login-form")
		p.screenshot("login")

		p.typeInto("#token", "not-a-management-token")
		p.click("#login-btn")
		p.waitText("#login-error", "refused this token")
		if got := p.evalString(`sessionStorage.getItem("wsgate.inspector.token") || ""`); got != "" {
			t.Fatalf("a refused token is kept in sessionStorage: %q", got)
		}

		p.eval(`document.querySelector("#token").value = ""`)
		p.typeInto("#token", gt.TestToken)
		p.click("#login-btn")
		p.waitVisible("#view-connections")
		if got := p.evalString(`sessionStorage.getItem("wsgate.inspector.token")`); got != gt.TestToken {
			t.Fatalf("sessionStorage holds %q after login, want the token", got)
		}
		if got := p.evalString(`localStorage.length + document.cookie`); got != "0" {
			t.Fatalf("the token went beyond sessionStorage: localStorage.length + cookie = %q", got)
		}

		// A reload keeps the session: the tab's token is still there.
		p.navigate(g.MgmtURL + "/ui/#topics")
		p.waitVisible("#view-topics")

		p.click("#logout")
		p.waitVisible("#login-form")
		p.waitText("#login-error", "Logged out")
		if got := p.evalString(`sessionStorage.getItem("wsgate.inspector.token") || ""`); got != "" {
			t.Fatalf("log out left the token in sessionStorage: %q", got)
		}
	})

	t.Run("TokenRevoked", func(t *testing.T) {
		p := openTab(t, browser)
		p.login(g, gt.TestToken)
		// A token that stops working sends the page back to the login with
		// the API's answer.
		p.eval(`sessionStorage.setItem("wsgate.inspector.token", "revoked-token")`)
		p.waitVisible("#login-form")
		p.waitText("#login-error", "403 ForbiddenException")
	})

	t.Run("ConnectionAppears", func(t *testing.T) {
		p := openTab(t, browser)
		p.login(g, gt.TestToken)
		p.waitRow("#conn-table", users.byName["alice"].ID)
		c := users.dial("heidi", jwt.MapClaims{"role": "member"})
		// No click, no reload: the page refreshes itself.
		row := p.waitRow("#conn-table", c.ID)
		if !strings.Contains(row, "heidi") || !strings.Contains(row, "role=member") || !strings.Contains(row, "127.0.0.1") {
			t.Errorf("the row of heidi's connection reads %q", row)
		}
	})

	t.Run("TailSendDisconnect", func(t *testing.T) {
		p := openTab(t, browser)
		p.login(g, gt.TestToken)
		c := users.dial("frank", jwt.MapClaims{"role": "support", "level": 2})
		mgmtAuth(t, g, "PUT", "/@connections/"+url.PathEscape(c.ID)+"/topics/chat/lobby", "", 204)
		p.waitRow("#conn-table", c.ID)
		p.click(rowSelector("#conn-table", c.ID))
		p.waitVisible("#conn-detail")
		p.waitText("#detail-id", c.ID)
		p.waitText("#tail-status", "live")

		c.Send(`{"action":"chat","text":"hello from frank","token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmIn0.c2lnbmF0dXJl"}`)
		p.waitText("#tail-list .msg.in .data", "hello from frank")
		// The echo the $default route answered with comes back as out.
		p.waitText("#tail-list .msg.out .data", "hello from frank")
		if got := p.evalString(`document.querySelector("#tail-list").textContent`); strings.Contains(got, "eyJzdWIiOiJmIn0") {
			t.Errorf("the tail shows a token: %q", got)
		}
		c.NextText()
		c.Send(`{"action":"chat","text":"is anyone there?"}`)
		p.waitText("#tail-list .msg.out .data", "is anyone there?")
		c.NextText()

		const sent = "hello frank, from the inspector"
		p.setValue("#send-body", sent)
		p.click("#send-btn")
		if got := c.NextText(); got != sent {
			t.Fatalf("frank got %q, want %q", got, sent)
		}
		p.waitText("#send-result", "sent 31 bytes")
		p.waitText("#tail-list .msg.out .data", sent)
		p.screenshot("connections")

		p.setValue("#close-code", "4001")
		p.setValue("#close-reason", "closed from the inspector")
		p.click("#close-btn")
		if ce := c.ExpectClose(4001); ce.Reason != "closed from the inspector" {
			t.Errorf("close reason %q", ce.Reason)
		}
		p.waitText("#close-result", "disconnected with code 4001")
		p.waitGone(rowSelector("#conn-table", c.ID))
		p.waitText("#tail-status", "connection closed")
	})

	t.Run("DisconnectRefused", func(t *testing.T) {
		p := openTab(t, browser)
		p.login(g, gt.TestToken)
		c := users.byName["bob"]
		p.waitRow("#conn-table", c.ID)
		p.click(rowSelector("#conn-table", c.ID))
		p.setValue("#close-code", "1001")
		p.click("#close-btn")
		// The API's own message, as it gave it.
		p.waitText("#close-result", "400 BadRequestException: code must be 1000 or between 3000 and 4999")
	})

	t.Run("Publish", func(t *testing.T) {
		p := openTab(t, browser)
		p.login(g, gt.TestToken)
		c := users.dial("grace", jwt.MapClaims{"role": "member"})
		mgmtAuth(t, g, "PUT", "/@connections/"+url.PathEscape(c.ID)+"/topics/news/launch", "", 204)
		p.click(`a[data-tab="topics"]`)
		p.waitVisible("#view-topics")
		row := p.waitRow("#topic-table", "news/launch")
		if !strings.Contains(row, "news/launch") || !strings.Contains(row, "1") {
			t.Errorf("the row of news/launch reads %q", row)
		}
		p.click(`#topic-table tr[data-topic="news/launch"] td`)
		if got := p.evalString(`document.querySelector("#pub-topic").value`); got != "news/launch" {
			t.Errorf("clicking the topic set the publish topic to %q", got)
		}
		const body = `{"launch":"10:00 UTC"}`
		p.setValue("#pub-body", body)
		p.click("#pub-btn")
		if got := c.NextText(); got != body {
			t.Fatalf("grace got %q, want %q", got, body)
		}
		p.waitText("#pub-result", "delivered to 1 connection")
		p.screenshot("topics")

		// A topic name the API refuses shows its message.
		p.setValue("#pub-topic", "a//b")
		p.click("#pub-btn")
		p.waitText("#pub-result", "400 BadRequestException: topic has an empty segment")
	})

	t.Run("RefusedHandshake", func(t *testing.T) {
		p := openTab(t, browser)
		p.login(g, gt.TestToken)
		if status := dialStatus(g.URL+"?access_token="+signedToken(t, "not-the-secret", "mallory"), nil); status != 401 {
			t.Fatalf("a forged token's handshake: %d, want 401", status)
		}
		p.click(`a[data-tab="log"]`)
		p.waitVisible("#view-log")
		p.waitText("#refused-log tbody", "401")
		p.waitText("#auth-log tbody", "deny")
		p.waitText("#auth-log tbody", "alice")
		p.screenshot("log")
	})

	t.Run("Cluster", func(t *testing.T) {
		cb := gt.NewBackend(t)
		gs := startInspectorCluster(t, cb, 2)
		p := openTab(t, browser)
		p.login(gs[0], gt.TestToken)
		remote := newPopulation(t, gs[1], cb)
		c := remote.dial("ivan", jwt.MapClaims{"role": "member"})
		row := p.waitRow("#conn-table", c.ID)
		if node := nodeID(t, gs[1]); !strings.Contains(row, node) {
			t.Errorf("the row of a connection on %s reads %q", node, row)
		}
		local := newPopulation(t, gs[0], cb)
		local.next = len(cb.Events("/connect"))
		subscribers := []*gt.Client{c}
		for _, name := range []string{"judy", "ken"} {
			subscribers = append(subscribers, local.dial(name, jwt.MapClaims{"role": "member"}))
		}
		for _, s := range subscribers {
			mgmtAuth(t, gs[0], "PUT", "/@connections/"+url.PathEscape(s.ID)+"/topics/ticks", "", 204)
		}

		p.click(`a[data-tab="nodes"]`)
		p.waitVisible("#view-nodes")
		for _, gw := range gs {
			p.waitText(fmt.Sprintf(`#nodes-table tr[data-node=%q]`, nodeID(t, gw)), "yes")
		}
		// Traffic between the page's polls, so that the charts have
		// something to draw.
		for i := range 6 {
			for range 2 + 3*(i%3) {
				c.Send(`{"action":"ping"}`)
				c.NextText()
			}
			for range 1 + i%2 {
				mgmtAuth(t, gs[1], "POST", "/@topics/ticks", "tick", 200)
				for _, s := range subscribers {
					s.NextText()
				}
			}
			p.waitNextPoll()
		}
		p.screenshot("nodes")
	})

	t.Run("TextNotHTML", func(t *testing.T) {
		xb := gt.NewBackend(t)
		xg := gt.Start(t, inspectorYAML(xb, ""))
		xu := newPopulation(t, xg, xb)
		const evil = `<img src=x onerror="window.__xss=1">`
		c := xu.dial(evil, jwt.MapClaims{"role": `<b id="bold">admin</b>`})
		p := openTab(t, browser)
		p.login(xg, gt.TestToken)
		row := p.waitRow("#conn-table", c.ID)
		if !strings.Contains(row, evil) || !strings.Contains(row, `role=<b id="bold">admin</b>`) {
			t.Errorf("the row reads %q, want the principal and context as text", row)
		}
		p.click(rowSelector("#conn-table", c.ID))
		p.waitText("#tail-status", "live")
		c.Send(`<script>window.__xss=2</script><img src=y onerror="window.__xss=3">`)
		p.waitText("#tail-list .msg.in .data", `<img src=y onerror="window.__xss=3">`)
		p.click(`a[data-tab="log"]`)
		p.waitText("#auth-log tbody", evil)
		if got := p.evalString(`String(document.querySelectorAll("main img, main script, #bold").length) + "/" + String(window.__xss)`); got != "0/undefined" {
			t.Fatalf("user-supplied text became HTML: elements/__xss = %s", got)
		}
	})
}

// TestInspectorNoAuth checks that without management authentication the
// page skips its login and has nothing to log out of.
func TestInspectorNoAuth(t *testing.T) {
	browser := browsertest.Start(t)
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, ""))
	p := openTab(t, browser)
	p.navigate(g.MgmtURL + "/ui")
	p.waitVisible("#view-connections")
	if got := p.evalString(`String(document.querySelector("#logout").hidden) + "/" + String(document.querySelector("#login").hidden)`); got != "true/true" {
		t.Errorf("logout hidden / login hidden = %s, want true/true", got)
	}
	c := dialUser(t, g, b, "alice", 0, nil)
	p.waitRow("#conn-table", c.ID)
}

// population dials clients of one gateway as users of the jwt authorizer
// and remembers the order of their $connect events, which is how their
// connection ids are found.
type population struct {
	t      *testing.T
	g      *gt.Gateway
	b      *gt.Backend
	next   int
	byName map[string]*gt.Client
}

func newPopulation(t *testing.T, g *gt.Gateway, b *gt.Backend) *population {
	return &population{t: t, g: g, b: b, byName: map[string]*gt.Client{}}
}

// dial connects a client as principal sub with the claims given and
// returns it with its connection id.
func (u *population) dial(sub string, claims jwt.MapClaims) *gt.Client {
	u.t.Helper()
	claims["sub"] = sub
	claims["exp"] = time.Now().Add(time.Hour).Unix()
	tok := mint(u.t, claims)
	c := gt.Dial(u.t, u.g.URL+"?access_token="+tok, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"wsgate-demo-client/1.0"}}})
	c.ID = u.b.ConnectionID(u.t, "/connect", u.next)
	u.next++
	u.byName[sub] = c
	return c
}

// populate connects a handful of users with subscriptions and a little
// traffic, and has two handshakes refused, so that every screen has
// something to show.
func (u *population) populate() {
	u.t.Helper()
	people := []struct {
		name   string
		claims jwt.MapClaims
		topics []string
	}{
		{"alice", jwt.MapClaims{"role": "admin", "level": 3}, []string{"orders/42", "alerts/ops"}},
		{"bob", jwt.MapClaims{"role": "member"}, []string{"orders/42", "chat/lobby"}},
		{"carol", jwt.MapClaims{"role": "member", "level": 2}, []string{"chat/lobby", "prices/EURUSD"}},
		{"dave", jwt.MapClaims{"role": "moderator"}, []string{"chat/lobby", "alerts/ops"}},
		{"erin", jwt.MapClaims{"role": "member"}, []string{"chat/lobby", "prices/EURUSD", "prices/GBPUSD"}},
	}
	for _, p := range people {
		c := u.dial(p.name, p.claims)
		for _, topic := range p.topics {
			mgmtAuth(u.t, u.g, "PUT", "/@connections/"+url.PathEscape(c.ID)+"/topics/"+topic, "", 204)
		}
		c.Send(`{"action":"hello","from":"` + p.name + `"}`)
		c.NextText()
	}
	expired := mint(u.t, jwt.MapClaims{"sub": "oscar", "exp": time.Now().Add(-time.Hour).Unix()})
	for _, q := range []string{"", "?access_token=" + expired} {
		if status := dialStatus(u.g.URL+q, nil); status != 401 {
			u.t.Fatalf("handshake %q: %d, want 401", q, status)
		}
	}
}

// mgmtAuth makes a management call with the test's bearer token and
// requires its status.
func mgmtAuth(t *testing.T, g *gt.Gateway, method, path, body string, want int) string {
	t.Helper()
	status, _, got := g.MgmtDo(t, method, path, strings.NewReader(body), http.Header{"Authorization": {"Bearer " + gt.TestToken}})
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, got, want)
	}
	return got
}

// nodeID is the id the gateway's node has in its cluster.
func nodeID(t *testing.T, g *gt.Gateway) string {
	t.Helper()
	var r struct {
		NodeID string `json:"nodeId"`
	}
	if err := json.Unmarshal([]byte(mgmtAuth(t, g, "GET", "/readyz", "", 200)), &r); err != nil || r.NodeID == "" {
		t.Fatalf("readyz: %v %+v", err, r)
	}
	return r.NodeID
}

// startInspectorCluster starts n gateways with the inspector's
// configuration as nodes of one in-process cluster.
func startInspectorCluster(t *testing.T, b *gt.Backend, n int) []*gt.Gateway {
	t.Helper()
	network := cluster.NewMemoryNetwork()
	var gs []*gt.Gateway
	for range n {
		cfg, err := config.Parse("test.yaml", []byte(inspectorYAML(b, "registry: {heartbeat_interval: 50ms, node_timeout: 10s}\n")))
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, gt.StartNode(t, cfg, network.Engine()))
	}
	for _, g := range gs {
		gt.Eventually(t, func() bool {
			status, _, _ := g.MgmtDo(t, "GET", "/readyz", nil, nil)
			return status == 200
		}, "node ready")
	}
	return gs
}

// page is one browser tab showing the inspector.
type page struct {
	t   *testing.T
	ctx context.Context

	// problemsMu guards problems: uncaught exceptions and Content Security
	// Policy violations the page reported.
	problemsMu sync.Mutex
	problems   []string
}

// openTab opens a tab of browsertest.Width×Height with its own
// sessionStorage. The tab is closed, and the test fails if the page threw an
// uncaught exception or violated its Content Security Policy, when the test
// ends.
func openTab(t *testing.T, b *browsertest.Browser) *page {
	t.Helper()
	ctx := b.NewTab(t)
	p := &page{t: t, ctx: ctx}
	listen, stop := context.WithCancel(ctx)
	messages := chromedp.Console(listen)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleException || strings.Contains(m.Text, "Content Security Policy") {
				p.problemsMu.Lock()
				p.problems = append(p.problems, fmt.Sprintf("%s: %s", m.Type, m.Text))
				p.problemsMu.Unlock()
			}
		}
	}()
	// This runs before the tab closes (NewTab's cleanup was registered
	// first).
	t.Cleanup(func() {
		stop()
		<-done
		p.problemsMu.Lock()
		defer p.problemsMu.Unlock()
		for _, m := range p.problems {
			t.Errorf("page console: %s", m)
		}
	})
	return p
}

func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, inspectorWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage text:\n%s", what, err, p.text())
	}
}

// text is what the page shows, for failure messages.
func (p *page) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

func (p *page) navigate(u string) {
	p.t.Helper()
	p.do("navigate to "+u, chromedp.Navigate(u))
}

func (p *page) waitVisible(sel string) {
	p.t.Helper()
	p.do("wait for "+sel+" to show", chromedp.WaitVisible(chromedp.CSS(sel)))
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

func (p *page) typeInto(sel, text string) {
	p.t.Helper()
	p.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (p *page) setValue(sel, value string) {
	p.t.Helper()
	p.do("set "+sel, chromedp.SetValue(chromedp.CSS(sel), value))
}

func (p *page) eval(js string) {
	p.t.Helper()
	p.do("evaluate "+js, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](js)(ctx, t)
		return err
	}))
}

func (p *page) evalString(js string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, inspectorWait)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// poll waits until the JavaScript expression js is truthy.
func (p *page) poll(what, js string) {
	p.t.Helper()
	p.do(what, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(inspectorWait)))
}

// waitText waits until an element that sel matches contains text.
func (p *page) waitText(sel, text string) {
	p.t.Helper()
	p.poll(fmt.Sprintf("wait for %s to show %q", sel, text),
		fmt.Sprintf(`[...document.querySelectorAll(%s)].some((e) => e.textContent.includes(%s))`, jsString(sel), jsString(text)))
}

// waitGone waits until nothing matches sel.
func (p *page) waitGone(sel string) {
	p.t.Helper()
	p.poll("wait for "+sel+" to go", fmt.Sprintf(`document.querySelector(%s) === null`, jsString(sel)))
}

// waitRow waits until table has the row of key (a connection id or a
// topic) and returns its cells' text, separated by " | ".
func (p *page) waitRow(table, key string) string {
	p.t.Helper()
	sel := rowSelector(table, key)
	p.poll("wait for the row of "+key, fmt.Sprintf(`document.querySelector(%s) !== null`, jsString(sel)))
	return p.evalString(fmt.Sprintf(`[...document.querySelector(%s).cells].map((c) => c.textContent).join(" | ")`, jsString(sel)))
}

// waitNextPoll waits until the Nodes screen has shown a newer answer of
// GET /@nodes than the one it shows now.
func (p *page) waitNextPoll() {
	p.t.Helper()
	before := p.evalString(`document.querySelector("#nodes-at").textContent`)
	p.poll("wait for the next GET /@nodes", fmt.Sprintf(`document.querySelector("#nodes-at").textContent !== %s`, jsString(before)))
}

// login opens the inspector of g and signs in with token.
func (p *page) login(g *gt.Gateway, token string) {
	p.t.Helper()
	p.navigate(g.MgmtURL + "/ui/")
	p.waitVisible("#token")
	p.typeInto("#token", token)
	p.click("#login-btn")
	p.waitVisible("#view-connections")
}

// screenshot saves the viewport as ui-NAME.png (browsertest.Screenshot) and,
// with WSGATE_UPDATE_SCREENSHOTS=1, copies it to docs/images.
func (p *page) screenshot(name string) {
	p.t.Helper()
	p.poll("wait for fonts", `document.fonts.status === "loaded"`)
	path := browsertest.Screenshot(p.ctx, p.t, "ui-"+name)
	if os.Getenv(updateScreenshotsEnv) != "1" {
		return
	}
	png, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "images", "ui-"+name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// rowSelector selects the row of key in table.
func rowSelector(table, key string) string {
	attr := "data-id"
	if table == "#topic-table" {
		attr = "data-topic"
	}
	return fmt.Sprintf(`%s tbody tr[%s=%s]`, table, attr, strconv.Quote(key))
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
