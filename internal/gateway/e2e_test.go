package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{15}=$`)

// backendConfig is a config whose routes all go to b.
func backendConfig(b *gt.Backend, extra string) string {
	return fmt.Sprintf(`
stage: prod
routes:
  $connect: {integration: {type: http, url: %q}}
  $disconnect: {integration: {type: http, url: %q}}
  $default: {integration: {type: http, url: %q}, route_response: true}
  sendmessage: {integration: {type: http, url: %q}}
  echo: {integration: {type: http, url: %q}, route_response: true}
%s`, b.URLFor("/connect"), b.URLFor("/disconnect"), b.URLFor("/default"), b.URLFor("/send"), b.URLFor("/echo"), extra)
}

func TestEmbeddedDefaultEchoes(t *testing.T) {
	g := gt.Start(t, "")
	c := gt.Dial(t, g.URL, nil)
	c.Send(`{"action":"anything","n":1}`)
	if got := c.NextText(); got != `{"action":"anything","n":1}` {
		t.Fatalf("echo = %q", got)
	}
	c.Send("not json")
	if got := c.NextText(); got != "not json" {
		t.Fatalf("echo = %q", got)
	}
}

func TestRoutingToBackends(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, ""))
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)
	if !idPattern.MatchString(id) {
		t.Fatalf("connection id %q is not 16 URL-safe base64 characters ending in =", id)
	}

	// A custom route without route_response: delivered, nothing comes back.
	c.Send(`{"action":"sendmessage","data":"hi"}`)
	ev := b.WaitEvent(t, "/send", nil)
	if ev.RequestContext.RouteKey != "sendmessage" || ev.Body != `{"action":"sendmessage","data":"hi"}` {
		t.Fatalf("send event routeKey=%q body=%q", ev.RequestContext.RouteKey, ev.Body)
	}
	if ev.RequestContext.EventType != "MESSAGE" || ev.RequestContext.ConnectionID != id {
		t.Fatalf("send event type=%q conn=%q", ev.RequestContext.EventType, ev.RequestContext.ConnectionID)
	}

	// A route with route_response returns the proxy body.
	b.On("/echo", func(e gt.Event) gt.Reply {
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: "echo:" + e.Body}}
	})
	c.Send(`{"action":"echo"}`)
	if got := c.NextText(); got != `echo:{"action":"echo"}` {
		t.Fatalf("route response = %q", got)
	}
	// No match and non-JSON both go to $default.
	c.Send(`{"action":"nosuchroute"}`)
	if got := c.NextText(); got != `{"action":"nosuchroute"}` {
		t.Fatalf("$default reply = %q", got)
	}
	c.Send(`plain text`)
	if got := c.NextText(); got != `plain text` {
		t.Fatalf("$default reply for non-JSON = %q", got)
	}
	for _, e := range b.Events("/default") {
		if e.RequestContext.RouteKey != "$default" {
			t.Fatalf("$default event has routeKey %q", e.RequestContext.RouteKey)
		}
	}
	// Nested selection paths.
	_ = c.Close(websocket.StatusNormalClosure, "bye")
	dis := b.WaitEvent(t, "/disconnect", nil)
	if dis.RequestContext.DisconnectStatusCode != 1000 || dis.RequestContext.DisconnectReason == nil || *dis.RequestContext.DisconnectReason != "bye" {
		t.Fatalf("disconnect code=%d reason=%v", dis.RequestContext.DisconnectStatusCode, dis.RequestContext.DisconnectReason)
	}
}

func TestNestedSelectionExpression(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
route_selection_expression: "$request.body.meta.type"
routes:
  "42": {integration: {type: mock, body: "number route"}, route_response: true}
  chat: {integration: {type: http, url: %q}, route_response: true}
`, b.URLFor("/chat")))
	c := gt.Dial(t, g.URL, nil)
	c.Send(`{"meta":{"type":"chat"}}`)
	if got := c.NextText(); got != `{"meta":{"type":"chat"}}` {
		t.Fatalf("chat route reply %q", got)
	}
	c.Send(`{"meta":{"type":42}}`)
	if got := c.NextText(); got != "number route" {
		t.Fatalf("stringified number route reply %q", got)
	}
}

