package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/tlsconfig/tlstest"
)

// accessFormat logs, as JSON, every variable the tests check.
const accessFormat = `{"requestId":"$context.requestId","extendedRequestId":"$context.extendedRequestId",` +
	`"eventType":"$context.eventType","routeKey":"$context.routeKey","connectionId":"$context.connectionId",` +
	`"messageId":"$context.messageId","status":"$context.status","integrationStatus":"$context.integrationStatus",` +
	`"integrationLatency":"$context.integrationLatency","error":"$context.error.message",` +
	`"errorString":"$context.error.messageString","responseType":"$context.error.responseType",` +
	`"integrationError":"$context.integration.error","ip":"$context.identity.sourceIp",` +
	`"ua":"$context.identity.userAgent","caller":"$context.identity.caller","principal":"$context.authorizer.principalId",` +
	`"role":"$context.authorizer.role","authStatus":"$context.authorizer.status","authError":"$context.authorizer.error",` +
	`"method":"$context.httpMethod","path":"$context.path","stage":"$context.stage","apiId":"$context.apiId",` +
	`"domain":"$context.domainName","code":"$context.disconnectStatusCode","reason":"$context.disconnectReason",` +
	`"time":"$context.requestTimeEpoch","requestTime":"$context.requestTime","connectedAt":"$context.connectedAt",` +
	`"direction":"$context.messageDirection","latency":"$context.responseLatency"}`

