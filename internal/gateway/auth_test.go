package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

func mint(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(gt.TestJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwtConfig(b *gt.Backend, extra string) string {
	return fmt.Sprintf(`
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256], context_claims: [role, level, admin]}
%s
routes:
  $connect: {integration: {type: http, url: %q}}
  $disconnect: {integration: {type: http, url: %q}}
  $default: {integration: {type: http, url: %q}, route_response: true}
  ban: {integration: {type: http, url: %q}, route_response: true, require: {role: [admin, moderator]}}
`, extra, b.URLFor("/connect"), b.URLFor("/disconnect"), b.URLFor("/default"), b.URLFor("/ban"))
}

func dialStatus(url string, opts *websocket.DialOptions) int {
	c, resp, err := gt.TryDial(url, opts)
	if err == nil {
		_ = c.CloseNow()
		return 101
	}
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// TestJWTIdentityInEveryEvent: the $connect integration, messages and
// $disconnect all carry requestContext.authorizer, stringified as AWS does.
func TestJWTIdentityInEveryEvent(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, ""))
	tok := mint(t, jwt.MapClaims{"sub": "user-1", "role": "admin", "level": 3, "admin": true, "exp": time.Now().Add(time.Hour).Unix()})
	c := gt.Dial(t, g.URL+"?access_token="+tok, nil)
	c.Send(`{"action":"hello"}`)
	c.NextText()
	_ = c.Close(websocket.StatusNormalClosure, "")
	dis := b.WaitEvent(t, "/disconnect", nil)
	for _, ev := range []gt.Event{b.Events("/connect")[0], b.Events("/default")[0], dis} {
		var raw struct {
			RequestContext struct {
				Authorizer map[string]any `json:"authorizer"`
			} `json:"requestContext"`
		}
		if err := json.Unmarshal(ev.Raw, &raw); err != nil {
			t.Fatal(err)
		}
		a := raw.RequestContext.Authorizer
		if a["principalId"] != "user-1" || a["role"] != "admin" || a["level"] != "3" || a["admin"] != "true" {
			t.Fatalf("%s event authorizer = %v", ev.RequestContext.EventType, a)
		}
		if _, ok := a["integrationLatency"].(float64); !ok {
			t.Fatalf("%s event integrationLatency = %v", ev.RequestContext.EventType, a["integrationLatency"])
		}
	}
	if strings.Contains(g.Logs.String(), tok) {
		t.Fatal("the token reached the log")
	}
}

func TestJWTRefusals(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, ""))
	exp := time.Now().Add(time.Hour).Unix()
	cases := []struct {
		name string
		url  string
		want int
	}{
		{"no token", g.URL, 401},
		{"empty token", g.URL + "?access_token=", 401},
		{"garbage", g.URL + "?access_token=not.a.jwt", 401},
		{"expired", g.URL + "?access_token=" + mint(t, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(-time.Hour).Unix()}), 401},
		{"no exp", g.URL + "?access_token=" + mint(t, jwt.MapClaims{"sub": "u"}), 401},
		{"no sub", g.URL + "?access_token=" + mint(t, jwt.MapClaims{"exp": exp}), 401},
		{"valid", g.URL + "?access_token=" + mint(t, jwt.MapClaims{"sub": "u", "exp": exp}), 101},
	}
	for _, tc := range cases {
		if got := dialStatus(tc.url, nil); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := len(b.Events("/connect")); n != 1 {
		t.Fatalf("$connect integration ran %d times; refused clients must not reach it", n)
	}
}

func TestRequireRules(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, ""))
	exp := time.Now().Add(time.Hour).Unix()
	admin := gt.Dial(t, g.URL+"?access_token="+mint(t, jwt.MapClaims{"sub": "a", "role": "moderator", "exp": exp}), nil)
	user := gt.Dial(t, g.URL+"?access_token="+mint(t, jwt.MapClaims{"sub": "u", "role": "user", "exp": exp}), nil)
	anon := gt.Dial(t, g.URL+"?access_token="+mint(t, jwt.MapClaims{"sub": "n", "exp": exp}), nil)
	admin.Send(`{"action":"ban"}`)
	if got := admin.NextText(); got != `{"action":"ban"}` {
		t.Fatalf("allowed role got %q", got)
	}
	for _, c := range []*gt.Client{user, anon} {
		c.Send(`{"action":"ban"}`)
		if got := c.NextText(); !strings.HasPrefix(got, `{"message": "Forbidden", "connectionId":"`) {
			t.Fatalf("refused role got %q", got)
		}
	}
	if n := len(b.Events("/ban")); n != 1 {
		t.Fatalf("the ban route's backend saw %d messages, want only the allowed one", n)
	}
}