func TestNoRouteForbiddenFrame(t *testing.T) {
	g := gt.Start(t, `
routes:
  only: {integration: {type: mock, body: "ok"}, route_response: true}
`)
	c := gt.Dial(t, g.URL, nil)
	c.Send(`{"action":"other"}`)
	got := c.NextText()
	re := regexp.MustCompile(`^\{"message": "Forbidden", "connectionId":"[A-Za-z0-9_-]{15}=", "requestId":"[A-Za-z0-9_-]{15}="\}$`)
	if !re.MatchString(got) {
		t.Fatalf("frame %q is not AWS's Forbidden frame", got)
	}
	c.Send("not json either")
	if got := c.NextText(); !re.MatchString(got) {
		t.Fatalf("frame %q is not AWS's Forbidden frame", got)
	}
	// The socket stays open.
	c.Send(`{"action":"only"}`)
	if got := c.NextText(); got != "ok" {
		t.Fatalf("after Forbidden, reply %q", got)
	}
}

func TestIntegrationFailureFrame(t *testing.T) {
	b := gt.NewBackend(t)
	b.On("/default", func(gt.Event) gt.Reply { return gt.Reply{Status: 500, Body: "boom"} })
	b.On("/send", func(gt.Event) gt.Reply { return gt.Reply{Body: `{"statusCode":"x"}`} })
	g := gt.Start(t, backendConfig(b, ""))
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)
	re := regexp.MustCompile(`^\{"message": "Internal server error", "connectionId":"` + regexp.QuoteMeta(id) + `", "requestId":"([A-Za-z0-9_-]{15}=)"\}$`)
	c.Send(`{"action":"x"}`)
	got := c.NextText()
	m := re.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("frame %q is not AWS's Internal server error frame", got)
	}
	if ev := b.Events("/default")[0]; ev.RequestContext.RequestID != m[1] {
		t.Fatalf("error frame requestId %s, event requestId %s", m[1], ev.RequestContext.RequestID)
	}
	// A malformed proxy response is a failure too, even on a one-way route.
	c.Send(`{"action":"sendmessage"}`)
	if got := c.NextText(); !strings.Contains(got, `"Internal server error"`) {
		t.Fatalf("malformed proxy response gave %q", got)
	}
	// An unreachable backend.
	b.Close()
	c.Send(`{"action":"echo"}`)
	if got := c.NextText(); !strings.Contains(got, `"Internal server error"`) {
		t.Fatalf("unreachable backend gave %q", got)
	}
}

func TestConnectStatusPassThrough(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, ""))
	for _, status := range []int{401, 403, 404, 429, 500, 501} {
		b.On("/connect", func(gt.Event) gt.Reply {
			return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: status, Body: "no"}}
		})
		_, resp, err := gt.TryDial(g.URL, nil)
		if err == nil || resp == nil || resp.StatusCode != status {
			t.Fatalf("$connect statusCode %d: handshake err=%v resp=%v", status, err, resp)
		}
	}
	// A backend that fails (HTTP 502 without a proxy response) → 502.
	b.On("/connect", func(gt.Event) gt.Reply { return gt.Reply{Status: 502, Body: "bad gateway"} })
	if _, resp, err := gt.TryDial(g.URL, nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("failing $connect: err=%v resp=%v", err, resp)
	}
	// Rejected connections never produce $disconnect.
	if n := len(b.Events("/disconnect")); n != 0 {
		t.Fatalf("%d $disconnect events for rejected connections", n)
	}
	// Unreachable backend → 502.
	b.Close()
	if _, resp, err := gt.TryDial(g.URL, nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("unreachable $connect: err=%v resp=%v", err, resp)
	}
}

func TestConnectSubprotocolFromIntegration(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, ""))
	// Without the header from $connect, no protocol is selected, even if
	// the client offered some.
	c := gt.Dial(t, g.URL, &websocket.DialOptions{Subprotocols: []string{"chat"}})
	if p := c.Subprotocol(); p != "" {
		t.Fatalf("subprotocol %q auto-selected", p)
	}
	b.On("/connect", func(gt.Event) gt.Reply {
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200,
			Headers: map[string]string{"Sec-WebSocket-Protocol": "chat", "X-Other": "dropped"}}}
	})
	c2 := gt.Dial(t, g.URL, &websocket.DialOptions{Subprotocols: []string{"chat", "other"}})
	if p := c2.Subprotocol(); p != "chat" {
		t.Fatalf("subprotocol %q, want chat", p)
	}
	ev := b.Events("/connect")[1]
	if ev.Headers["Sec-WebSocket-Protocol"] != "chat,other" {
		t.Fatalf("$connect event Sec-WebSocket-Protocol header = %q", ev.Headers["Sec-WebSocket-Protocol"])
	}
}

