package gateway_test

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/browsertest"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestBrowser connects a real headless Chromium to the gateway: a page
// served here opens WebSockets the way browser applications do, with the
// credentials where a browser can put them (query string, subprotocol list,
// an HttpOnly cookie), and a page on a foreign origin is refused.
func TestBrowser(t *testing.T) {
	b := browsertest.Start(t)
	page := startPageServer(t, "127.0.0.1")
	foreign := startPageServer(t, "127.0.0.2")

	t.Run("NoAuthEcho", func(t *testing.T) {
		g := gt.Start(t, "")
		res := runSteps(t, b, page.URL,
			step{"text", exchangeJS(g.URL, nil, "héllo from chromium")},
			step{"json", exchangeJS(g.URL, nil, `{"action":"anything","n":1}`)})
		res.requireEcho(t, "text", "héllo from chromium")
		res.requireEcho(t, "json", `{"action":"anything","n":1}`)
	})

	t.Run("QueryStringToken", func(t *testing.T) {
		gw := startAuthGateway(t, page.Origin, "[route.request.querystring.access_token]", "")
		res := runSteps(t, b, page.URL,
			step{"token", exchangeJS(gw.URL+"?access_token="+signedToken(t, gt.TestJWTSecret, "user-a"), nil, "hello query")},
			step{"noToken", exchangeJS(gw.URL, nil, "x")},
			step{"forged", exchangeJS(gw.URL+"?access_token="+signedToken(t, "not-the-secret", "user-a"), nil, "x")})
		res.requireEcho(t, "token", "hello query")
		res.requireRefused(t, "noToken")
		res.requireRefused(t, "forged")
		gw.requireStatuses(t, 101, 401, 401)
		gw.requirePrincipals(t, "user-a")
	})

	t.Run("SubprotocolToken", func(t *testing.T) {
		gw := startAuthGateway(t, page.Origin, "[route.request.subprotocol]", "")
		res := runSteps(t, b, page.URL,
			step{"token", exchangeJS(gw.URL, []string{"chat", signedToken(t, gt.TestJWTSecret, "user-b")}, "hello subprotocol")},
			step{"noToken", exchangeJS(gw.URL, []string{"chat"}, "x")})
		// The 101 names the protocol the page speaks, never the token: a
		// browser fails any handshake that selects a protocol it did not
		// offer, and ws.protocol shows which one was selected.
		res.requireEcho(t, "token", "hello subprotocol")
		if p := res.get(t, "token").Protocol; p != "chat" {
			t.Errorf("ws.protocol = %q, want chat", p)
		}
		res.requireRefused(t, "noToken")
		gw.requireStatuses(t, 101, 401)
		gw.requirePrincipals(t, "user-b")
	})

	t.Run("CookieAndCSRF", func(t *testing.T) {
		gw := startAuthGateway(t, page.Origin, "[route.request.cookie.session]", "  csrf: {cookie: csrf_token, query: csrf}")
		withCSRF := func(suffix string) string {
			return fmt.Sprintf(`%s + "?csrf=" + encodeURIComponent(cookie("csrf_token") + %s)`, jsValue(gw.URL), jsValue(suffix))
		}
		res := runSteps(t, b, page.URL,
			step{"login", `fetch("/login?user=user-c", {method: "POST"}).then((r) => r.status)`},
			step{"sessionReadable", `document.cookie.includes("session=")`},
			step{"noCSRF", exchangeJS(gw.URL, nil, "x")},
			step{"wrongCSRF", fmt.Sprintf(`exchange(%s, [], "x")`, withCSRF("x"))},
			step{"csrf", fmt.Sprintf(`exchange(%s, [], "hello cookie")`, withCSRF(""))})
		if got := string(res["login"]); got != "204" {
			t.Fatalf("POST /login answered %s, want 204", got)
		}
		if got := string(res["sessionReadable"]); got != "false" {
			t.Fatalf("page script can read the session cookie (%s); it must be HttpOnly", got)
		}
		res.requireRefused(t, "noCSRF")
		res.requireRefused(t, "wrongCSRF")
		res.requireEcho(t, "csrf", "hello cookie")
		gw.requireStatuses(t, 403, 403, 101)
		gw.requirePrincipals(t, "user-c")
	})

	t.Run("ForeignOrigin", func(t *testing.T) {
		gw := startAuthGateway(t, page.Origin, "[route.request.querystring.access_token]", "")
		url := gw.URL + "?access_token=" + signedToken(t, gt.TestJWTSecret, "user-d")
		res := runSteps(t, b, foreign.URL, step{"foreign", exchangeJS(url, nil, "x")})
		res.requireRefused(t, "foreign")
		// The same token from the allowed origin connects: the origin alone
		// made the difference.
		res = runSteps(t, b, page.URL, step{"own", exchangeJS(url, nil, "hello origin")})
		res.requireEcho(t, "own", "hello origin")
		gw.requireStatuses(t, 403, 101)
		gw.requirePrincipals(t, "user-d")
	})
}