func TestTokenExpiryAndRefresh(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, ""))
	short := func(sub string, d time.Duration) string {
		return mint(t, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(d).Unix()})
	}
	// Expires without a refresh: closed with 4401.
	c := gt.Dial(t, g.URL+"?access_token="+short("u1", 2*time.Second), nil)
	c.ExpectClose(4401)
	dis := b.WaitEvent(t, "/disconnect", nil)
	if dis.RequestContext.DisconnectStatusCode != 4401 {
		t.Fatalf("$disconnect code %d, want 4401", dis.RequestContext.DisconnectStatusCode)
	}

	// A refresh for another principal or with a bad token is refused and
	// changes nothing; one for the same principal moves the expiry.
	firstExp := time.Now().Add(2 * time.Second)
	c2 := gt.Dial(t, g.URL+"?access_token="+mint(t, jwt.MapClaims{"sub": "u2", "exp": firstExp.Unix()}), nil)
	c2.Send(`{"action":"$refresh","token":"` + short("someone-else", time.Hour) + `"}`)
	if got := c2.NextText(); !strings.Contains(got, `"Forbidden"`) {
		t.Fatalf("refresh for another principal: %q", got)
	}
	c2.Send(`{"action":"$refresh","token":"garbage"}`)
	if got := c2.NextText(); !strings.Contains(got, `"Forbidden"`) {
		t.Fatalf("refresh with a bad token: %q", got)
	}
	c2.Send(`{"action":"$refresh","token":"` + short("u2", time.Hour) + `"}`)
	if got := c2.NextText(); !strings.HasPrefix(got, `{"action":"$refresh","expiresAt":"`) {
		t.Fatalf("refresh reply %q", got)
	}
	// Once the first token's expiry has passed, the connection still works.
	gt.Eventually(t, func() bool { return time.Now().After(firstExp.Add(1500 * time.Millisecond)) }, "the first token's expiry to pass")
	c2.Send(`{"action":"still-here"}`)
	if got := c2.NextText(); got != `{"action":"still-here"}` {
		t.Fatalf("after refresh: %q", got)
	}
	if n := len(b.Events("/disconnect")); n != 1 {
		t.Fatalf("%d disconnects; the refreshed connection was closed", n)
	}
	if len(b.Events("/default")) == 0 {
		t.Fatal("the refresh route leaked to $default")
	}
	for _, e := range b.Events("/default") {
		if strings.Contains(e.Body, "$refresh") {
			t.Fatal("a $refresh message reached the backend")
		}
	}
}

func TestOriginAndSubprotocolChecks(t *testing.T) {
	var authorizerCalls atomic.Int32
	authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authorizerCalls.Add(1)
		_, _ = io.WriteString(w, `{"principalId":"p","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]}}`)
	}))
	defer authz.Close()
	g := gt.Start(t, fmt.Sprintf(`
origins: ["https://app.example.com", "https://*.example.org"]
subprotocols: [chat, v2.chat]
authorizer:
  type: request
  request: {url: %q}
`, authz.URL))
	hdr := func(origin string) *websocket.DialOptions {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return &websocket.DialOptions{HTTPHeader: h}
	}
	for origin, want := range map[string]int{
		"https://app.example.com":      101,
		"https://a.b.example.org":      101,
		"":                             101,
		"https://evil.example.com":     403,
		"https://example.org":          403,
		"http://app.example.com":       403,
		"https://app.example.com.evil": 403,
		"null":                         403,
	} {
		before := authorizerCalls.Load()
		if got := dialStatus(g.URL, hdr(origin)); got != want {
			t.Errorf("Origin %q: status %d, want %d", origin, got, want)
		}
		if want == 403 && authorizerCalls.Load() != before {
			t.Errorf("Origin %q: the authorizer ran for a foreign origin", origin)
		}
	}
	// Subprotocols: the server's choice among those offered; an offer with
	// none acceptable is a 400, not a 101 the browser would drop.
	c := gt.Dial(t, g.URL, &websocket.DialOptions{Subprotocols: []string{"v2.chat", "chat"}})
	if p := c.Subprotocol(); p != "chat" {
		t.Fatalf("subprotocol %q, want chat", p)
	}
	if got := dialStatus(g.URL, &websocket.DialOptions{Subprotocols: []string{"mqtt"}}); got != 400 {
		t.Fatalf("unacceptable subprotocol: status %d, want 400", got)
	}
}