// TestConnectSubprotocolNotOffered: a Sec-WebSocket-Protocol from the
// $connect integration that the client did not offer is the integration's
// failure: the handshake is refused with 502, nothing of the value reaches
// the response or the log, and the backend, which accepted the $connect,
// gets the connection's $disconnect.
func TestConnectSubprotocolNotOffered(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, ""))
	for i, sub := range []string{
		"chat\r\nSet-Cookie: session=secret-cookie-value",
		"superchat",
		"chat, secret-offered-token",
		"Chat",
	} {
		b.On("/connect", func(gt.Event) gt.Reply {
			return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200,
				Headers: map[string]string{"Sec-WebSocket-Protocol": sub}}}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, resp, err := websocket.Dial(ctx, g.URL, &websocket.DialOptions{Subprotocols: []string{"chat", "secret-offered-token"}})
		cancel()
		if err == nil {
			_ = c.CloseNow()
		}
		if resp == nil {
			t.Fatalf("%q: no handshake response (%v)", sub, err)
		}
		if cookie := resp.Header.Get("Set-Cookie"); cookie != "" {
			t.Fatalf("%q: the response sets a cookie %q", sub, cookie)
		}
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("%q: status %s, want 502", sub, resp.Status)
		}
		id := b.ConnectionID(t, "/connect", i)
		ev := b.WaitEvent(t, "/disconnect", func(e gt.Event) bool { return e.RequestContext.ConnectionID == id })
		if code := ev.RequestContext.DisconnectStatusCode; code != 1011 {
			t.Fatalf("%q: $disconnect with code %d, want 1011", sub, code)
		}
	}
	for _, secret := range []string{"secret-cookie-value", "secret-offered-token"} {
		if strings.Contains(g.Logs.String(), secret) {
			t.Fatalf("the log holds %q", secret)
		}
	}
}

// TestConnectSubprotocolNotOfferedKeepsOthers: a connection refused for
// its subprotocol never counts as open, so with user_limit_policy
// close_oldest it does not close the user's connection in its place.
func TestConnectSubprotocolNotOfferedKeepsOthers(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, pushConfig(b, "limits: {max_connections_per_user: 1, user_limit_policy: close_oldest}"))
	first := gt.Dial(t, userURL(t, g, "alice"), nil)
	b.On("/connect", func(gt.Event) gt.Reply {
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200,
			Headers: map[string]string{"Sec-WebSocket-Protocol": "superchat"}}}
	})
	if got := dialStatus(userURL(t, g, "alice"), &websocket.DialOptions{Subprotocols: []string{"chat"}}); got != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", got)
	}
	first.Send(`{"action":"still here"}`)
	if got := first.NextText(); got != `{"action":"still here"}` {
		t.Fatalf("the user's connection got %q", got)
	}
}