// testPage is the page the browser loads. exchange opens a WebSocket, sends
// message once it is open and resolves with what happened: {echo, protocol}
// for the first message back, {closed, error} when the connection ended
// first (a refused handshake is close code 1006 with an error event), or
// {timeout: true}.
const testPage = `<!doctype html>
<meta charset="utf-8">
<title>wsgate browser test</title>
<script>
function exchange(url, protocols, message) {
  return new Promise((resolve) => {
    let ws;
    let errored = false;
    try {
      ws = new WebSocket(url, protocols);
    } catch (e) {
      resolve({error: true, thrown: String(e)});
      return;
    }
    const timer = setTimeout(() => { resolve({timeout: true}); ws.close(); }, 5000);
    ws.onopen = () => ws.send(message);
    ws.onmessage = (ev) => {
      clearTimeout(timer);
      resolve({echo: String(ev.data), protocol: ws.protocol});
      ws.close(1000);
    };
    ws.onerror = () => { errored = true; };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      resolve({closed: ev.code, error: errored});
    };
  });
}

function cookie(name) {
  const c = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return c === undefined ? "" : decodeURIComponent(c.slice(name.length + 1));
}
</script>
`

// pageServer serves testPage at / and a login endpoint, POST
// /login?user=NAME, that sets an HttpOnly session cookie holding a JWT for
// NAME and a csrf_token cookie that page scripts can read.
type pageServer struct {
	*httptest.Server
	// Origin is the page's origin, http://HOST:PORT.
	Origin string
}

func startPageServer(t *testing.T, host string) *pageServer {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, testPage)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		tok, err := signToken(gt.TestJWTSecret, r.URL.Query().Get("user"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.SetCookie(w, &http.Cookie{Name: "csrf_token", Value: rand.Text(), Path: "/", SameSite: http.SameSiteStrictMode})
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatalf("page server on %s: %v", host, err)
	}
	srv := httptest.NewUnstartedServer(mux)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return &pageServer{Server: srv, Origin: srv.URL}
}

// authGateway is a gateway with a jwt authorizer whose $connect route goes
// to a recording backend, reached through a handshakeTap.
type authGateway struct {
	*gt.Gateway
	backend *gt.Backend
	tap     *handshakeTap
	// URL is the client endpoint through the tap.
	URL string
}

// startAuthGateway starts a gateway that accepts browsers from origin only,
// speaks the subprotocol chat and authenticates with HS256 tokens found in
// sources (a YAML list). extra is more authorizer configuration, indented
// by two spaces.
func startAuthGateway(t *testing.T, origin, sources, extra string) *authGateway {
	t.Helper()
	backend := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
origins: [%q]
subprotocols: [chat]
authorizer:
  type: jwt
  identity_sources: %s
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256]}
%s
routes:
  $connect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock}, route_response: true}