// accessLines reads the complete lines of the access log at path: one
// JSON object per line. A line the gateway is still writing is left for
// the next read: a read of a regular file can end inside a write(2) (the
// kernel copies a write page by page), so the text after the last newline
// may be part of a line.
func accessLines(t *testing.T, path string) []map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	text := string(data)
	text = text[:strings.LastIndexByte(text, '\n')+1]
	var lines []map[string]string
	for _, ln := range strings.Split(text, "\n") {
		if ln == "" {
			continue
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("access log line %q: %v", ln, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// waitLine waits for the line of the access log at path that match
// accepts, and returns it.
func waitLine(t *testing.T, path string, what string, match func(map[string]string) bool) map[string]string {
	t.Helper()
	var found map[string]string
	gt.Eventually(t, func() bool {
		for _, l := range accessLines(t, path) {
			if match(l) {
				found = l
				return true
			}
		}
		return false
	}, "the access log line of %s", what)
	return found
}

// checkFields compares the fields of line named in want.
func checkFields(t *testing.T, what string, line map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s: %s = %q, want %q (line %v)", what, k, line[k], v, line)
		}
	}
}

func isMillis(s string) bool {
	var n int64
	_, err := fmt.Sscanf(s, "%d", &n)
	return err == nil && n >= 0 && fmt.Sprint(n) == s
}

func TestAccessLogLines(t *testing.T) {
	b := gt.NewBackend(t)
	b.On("/fail", func(gt.Event) gt.Reply { return gt.Reply{Status: 500, Body: "boom"} })
	path := filepath.Join(t.TempDir(), "access.log")
	// The broken route's integration URL carries a key in its query
	// string, which no line may show.
	g := gt.Start(t, fmt.Sprintf(`
stage: prod
api_id: chatapi
authorizer:
  type: jwt
  identity_sources: [route.request.querystring.access_token]
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256], context_claims: [role]}
routes:
  $connect: {integration: {type: http, url: %q}}
  $disconnect: {integration: {type: http, url: %q}}
  echo: {integration: {type: http, url: %q}, route_response: true}
  fail: {integration: {type: http, url: %q}}
  broken: {integration: {type: http, url: "http://127.0.0.1:1/x?apikey=integration-secret-77"}}
management:
  auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}
access_log:
  format: '%s'
  output: %s
`, b.URLFor("/connect"), b.URLFor("/disconnect"), b.URLFor("/echo"), b.URLFor("/fail"), accessFormat, path))

	tok := mint(t, jwt.MapClaims{"sub": "user-7", "role": "admin", "exp": time.Now().Add(time.Hour).Unix()})
	ua := `tester/1.0 "quoted"`
	hdr := http.Header{"User-Agent": {ua}, "Cookie": {"session=cookie-secret-55"}}
	c := gt.Dial(t, g.URL+"?access_token="+url.QueryEscape(tok), &websocket.DialOptions{HTTPHeader: hdr})
	connectEv := b.WaitEvent(t, "/connect", func(gt.Event) bool { return true })
	id := connectEv.RequestContext.ConnectionID

	// Connect: the line carries the $connect event's request id, the
	// authorizer's outcome, and the path without its query string.
	conn := waitLine(t, path, "the connect", func(l map[string]string) bool { return l["eventType"] == "CONNECT" && l["connectionId"] == id })
	checkFields(t, "connect", conn, map[string]string{
		"requestId": connectEv.RequestContext.RequestID, "extendedRequestId": connectEv.RequestContext.RequestID,
		"routeKey": "$connect", "status": "200", "integrationStatus": "200", "error": "-", "errorString": "-",
		"responseType": "-", "ip": "127.0.0.1", "ua": ua, "caller": "-", "principal": "user-7", "role": "admin",
		"authStatus": "200", "authError": "-", "method": "GET", "path": "/prod", "stage": "prod", "apiId": "chatapi",
		"domain": g.Addr(), "messageId": "-", "code": "-", "direction": "IN",
	})
	// The request arrived (requestTimeEpoch) before the connection was made
	// (connectedAt), as in AWS's events.
	if !isMillis(conn["integrationLatency"]) || !isMillis(conn["latency"]) || !isMillis(conn["time"]) ||
		!isMillis(conn["connectedAt"]) || len(conn["time"]) != len(conn["connectedAt"]) || conn["time"] > conn["connectedAt"] {
		t.Errorf("connect: latencies and times %v", conn)
	}
	if _, err := time.Parse("02/Jan/2006:15:04:05 -0700", conn["requestTime"]); err != nil {
		t.Errorf("connect: requestTime %q: %v", conn["requestTime"], err)
	}

	// Messages: delivered, answered 500 by the integration, failed
	// without an answer, and with no route.
	c.Send(`{"action":"echo","n":1}`)
	c.NextText()
	echoEv := b.WaitEvent(t, "/echo", func(gt.Event) bool { return true })
	echo := waitLine(t, path, "the echo", func(l map[string]string) bool { return l["routeKey"] == "echo" })
	checkFields(t, "echo", echo, map[string]string{
		"eventType": "MESSAGE", "requestId": echoEv.RequestContext.RequestID, "messageId": echoEv.RequestContext.MessageID.(string),
		"connectionId": id, "status": "200", "integrationStatus": "200", "error": "-", "principal": "user-7",
		"role": "admin", "ua": ua, "ip": "127.0.0.1", "method": "-", "path": "-", "connectedAt": conn["connectedAt"],
	})
	if !isMillis(echo["integrationLatency"]) {
		t.Errorf("echo: integrationLatency %q", echo["integrationLatency"])
	}

	c.Send(`{"action":"fail"}`)
	frame := c.NextText()
	fail := waitLine(t, path, "the failing route", func(l map[string]string) bool { return l["routeKey"] == "fail" })
	checkFields(t, "fail", fail, map[string]string{
		"eventType": "MESSAGE", "status": "500", "integrationStatus": "500", "error": "Internal server error",
		"responseType": "DEFAULT_5XX", "integrationError": "-",
	})
	if !strings.Contains(frame, `"requestId":"`+fail["requestId"]+`"`) {
		t.Errorf("the error frame %s does not carry the line's request id %s", frame, fail["requestId"])
	}

	c.Send(`{"action":"broken"}`)
	frame = c.NextText()
	broken := waitLine(t, path, "the broken route", func(l map[string]string) bool { return l["routeKey"] == "broken" })
	checkFields(t, "broken", broken, map[string]string{
		"eventType": "MESSAGE", "status": "500", "integrationStatus": "-", "error": "Internal server error",
		"errorString": `"Internal server error"`, "responseType": "INTEGRATION_FAILURE",
	})
	if !strings.Contains(frame, `"requestId":"`+broken["requestId"]+`"`) {
		t.Errorf("the error frame %s does not carry the line's request id %s", frame, broken["requestId"])
	}
	if e := broken["integrationError"]; !strings.Contains(e, "127.0.0.1:1") || strings.Contains(e, "apikey") {
		t.Errorf("broken: integration error %q; want the URL without its query string", e)
	}

	c.Send(`{"action":"nope"}`)
	frame = c.NextText()
	nope := waitLine(t, path, "the message without a route", func(l map[string]string) bool {
		return l["eventType"] == "MESSAGE" && l["status"] == "403"
	})
	checkFields(t, "no route", nope, map[string]string{
		"routeKey": "-", "error": "Forbidden", "responseType": "DEFAULT_4XX", "integrationStatus": "-", "integrationLatency": "-",
	})
	if !strings.Contains(frame, `"requestId":"`+nope["requestId"]+`"`) {
		t.Errorf("the Forbidden frame %s does not carry the line's request id %s", frame, nope["requestId"])
	}

	// Refused handshakes: no token, a bad token, a wrong path.
	if st := dialStatus(g.URL, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"no-token"}}}); st != 401 {
		t.Fatalf("no token: %d", st)
	}
	if st := dialStatus(g.URL+"?access_token=not.a.jwt-secret-88", &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"bad-token"}}}); st != 401 {
		t.Fatalf("bad token: %d", st)
	}
	if st := dialStatus("ws://"+g.Addr()+"/elsewhere?access_token=x", &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"wrong-path"}}}); st != 404 {
		t.Fatalf("wrong path: %d", st)
	}
	for _, tc := range []struct {
		ua   string
		want map[string]string
	}{
		{"no-token", map[string]string{"status": "401", "error": "Unauthorized", "responseType": "UNAUTHORIZED", "authStatus": "401", "path": "/prod", "integrationStatus": "-", "principal": "-"}},
		{"bad-token", map[string]string{"status": "401", "error": "Unauthorized", "responseType": "UNAUTHORIZED", "authStatus": "401", "path": "/prod"}},
		{"wrong-path", map[string]string{"status": "404", "error": "Not Found", "responseType": "RESOURCE_NOT_FOUND", "connectionId": "-", "authStatus": "-", "path": "/elsewhere"}},
	} {
		l := waitLine(t, path, tc.ua, func(l map[string]string) bool { return l["ua"] == tc.ua })
		checkFields(t, tc.ua, l, tc.want)
		checkFields(t, tc.ua, l, map[string]string{"eventType": "CONNECT", "routeKey": "$connect", "method": "GET"})
		if tc.ua != "wrong-path" && (l["connectionId"] == "-" || l["authError"] == "-") {
			t.Errorf("%s: no connection id or authorizer error: %v", tc.ua, l)
		}
	}

	// Management calls: one with a token, one with a wrong one.
	auth := http.Header{"Authorization": {"Bearer " + gt.TestToken}, "User-Agent": {"mgmt-ok"}}
	if st, _, body := g.MgmtDo(t, "POST", "/prod/@connections/"+url.PathEscape(id)+"?x=query-secret-99", strings.NewReader("hi"), auth); st != 200 {
		t.Fatalf("push: %d %s", st, body)
	}
	c.NextText()
	bad := http.Header{"Authorization": {"Bearer wrong-token-66"}, "User-Agent": {"mgmt-bad"}}
	if st, _, _ := g.MgmtDo(t, "GET", "/@connections/"+url.PathEscape(id), nil, bad); st != 403 {
		t.Fatalf("wrong token: %d", st)
	}
	push := waitLine(t, path, "the push", func(l map[string]string) bool { return l["ua"] == "mgmt-ok" })
	checkFields(t, "push", push, map[string]string{
		"eventType": "MANAGEMENT", "routeKey": "PostToConnection", "status": "200", "caller": "bearer:0",
		"method": "POST", "ip": "127.0.0.1",
		"error": "-", "connectionId": "-", "direction": "-",
	})
	denied := waitLine(t, path, "the refused call", func(l map[string]string) bool { return l["ua"] == "mgmt-bad" })
	checkFields(t, "refused call", denied, map[string]string{
		"eventType": "MANAGEMENT", "routeKey": "GetConnection", "status": "403", "caller": "-", "method": "GET", "error": "Forbidden",
	})
	if p, err := url.PathUnescape(push["path"]); err != nil || p != "/prod/@connections/"+id {
		t.Errorf("push: path %q, want /prod/@connections/%s without the query string", push["path"], id)
	}
	if push["requestId"] == "-" || !isMillis(push["latency"]) {
		t.Errorf("push: request id or latency missing: %v", push)
	}

	// Disconnect: the line carries the $disconnect event's request id and
	// the close code and reason.
	_ = c.Close(4000, "bye")
	discEv := b.WaitEvent(t, "/disconnect", func(gt.Event) bool { return true })
	disc := waitLine(t, path, "the disconnect", func(l map[string]string) bool { return l["eventType"] == "DISCONNECT" })
	checkFields(t, "disconnect", disc, map[string]string{
		"requestId": discEv.RequestContext.RequestID, "routeKey": "$disconnect", "connectionId": id, "status": "200",
		"integrationStatus": "200", "code": "4000", "reason": "bye", "principal": "user-7", "ua": ua, "messageId": "-",
	})

	// No line holds a credential or a query string.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{tok, "cookie-secret-55", "jwt-secret-88", "integration-secret-77", "query-secret-99",
		gt.TestToken, "wrong-token-66", "Bearer"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("the access log holds %q", secret)
		}
	}
}

func TestAccessLogReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	g := gt.Start(t, fmt.Sprintf("access_log: {format: clf, output: %s}\n", path))
	c := gt.Dial(t, g.URL, nil)
	c.Send("one")
	c.NextText()
	waitFile := func(p, want string) {
		t.Helper()
		gt.Eventually(t, func() bool {
			data, _ := os.ReadFile(p)
			return strings.Count(string(data), want) == 1
		}, "%s in %s", want, p)
	}
	waitFile(path, `"MESSAGE $default`)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := g.ReopenAccessLog(); err != nil {
		t.Fatal(err)
	}
	c.Send("two")
	c.NextText()
	waitFile(path, `"MESSAGE $default`)
	data, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	// The CONNECT line is written before the client sees the 101, so before
	// the line of the message it sent at once.
	if n := strings.Count(string(data), "MESSAGE"); n != 1 || !strings.Contains(strings.SplitN(string(data), "\n", 2)[0], `"CONNECT $connect `) {
		t.Errorf("the rotated file holds:\n%s", data)
	}
}

func TestAccessLogFormatErrorAtItsLine(t *testing.T) {
	_, err := config.Parse("test.yaml", []byte("stage: prod\naccess_log:\n  output: stdout\n  format: \"$context.requestId $context.route\"\n"))
	if err == nil || !strings.Contains(err.Error(), "test.yaml:4: access_log.format: unknown variable $context.route (did you mean $context.routeKey?)") {
		t.Fatalf("config.Parse = %v", err)
	}
	path := filepath.Join(t.TempDir(), "missing", "access.log")
	cfg, err := config.Parse("test.yaml", []byte("access_log:\n  format: clf\n  output: "+path+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	// `wsgate validate` builds the gateway without opening the file; serve
	// fails to start, at the line of the output.
	g, err := gateway.New(cfg, gateway.Options{})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	defer g.Close()
	err = g.Start()
	if err == nil {
		t.Fatal("Start accepted an access log in a missing directory")
	}
	if !strings.Contains(err.Error(), "test.yaml:3: access_log.output: opening the access log: open "+path) || !config.IsMissing(err) {
		t.Fatalf("Start = %v", err)
	}

	// New alone opens nothing.
	here := filepath.Join(t.TempDir(), "access.log")
	cfg, err = config.Parse("test.yaml", []byte("access_log: {format: clf, output: "+here+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	g2, err := gateway.New(cfg, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g2.Close()
	if _, err := os.Stat(here); !os.IsNotExist(err) {
		t.Errorf("gateway.New created the access log: %v", err)
	}
}

// TestAccessLogSigV4Caller: a call signed by the AWS SDK is logged with the
// access key id as its caller, and the second bearer token as bearer:1;
// neither the secret key nor the signature is in the log.
func TestAccessLogSigV4Caller(t *testing.T) {
	b := gt.NewBackend(t)
	path := filepath.Join(t.TempDir(), "access.log")
	g := gt.Start(t, backendConfig(b, sigv4AndBearerConfig+fmt.Sprintf(`
access_log:
  format: '%s'
  output: %s
`, accessFormat, path)))
	gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)
	client := sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "")
	if _, err := client.GetConnection(sdkCtx(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := g.MgmtDo(t, "GET", "/healthz", nil, http.Header{"Authorization": {"Bearer second-token"}, "User-Agent": {"second"}}); st != 200 {
		t.Fatalf("healthz: %d", st)
	}
	if st, _, _ := g.MgmtDo(t, "GET", "/@topics/a", nil, http.Header{"Authorization": {"Bearer second-token"}, "User-Agent": {"second"}}); st != 200 {
		t.Fatalf("GET /@topics/a: %d", st)
	}
	if st, _, _ := g.MgmtDo(t, "GET", "/@connections?maxResults=5", nil, http.Header{"Authorization": {"Bearer second-token"}}); st != 200 {
		t.Fatalf("GET /@connections: %d", st)
	}
	get := waitLine(t, path, "GetConnection", func(l map[string]string) bool { return l["routeKey"] == "GetConnection" })
	checkFields(t, "GetConnection", get, map[string]string{
		"eventType": "MANAGEMENT", "status": "200", "caller": "sigv4:" + gt.TestSigV4KeyID, "method": "GET",
	})
	topic := waitLine(t, path, "GetTopic", func(l map[string]string) bool { return l["routeKey"] == "GetTopic" })
	checkFields(t, "GetTopic", topic, map[string]string{"caller": "bearer:1", "status": "200", "path": "/@topics/a"})
	list := waitLine(t, path, "ListConnections", func(l map[string]string) bool { return l["routeKey"] == "ListConnections" })
	checkFields(t, "ListConnections", list, map[string]string{"caller": "bearer:1", "status": "200", "path": "/@connections"})
	health := waitLine(t, path, "Health", func(l map[string]string) bool { return l["routeKey"] == "Health" })
	checkFields(t, "Health", health, map[string]string{"caller": "-", "status": "200"})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{gt.TestSigV4Secret, "Signature", "second-token", "AWS4-HMAC", "maxResults"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("the access log holds %q", secret)
		}
	}
}

// TestAccessLogBuiltinRoutes: a built-in route's line has its outcome, and
// the request id of the frame the client got when it was refused.
func TestAccessLogBuiltinRoutes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	g := gt.Start(t, fmt.Sprintf(`
topics: {allow: ["news"]}
routes:
  subscribe: {builtin: subscribe}
access_log:
  format: '%s'
  output: %s
`, accessFormat, path))
	c := gt.Dial(t, g.URL, nil)
	c.Send(`{"action":"subscribe","topic":"news"}`)
	c.NextText()
	c.Send(`{"action":"subscribe","topic":"sports"}`)
	frame := c.NextText()
	var lines []map[string]string
	gt.Eventually(t, func() bool {
		lines = nil
		for _, l := range accessLines(t, path) {
			if l["routeKey"] == "subscribe" {
				lines = append(lines, l)
			}
		}
		return len(lines) == 2
	}, "two subscribe lines")
	checkFields(t, "allowed", lines[0], map[string]string{"eventType": "MESSAGE", "status": "200", "error": "-", "integrationStatus": "-"})
	checkFields(t, "refused", lines[1], map[string]string{"eventType": "MESSAGE", "status": "403", "error": "Forbidden"})
	if !strings.Contains(frame, `"requestId":"`+lines[1]["requestId"]+`"`) {
		t.Errorf("the Forbidden frame %s does not carry the line's request id %s", frame, lines[1]["requestId"])
	}
}

// TestAccessLogThrottledMessage: a message over limits.messages_per_second
// is logged 429 with the request id of its Limit Exceeded frame.
func TestAccessLogThrottledMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	g := gt.Start(t, fmt.Sprintf(`
limits: {messages_per_second: {rate: 0.001, burst: 1}}
access_log:
  format: '%s'
  output: %s
`, accessFormat, path))
	c := gt.Dial(t, g.URL, nil)
	c.Send("one")
	c.NextText()
	c.Send("two")
	frame := c.NextText()
	l := waitLine(t, path, "the throttled message", func(l map[string]string) bool { return l["status"] == "429" })
	checkFields(t, "throttled", l, map[string]string{
		"eventType": "MESSAGE", "routeKey": "-", "error": "Limit Exceeded", "responseType": "THROTTLED",
	})
	if !strings.Contains(frame, "Limit Exceeded") || !strings.Contains(frame, `"requestId":"`+l["requestId"]+`"`) {
		t.Errorf("the frame %s does not carry the line's request id %s", frame, l["requestId"])
	}
}

// TestAccessLogRouteThrottling: a handshake and a message over their
// routes' buckets are logged 429 THROTTLED, the message with its route and
// the request id of its frame; behind a trusted proxy, a handshake refused
// before a connection was made shows the client the proxy forwarded for.
func TestAccessLogRouteThrottling(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	g := gt.Start(t, fmt.Sprintf(`
trusted_proxies: ["127.0.0.1"]
routes:
  $connect: {integration: {type: mock}, throttling: {rate: 0.001, burst: 1}}
  $default: {integration: {type: mock}, route_response: true, throttling: {rate: 0.001, burst: 1}}
access_log:
  format: '%s'
  output: %s
`, accessFormat, path))
	c := gt.Dial(t, g.URL, &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {"198.51.100.7"}}})
	c.Send("one")
	c.NextText()
	c.Send("two")
	frame := c.NextText()
	msg := waitLine(t, path, "the throttled message", func(l map[string]string) bool {
		return l["eventType"] == "MESSAGE" && l["status"] == "429"
	})
	checkFields(t, "throttled message", msg, map[string]string{
		"routeKey": "$default", "error": "Too Many Requests", "responseType": "THROTTLED", "ip": "198.51.100.7",
		"integrationStatus": "-",
	})
	if !strings.Contains(frame, `"requestId":"`+msg["requestId"]+`"`) {
		t.Errorf("the frame %s does not carry the line's request id %s", frame, msg["requestId"])
	}
	if st := dialStatus(g.URL, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"second"}}}); st != 429 {
		t.Fatalf("second handshake: %d, want 429", st)
	}
	hs := waitLine(t, path, "the throttled handshake", func(l map[string]string) bool { return l["ua"] == "second" })
	checkFields(t, "throttled handshake", hs, map[string]string{
		"eventType": "CONNECT", "status": "429", "error": "Too Many Requests", "responseType": "THROTTLED",
	})
	hdr := http.Header{"User-Agent": {"lost"}, "X-Forwarded-For": {"203.0.113.9"}}
	if st := dialStatus("ws://"+g.Addr()+"/nowhere", &websocket.DialOptions{HTTPHeader: hdr}); st != 404 {
		t.Fatalf("wrong path: %d", st)
	}
	lost := waitLine(t, path, "the wrong path", func(l map[string]string) bool { return l["ua"] == "lost" })
	checkFields(t, "wrong path", lost, map[string]string{"status": "404", "connectionId": "-", "ip": "203.0.113.9"})
}