func TestRequestAuthorizerEndToEnd(t *testing.T) {
	var mode atomic.Value
	mode.Store("allow")
	var calls atomic.Int32
	var lastEvent atomic.Value
	authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		lastEvent.Store(string(body))
		switch mode.Load() {
		case "allow":
			_, _ = io.WriteString(w, `{"principalId":"me","context":{"tier":"gold","n":1,"b":false},"policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect"}]}}`)
		case "deny":
			_, _ = io.WriteString(w, `{"principalId":"me","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Deny","Resource":"*"}]}}`)
		case "unauthorized":
			w.WriteHeader(401)
			_, _ = io.WriteString(w, "Unauthorized")
		case "bad-context":
			_, _ = io.WriteString(w, `{"principalId":"me","context":{"x":{"nested":1}},"policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]}}`)
		}
	}))
	defer authz.Close()
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
stage: prod
authorizer:
  type: request
  identity_sources: [route.request.querystring.Auth]
  cache_ttl: 1h
  request: {url: %q}
routes:
  $default: {integration: {type: http, url: %q}, route_response: true}
`, authz.URL, b.URLFor("/default")))
	// Missing identity source: 401 without calling the authorizer.
	if got := dialStatus(g.URL, nil); got != 401 || calls.Load() != 0 {
		t.Fatalf("no Auth: status %d after %d authorizer calls, want 401 and none", got, calls.Load())
	}
	c := gt.Dial(t, g.URL+"?Auth=secret-1", nil)
	var ev map[string]any
	_ = json.Unmarshal([]byte(lastEvent.Load().(string)), &ev)
	if ev["type"] != "REQUEST" || ev["methodArn"] != "arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect" {
		t.Fatalf("authorizer event type=%v methodArn=%v", ev["type"], ev["methodArn"])
	}
	c.Send("hi")
	c.NextText()
	msg := b.WaitEvent(t, "/default", nil)
	var raw struct {
		RequestContext struct{ Authorizer map[string]any } `json:"requestContext"`
	}
	_ = json.Unmarshal(msg.Raw, &raw)
	if a := raw.RequestContext.Authorizer; a["principalId"] != "me" || a["tier"] != "gold" || a["n"] != "1" || a["b"] != "false" {
		t.Fatalf("message authorizer context %v", a)
	}
	for m, want := range map[string]int{"deny": 403, "unauthorized": 401, "bad-context": 500} {
		mode.Store(m)
		if got := dialStatus(g.URL+"?Auth=fresh-"+m, nil); got != want {
			t.Errorf("%s: status %d, want %d", m, got, want)
		}
	}
	// The cache: an allowed key stays allowed and a denied key stays denied
	// without asking again; a failure is not cached.
	mode.Store("deny")
	before := calls.Load()
	if got := dialStatus(g.URL+"?Auth=secret-1", nil); got != 101 {
		t.Fatalf("cached Allow: status %d", got)
	}
	mode.Store("allow")
	if got := dialStatus(g.URL+"?Auth=fresh-deny", nil); got != 403 {
		t.Fatalf("cached Deny turned into %d", got)
	}
	if calls.Load() != before {
		t.Fatalf("cached decisions called the authorizer %d more times", calls.Load()-before)
	}
	if got := dialStatus(g.URL+"?Auth=fresh-bad-context", nil); got != 101 {
		t.Fatalf("a failed decision was cached: status %d", got)
	}
}

func TestBasicAndAPIKeyEndToEnd(t *testing.T) {
	dir := t.TempDir()
	// bcrypt of "secret" at cost 4.
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), 4)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := dir + "/users"
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := gt.Start(t, fmt.Sprintf("authorizer:\n  type: basic\n  basic: {htpasswd_file: %q}\n", htpasswd))
	basic := func(user, pass string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}}
	}
	if got := dialStatus(g.URL, basic("alice", "secret")); got != 101 {
		t.Fatalf("basic alice: %d", got)
	}
	for _, o := range []*websocket.DialOptions{basic("alice", "wrong"), basic("bob", "secret"), nil} {
		_, resp, err := gt.TryDial(g.URL, o)
		if err == nil || resp == nil || resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
			t.Fatalf("basic refusal: err=%v resp=%v", err, resp)
		}
	}

	keys := dir + "/keys"
	if err := os.WriteFile(keys, []byte("# keys\nkey-one\nkey-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g2 := gt.Start(t, fmt.Sprintf("authorizer:\n  type: apikey\n  identity_sources: [route.request.querystring.key]\n  apikey: {keys_file: %q}\n", keys))
	for key, want := range map[string]int{"key-one": 101, "key-two": 101, "key-three": 403, "": 401} {
		if got := dialStatus(g2.URL+"?key="+key, nil); got != want {
			t.Errorf("api key %q: status %d, want %d", key, got, want)
		}
	}
	if strings.Contains(g2.Logs.String(), "key-one") || strings.Contains(g.Logs.String(), "secret") {
		t.Fatal("a credential reached the log")
	}
}

func TestCSRFWithGoClient(t *testing.T) {
	g := gt.Start(t, `