func TestManagementAPI(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, ""))
	c := gt.Dial(t, g.URL, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"e2e-agent/1.0"}}})
	id := b.ConnectionID(t, "/connect", 0)
	escaped := strings.ReplaceAll(id, "=", "%3D")
	for _, prefix := range []string{"", "/prod"} {
		status, hdr, body := g.MgmtDo(t, "POST", prefix+"/@connections/"+escaped, strings.NewReader("pushed "+prefix), nil)
		if status != 200 || hdr.Get("x-amzn-RequestId") == "" {
			t.Fatalf("POST %s: %d %q", prefix, status, body)
		}
		if got := c.NextText(); got != "pushed "+prefix {
			t.Fatalf("pushed message %q", got)
		}
		status, _, body = g.MgmtDo(t, "GET", prefix+"/@connections/"+escaped, nil, nil)
		if status != 200 {
			t.Fatalf("GET: %d %s", status, body)
		}
		var info struct {
			ConnectedAt, LastActiveAt string
			Identity                  struct{ SourceIP, UserAgent string }
		}
		if err := json.Unmarshal([]byte(body), &info); err != nil {
			t.Fatal(err)
		}
		iso := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
		if !iso.MatchString(info.ConnectedAt) || !iso.MatchString(info.LastActiveAt) || info.Identity.SourceIP != "127.0.0.1" || info.Identity.UserAgent != "e2e-agent/1.0" {
			t.Fatalf("GET body %s", body)
		}
	}
	// Payload limits.
	status, hdr, body := g.MgmtDo(t, "POST", "/@connections/"+escaped, strings.NewReader(strings.Repeat("a", 131073)), nil)
	if status != 413 || hdr.Get("X-Amzn-ErrorType") != "PayloadTooLargeException" {
		t.Fatalf("oversized POST: %d %s %q", status, hdr.Get("X-Amzn-ErrorType"), body)
	}
	status, _, _ = g.MgmtDo(t, "POST", "/@connections/"+escaped, strings.NewReader(strings.Repeat("b", 131072)), nil)
	if status != 200 {
		t.Fatalf("POST of exactly 131072 bytes: %d", status)
	}
	if got := c.NextText(); len(got) != 131072 {
		t.Fatalf("received %d bytes", len(got))
	}
	// Unknown connection → 410.
	status, hdr, body = g.MgmtDo(t, "POST", "/@connections/AAAAAAAAAAAAAAA%3D", strings.NewReader("x"), nil)
	if status != 410 || hdr.Get("X-Amzn-ErrorType") != "GoneException" || !strings.Contains(body, `"message"`) {
		t.Fatalf("POST unknown: %d %s %q", status, hdr.Get("X-Amzn-ErrorType"), body)
	}
	// DELETE closes with 1000 and the connection is gone afterwards.
	status, _, _ = g.MgmtDo(t, "DELETE", "/prod/@connections/"+escaped, nil, nil)
	if status != 204 {
		t.Fatalf("DELETE: %d", status)
	}
	c.ExpectClose(1000)
	dis := b.WaitEvent(t, "/disconnect", nil)
	if dis.RequestContext.DisconnectStatusCode != 1000 {
		t.Fatalf("$disconnect after DELETE: code %d", dis.RequestContext.DisconnectStatusCode)
	}
	gt.Eventually(t, func() bool {
		status, _, _ := g.MgmtDo(t, "GET", "/@connections/"+escaped, nil, nil)
		return status == 410
	}, "GET after DELETE to answer 410")
	for _, m := range []string{"POST", "DELETE"} {
		if status, _, _ := g.MgmtDo(t, m, "/@connections/"+escaped, strings.NewReader("x"), nil); status != 410 {
			t.Fatalf("%s after DELETE: %d", m, status)
		}
	}
}

func TestManagementAuth(t *testing.T) {
	g := gt.Start(t, `
management: {auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}}
`)
	c := gt.Dial(t, g.URL, nil)
	_ = c
	for _, h := range []http.Header{nil, {"Authorization": {"Bearer wrong"}}, {"Authorization": {"Basic dGVzdDp0ZXN0"}}, {"Authorization": {"Bearer "}}} {
		status, hdr, _ := g.MgmtDo(t, "GET", "/@connections/AAAAAAAAAAAAAAA%3D", nil, h)
		if status != 403 || hdr.Get("X-Amzn-ErrorType") != "ForbiddenException" {
			t.Fatalf("auth header %v: %d %s", h, status, hdr.Get("X-Amzn-ErrorType"))
		}
	}
	for _, tok := range []string{gt.TestToken, "second-token"} {
		status, _, _ := g.MgmtDo(t, "GET", "/@connections/AAAAAAAAAAAAAAA%3D", nil, http.Header{"Authorization": {"Bearer " + tok}})
		if status != 410 {
			t.Fatalf("valid token: status %d, want 410 for an unknown id", status)
		}
	}
	if strings.Contains(g.Logs.String(), gt.TestToken) {
		t.Fatal("a bearer token reached the log")
	}
}

func TestManagementUnknownPaths(t *testing.T) {
	g := gt.Start(t, "")
	for _, tc := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"POST", "/a/b/@connections/x"},
		{"PUT", "/@connections/x"},
	} {
		status, hdr, body := g.MgmtDo(t, tc.method, tc.path, nil, nil)
		if status != 404 || hdr.Get("X-Amzn-ErrorType") != "NotFoundException" || !strings.Contains(body, `"message"`) {
			t.Errorf("%s %s: %d %s %q", tc.method, tc.path, status, hdr.Get("X-Amzn-ErrorType"), body)
		}
	}
	if status, _, body := g.MgmtDo(t, "GET", "/healthz", nil, nil); status != 200 || body != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %q", status, body)
	}
}

func TestEmptyPostIsRejected(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, ""))
	gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)
	status, hdr, _ := g.MgmtDo(t, "POST", "/@connections/"+strings.ReplaceAll(id, "=", "%3D"), nil, nil)
	if status != 400 || hdr.Get("X-Amzn-ErrorType") != "BadRequestException" {
		t.Fatalf("empty POST: %d %s", status, hdr.Get("X-Amzn-ErrorType"))
	}
}