// TestAccessLogClientCert: with mutual TLS, the client certificate's
// subject and issuer are in the connection's lines, the PEM kept on one
// line.
func TestAccessLogClientCert(t *testing.T) {
	s := newTLSSetup(t)
	clientCA := tlstest.NewCA(t, "client CA")
	caFile := clientCA.WriteFile(t, s.dir, "client-ca.pem")
	alice := clientCA.Client(t, "alice")
	path := filepath.Join(t.TempDir(), "access.log")
	g := gt.Start(t, fmt.Sprintf(`
tls: {cert_file: %q, key_file: %q, client_ca_file: %q, client_auth: require}
access_log:
  format: '{"eventType":"$context.eventType","subject":"$context.identity.clientCert.subjectDN","issuer":"$context.identity.clientCert.issuerDN","serial":"$context.identity.clientCert.serialNumber","pem":"$context.identity.clientCert.clientCertPem"}'
  output: %s
`, s.certFile, s.keyFile, caFile, path))
	c := gt.Dial(t, g.URL, s.dialOptions(0, alice.TLSCertificate(t)))
	c.Send("hi")
	c.NextText()
	want := clientCertOf(alice.Cert)
	for _, ev := range []string{"CONNECT", "MESSAGE"} {
		l := waitLine(t, path, ev, func(l map[string]string) bool { return l["eventType"] == ev })
		checkFields(t, ev, l, map[string]string{
			"subject": want["subjectDN"].(string), "issuer": want["issuerDN"].(string), "serial": want["serialNumber"].(string),
			"pem": want["clientCertPem"].(string),
		})
	}
}