`, origin, sources, extra, backend.URLFor("/connect")))
	tap := startTap(t, g.Addr())
	return &authGateway{Gateway: g, backend: backend, tap: tap, URL: "ws://" + tap.ln.Addr().String() + g.Config.UpgradePath()}
}

// requireStatuses requires the gateway to have answered the handshakes with
// these statuses, in order.
func (gw *authGateway) requireStatuses(t *testing.T, want ...int) {
	t.Helper()
	if got := gw.tap.Statuses(); !slices.Equal(got, want) {
		t.Errorf("the gateway answered the browser's handshakes with %v, want %v", got, want)
	}
}

// requirePrincipals requires one $connect event per accepted connection,
// each carrying the principal the authorizer established.
func (gw *authGateway) requirePrincipals(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	for _, ev := range gw.backend.Events("/connect") {
		a, _ := ev.RequestContext.Authorizer.(map[string]any)
		p, _ := a["principalId"].(string)
		got = append(got, p)
	}
	if !slices.Equal(got, want) {
		t.Errorf("$connect events carry principals %q, want %q", got, want)
	}
}

// signToken returns an HS256 token for sub that expires in an hour.
func signToken(secret, sub string) (string, error) {
	claims := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

func signedToken(t *testing.T, secret, sub string) string {
	t.Helper()
	tok, err := signToken(secret, sub)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// step is one named JavaScript expression of a runSteps sequence.
type step struct{ name, js string }

// steps are the results of a runSteps sequence by step name.
type steps map[string]json.RawMessage

// runSteps loads pageURL and evaluates the steps one after another, each
// awaited before the next starts, in one page.
func runSteps(t *testing.T, b *browsertest.Browser, pageURL string, list ...step) steps {
	t.Helper()
	var js strings.Builder
	js.WriteString("(async () => {\n  const r = {};\n")
	for _, s := range list {
		fmt.Fprintf(&js, "  r[%s] = await %s;\n", jsValue(s.name), s.js)
	}
	js.WriteString("  return r;\n})()")
	var out steps
	raw := b.Eval(t, pageURL, js.String())
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("steps result %s: %v", raw, err)
	}
	return out
}

// exchangeResult is what the page's exchange function resolved with.
type exchangeResult struct {
	Echo     *string `json:"echo"`
	Protocol string  `json:"protocol"`
	Closed   int     `json:"closed"`
	Error    bool    `json:"error"`
	Thrown   string  `json:"thrown"`
	Timeout  bool    `json:"timeout"`
}

func (s steps) get(t *testing.T, name string) exchangeResult {
	t.Helper()
	var r exchangeResult
	if err := json.Unmarshal(s[name], &r); err != nil {
		t.Fatalf("%s: result %s: %v", name, s[name], err)
	}
	return r
}

// requireEcho requires the exchange name to have received want back.
func (s steps) requireEcho(t *testing.T, name, want string) {
	t.Helper()
	if r := s.get(t, name); r.Echo == nil || *r.Echo != want {
		t.Errorf("%s: exchange gave %s, want the echo %q", name, s[name], want)
	}
}

// requireRefused requires the exchange name to have failed the way a
// browser reports a refused handshake: an error event, then close 1006.
func (s steps) requireRefused(t *testing.T, name string) {
	t.Helper()
	if r := s.get(t, name); r.Echo != nil || !r.Error || r.Closed != 1006 {
		t.Errorf("%s: exchange gave %s, want a refused connection (error, close 1006)", name, s[name])
	}
}

// exchangeJS is a call of the page's exchange function.
func exchangeJS(url string, protocols []string, message string) string {
	if protocols == nil {
		protocols = []string{}
	}
	return fmt.Sprintf("exchange(%s, %s, %s)", jsValue(url), jsValue(protocols), jsValue(message))
}

// jsValue is v as a JavaScript literal.
func jsValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// handshakeTap is a TCP relay in front of the gateway that passes bytes
// through unchanged and records the status code of each handshake answer.
// A browser reports every refused handshake as close code 1006; the tap is
// how the test sees what the gateway actually answered.
type handshakeTap struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and every relay

	mu       sync.Mutex
	statuses []int
	conns    map[net.Conn]struct{}
	closed   bool
}

// startTap relays 127.0.0.1:PORT to target until the test ends.
func startTap(t *testing.T, target string) *handshakeTap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &handshakeTap{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Statuses returns the handshake statuses recorded so far, in order.
func (p *handshakeTap) Statuses() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.statuses)
}

func (p *handshakeTap) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.relay(c)
	}
}

// relay copies one connection both ways. The status line of the gateway's
// answer is recorded before the client sees it, so a status is known by
// the time the page learns the outcome.
func (p *handshakeTap) relay(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client, server) {
		return
	}
	defer p.untrack(client, server)
	up := make(chan struct{})
	go func() {
		defer close(up)
		_, _ = io.Copy(server, client)
		_ = server.Close()
	}()
	br := bufio.NewReader(server)
	if line, err := br.ReadString('\n'); err == nil {
		p.record(line)
		if _, err := io.WriteString(client, line); err == nil {
			_, _ = io.Copy(client, br)
		}
	}
	_ = client.Close()
	<-up
}

// record keeps the status of an HTTP status line ("HTTP/1.1 101 ...").
func (p *handshakeTap) record(line string) {
	status := -1
	if f := strings.Fields(line); len(f) >= 2 {
		if n, err := strconv.Atoi(f[1]); err == nil {
			status = n
		}
	}
	p.mu.Lock()
	p.statuses = append(p.statuses, status)
	p.mu.Unlock()
}

// track registers a relayed pair so close can end it; after close it closes
// the pair and reports false.
func (p *handshakeTap) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *handshakeTap) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// close stops accepting, ends every relayed connection and waits for the
// relays.
func (p *handshakeTap) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