origins: ["https://app.example.com"]
authorizer:
  type: jwt
  identity_sources: [route.request.cookie.session]
  csrf: {cookie: csrf_token, query: csrf}
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256]}
`)
	tok := mint(t, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
	opts := func(cookie string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {cookie}, "Origin": {"https://app.example.com"}}}
	}
	cases := []struct {
		name, query, cookie string
		want                int
	}{
		{"match", "?csrf=abc", "session=" + tok + "; csrf_token=abc", 101},
		{"mismatch", "?csrf=abd", "session=" + tok + "; csrf_token=abc", 403},
		{"no query", "", "session=" + tok + "; csrf_token=abc", 403},
		{"no csrf cookie", "?csrf=abc", "session=" + tok, 403},
		{"no session", "?csrf=abc", "csrf_token=abc", 401},
	}
	for _, tc := range cases {
		if got := dialStatus(g.URL+tc.query, opts(tc.cookie)); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestJWTFromBearerHeader(t *testing.T) {
	g := gt.Start(t, `
authorizer:
  type: jwt
  identity_sources: [route.request.header.Authorization]
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256]}
`)
	tok := mint(t, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
	for _, tc := range []struct {
		values []string
		want   int
	}{
		{[]string{"Bearer " + tok}, 101},
		{[]string{"bearer " + tok}, 101},
		{[]string{tok}, 101},
		{[]string{"Bearer x" + tok}, 401},
		{[]string{"Basic abc"}, 401},
		// Of repeated headers the last one is verified.
		{[]string{"Bearer garbage", "Bearer " + tok}, 101},
		{[]string{"Bearer " + tok, "Bearer garbage"}, 401},
		{[]string{"Bearer " + tok, ""}, 401},
	} {
		if got := dialStatus(g.URL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": tc.values}}); got != tc.want {
			t.Errorf("Authorization %.12q…: status %d, want %d", tc.values, got, tc.want)
		}
	}
}

func TestStageVariableIdentitySource(t *testing.T) {
	var got atomic.Value
	authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.Store(string(body))
		_, _ = io.WriteString(w, `{"principalId":"p","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]}}`)
	}))
	defer authz.Close()
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
stage_variables: {tenant: acme}
authorizer:
  type: request
  identity_sources: [stageVariables.tenant, route.request.header.X-Key]
  request: {url: %q}
routes:
  $connect: {integration: {type: http, url: %q}}
`, authz.URL, b.URLFor("/connect")))
	if s := dialStatus(g.URL, nil); s != 401 {
		t.Fatalf("without X-Key: %d", s)
	}
	if s := dialStatus(g.URL, &websocket.DialOptions{HTTPHeader: http.Header{"X-Key": {"k"}}}); s != 101 {
		t.Fatalf("with X-Key: %d", s)
	}
	var ev struct {
		StageVariables map[string]string `json:"stageVariables"`
	}
	_ = json.Unmarshal([]byte(got.Load().(string)), &ev)
	if ev.StageVariables["tenant"] != "acme" {
		t.Fatalf("authorizer event stageVariables %v", ev.StageVariables)
	}
	if sv := b.Events("/connect")[0].StageVariables; sv["tenant"] != "acme" {
		t.Fatalf("$connect event stageVariables %v", sv)
	}
}
