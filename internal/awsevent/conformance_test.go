package awsevent

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// The conformance tests compare emitted events with events AWS produced: the
// captures aws-lambda-go ships as test fixtures, and for $connect the example
// in the API Gateway developer guide (reference §3.3).

// clfPattern is Common Log Format as AWS writes requestTime.
var clfPattern = regexp.MustCompile(`^(0[1-9]|[12][0-9]|3[01])/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/[0-9]{4}:([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9] [+-][0-9]{4}$`)

// lambdaEventsDir returns the events directory of the aws-lambda-go module
// this package builds against.
func lambdaEventsDir(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-json", "github.com/aws/aws-lambda-go")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m github.com/aws/aws-lambda-go: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatalf("decoding go list output: %v", err)
	}
	if mod.Dir == "" {
		t.Fatalf("go list reports no directory for aws-lambda-go:\n%s", out)
	}
	return filepath.Join(mod.Dir, "events")
}

// decoded is one event decoded both ways the conformance checks need.
type decoded struct {
	raw map[string]any
	ev  events.APIGatewayWebsocketProxyRequest
}

func decode(t *testing.T, name string, data []byte) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal(data, &d.raw); err != nil {
		t.Fatalf("%s: decoding into a map: %v", name, err)
	}
	if err := json.Unmarshal(data, &d.ev); err != nil {
		t.Fatalf("%s: decoding into events.APIGatewayWebsocketProxyRequest: %v", name, err)
	}
	return d
}

func loadFixture(t *testing.T, name string) decoded {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lambdaEventsDir(t), "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, name, data)
}

func emit(t *testing.T, ev *events.APIGatewayWebsocketProxyRequest) decoded {
	t.Helper()
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, "emitted", data)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func object(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	v, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%q is %T, want a JSON object", key, m[key])
	}
	return v
}

// sameKeys fails unless got and want have exactly the same keys.
func sameKeys[V, W any](t *testing.T, what string, got map[string]V, want map[string]W) {
	t.Helper()
	if g, w := sortedKeys(got), sortedKeys(want); !slices.Equal(g, w) {
		t.Errorf("%s keys:\n got  %v\n want %v", what, g, w)
	}
}

// sameTypes fails when a key present in both maps holds a different JSON type.
func sameTypes(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if ok && reflect.TypeOf(g) != reflect.TypeOf(w) {
			t.Errorf("%s.%s is %T, AWS has %T", what, k, g, w)
		}
	}
}

// sameFieldsSet fails unless the same fields of the two structs are non-zero,
// which is what a Lambda handler decoding either event would observe.
func sameFieldsSet(t *testing.T, what string, got, want any) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		if g, w := !gv.Field(i).IsZero(), !wv.Field(i).IsZero(); g != w {
			t.Errorf("%s.%s set = %v, AWS set = %v", what, name, g, w)
		}
	}
}

// checkFormats checks the value formats of a requestContext, whoever produced
// it: the ids, Common Log Format time, millisecond epochs and their order.
func checkFormats(t *testing.T, who string, rc map[string]any, idKeys ...string) {
	t.Helper()
	for _, k := range idKeys {
		s, _ := rc[k].(string)
		if !idPattern.MatchString(s) {
			t.Errorf("%s: %s = %q, want %s", who, k, rc[k], idPattern)
		}
	}
	if rc["requestId"] != rc["extendedRequestId"] {
		t.Errorf("%s: requestId %v != extendedRequestId %v", who, rc["requestId"], rc["extendedRequestId"])
	}
	rt, _ := rc["requestTime"].(string)
	if !clfPattern.MatchString(rt) {
		t.Errorf("%s: requestTime = %q, want Common Log Format", who, rt)
	}
	epochs := map[string]int64{}
	for _, k := range []string{"connectedAt", "requestTimeEpoch"} {
		f, ok := rc[k].(float64)
		// Milliseconds since 1970 have 13 digits from 2001 to 2286; seconds
		// or microseconds would not.
		if !ok || f != math.Trunc(f) || f < 1e12 || f >= 1e13 {
			t.Errorf("%s: %s = %v, want epoch milliseconds", who, k, rc[k])
		}
		epochs[k] = int64(f)
	}
	if epochs["connectedAt"] > epochs["requestTimeEpoch"] {
		t.Errorf("%s: connectedAt %d is after requestTimeEpoch %d", who, epochs["connectedAt"], epochs["requestTimeEpoch"])
	}
	if parsed, err := time.Parse(clfLayout, rt); err != nil || parsed.Unix() != epochs["requestTimeEpoch"]/1000 {
		t.Errorf("%s: requestTime %q and requestTimeEpoch %d are different seconds", who, rt, epochs["requestTimeEpoch"])
	}
}

// testConn is a connection like the one in AWS's fixtures.
func testConn(connectedAt time.Time) *Conn {
	return &Conn{
		ID:          NewID(),
		ConnectedAt: connectedAt,
		SourceIP:    "49.105.91.154",
		UserAgent:   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36",
		DomainName:  "dl7ptocha9.execute-api.ap-northeast-1.amazonaws.com",
	}
}

var testAPI = API{APIID: "dl7ptocha9", Stage: "prod"}

func TestConformanceMessage(t *testing.T) {
	aws := loadFixture(t, "apigw-websocket-request-send-message.json")
	connectedAt := time.UnixMilli(1705751697419)
	ours := emit(t, Message(testAPI, testConn(connectedAt), "$default", []byte("{\r\n\t\"a\": 1\r\n}"), false, connectedAt.Add(3034*time.Millisecond)))

	sameKeys(t, "event", ours.raw, aws.raw)
	sameTypes(t, "event", ours.raw, aws.raw)
	rc, awsRC := object(t, ours.raw, "requestContext"), object(t, aws.raw, "requestContext")
	sameKeys(t, "requestContext", rc, awsRC)
	sameTypes(t, "requestContext", rc, awsRC)
	sameKeys(t, "requestContext.identity", object(t, rc, "identity"), object(t, awsRC, "identity"))

	ids := []string{"requestId", "extendedRequestId", "messageId", "connectionId"}
	checkFormats(t, "AWS", awsRC, ids...)
	checkFormats(t, "wsgate", rc, ids...)
	if rc["messageId"] == rc["requestId"] {
		t.Errorf("messageId equals requestId %v; AWS generates them separately", rc["requestId"])
	}

	sameFieldsSet(t, "event", ours.ev, aws.ev)
	sameFieldsSet(t, "requestContext", ours.ev.RequestContext, aws.ev.RequestContext)
	sameFieldsSet(t, "requestContext.identity", ours.ev.RequestContext.Identity, aws.ev.RequestContext.Identity)
	if ours.ev.Body != aws.ev.Body {
		t.Errorf("body = %q, want %q", ours.ev.Body, aws.ev.Body)
	}
	want := aws.ev.RequestContext
	got := ours.ev.RequestContext
	for _, f := range []struct{ name, got, want string }{
		{"routeKey", got.RouteKey, want.RouteKey},
		{"eventType", got.EventType, want.EventType},
		{"messageDirection", got.MessageDirection, want.MessageDirection},
		{"requestTime", got.RequestTime, want.RequestTime},
		{"domainName", got.DomainName, want.DomainName},
	} {
		if f.got != f.want {
			t.Errorf("%s = %q, AWS %q", f.name, f.got, f.want)
		}
	}
	if got.ConnectedAt != want.ConnectedAt || got.RequestTimeEpoch != want.RequestTimeEpoch {
		t.Errorf("connectedAt, requestTimeEpoch = %d, %d; AWS %d, %d", got.ConnectedAt, got.RequestTimeEpoch, want.ConnectedAt, want.RequestTimeEpoch)
	}
}

func TestConformanceDisconnect(t *testing.T) {
	aws := loadFixture(t, "apigw-websocket-request-disconnect.json")
	connectedAt := time.UnixMilli(1705751697419)
	ours := emit(t, Disconnect(testAPI, testConn(connectedAt), 1001, "", connectedAt.Add(10907*time.Millisecond)))

	sameKeys(t, "event", ours.raw, aws.raw)
	sameTypes(t, "event", ours.raw, aws.raw)
	rc, awsRC := object(t, ours.raw, "requestContext"), object(t, aws.raw, "requestContext")
	sameKeys(t, "requestContext", rc, awsRC)
	sameTypes(t, "requestContext", rc, awsRC)
	sameKeys(t, "requestContext.identity", object(t, rc, "identity"), object(t, awsRC, "identity"))

	ids := []string{"requestId", "extendedRequestId", "connectionId"}
	checkFormats(t, "AWS", awsRC, ids...)
	checkFormats(t, "wsgate", rc, ids...)

	sameFieldsSet(t, "event", ours.ev, aws.ev)
	sameFieldsSet(t, "requestContext", ours.ev.RequestContext, aws.ev.RequestContext)

	// The synthetic headers: same keys, Host is the domain name, the rest
	// carry exactly AWS's values.
	sameKeys(t, "headers", ours.ev.Headers, aws.ev.Headers)
	sameKeys(t, "multiValueHeaders", ours.ev.MultiValueHeaders, aws.ev.MultiValueHeaders)
	if !reflect.DeepEqual(ours.ev.Headers, aws.ev.Headers) {
		t.Errorf("headers = %v, AWS %v", ours.ev.Headers, aws.ev.Headers)
	}
	if !reflect.DeepEqual(ours.ev.MultiValueHeaders, aws.ev.MultiValueHeaders) {
		t.Errorf("multiValueHeaders = %v, AWS %v", ours.ev.MultiValueHeaders, aws.ev.MultiValueHeaders)
	}
	if h := ours.ev.Headers["Host"]; h != ours.ev.RequestContext.DomainName {
		t.Errorf("Host header %q != domainName %q", h, ours.ev.RequestContext.DomainName)
	}

	if got, want := ours.ev.RequestContext.DisconnectStatusCode, aws.ev.RequestContext.DisconnectStatusCode; got != want {
		t.Errorf("disconnectStatusCode = %d, AWS %d", got, want)
	}
	if r := ours.ev.RequestContext.DisconnectReason; r == nil || *r != "" {
		t.Errorf("disconnectReason = %v, want a present empty string", r)
	}
	if rc["routeKey"] != awsRC["routeKey"] || rc["eventType"] != awsRC["eventType"] || rc["requestTime"] != awsRC["requestTime"] {
		t.Errorf("routeKey, eventType, requestTime = %v, %v, %v; AWS %v, %v, %v",
			rc["routeKey"], rc["eventType"], rc["requestTime"], awsRC["routeKey"], awsRC["eventType"], awsRC["requestTime"])
	}
}

// The $connect shape of the developer guide's authorizer input example
// (reference §3.3), the only complete AWS-published $connect event; its
// values are elided there, so the comparison is by keys.
var (
	guideConnectHeaders = []string{
		"Connection", "content-length", "HeaderAuth1", "Host",
		"Sec-WebSocket-Extensions", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
		"Upgrade", "X-Amzn-Trace-Id", "X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto",
	}
	guideConnectContext = []string{
		"routeKey", "eventType", "extendedRequestId", "requestTime", "messageDirection", "stage",
		"connectedAt", "requestTimeEpoch", "identity", "requestId", "domainName", "connectionId", "apiId",
	}
	// guideAuthorizerOnlyHeaders appear in the authorizer input but in none
	// of the captured $connect proxy events, though every client sends
	// Connection and Upgrade; the proxy event leaves them out.
	guideAuthorizerOnlyHeaders = []string{"Connection", "Upgrade", "content-length"}
)

func TestConformanceConnect(t *testing.T) {
	connectedAt := time.UnixMilli(1674162806344)
	now := connectedAt.Add(time.Millisecond)
	c := testConn(connectedAt)
	c.DomainName = ""
	h := http.Header{}
	// As net/http presents the upgrade request: canonical keys, Host moved
	// to Request.Host. HeaderAuth1 is stored as an edge that keeps the
	// client's spelling would store it.
	h.Set("Connection", "upgrade")
	h.Set("Upgrade", "websocket")
	h.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
	h.Set("Sec-WebSocket-Key", "ElxPGSkjS67JEzN6/32V1A==")
	h.Set("Sec-WebSocket-Version", "13")
	h["HeaderAuth1"] = []string{"headerValue1"}
	r := &ConnectRequest{
		Header: h,
		Query:  url.Values{"QueryString1": {"queryValue1"}},
		Host:   "abcdef123.execute-api.us-east-1.amazonaws.com",
		Proto:  "https",
		Port:   "443",
	}
	ours := emit(t, Connect(API{APIID: "abcdef123", Stage: "default"}, c, r, now))

	wantTop := []string{"headers", "isBase64Encoded", "multiValueHeaders", "multiValueQueryStringParameters", "queryStringParameters", "requestContext"}
	if got := sortedKeys(ours.raw); !slices.Equal(got, wantTop) {
		t.Errorf("event keys:\n got  %v\n want %v", got, wantTop)
	}
	var wantHeaders []string
	for _, k := range guideConnectHeaders {
		if !slices.Contains(guideAuthorizerOnlyHeaders, k) {
			wantHeaders = append(wantHeaders, k)
		}
	}
	slices.Sort(wantHeaders)
	if got := sortedKeys(ours.ev.Headers); !slices.Equal(got, wantHeaders) {
		t.Errorf("headers keys:\n got  %v\n want %v", got, wantHeaders)
	}
	if got := sortedKeys(ours.ev.MultiValueHeaders); !slices.Equal(got, wantHeaders) {
		t.Errorf("multiValueHeaders keys:\n got  %v\n want %v", got, wantHeaders)
	}
	for k, vs := range ours.ev.MultiValueHeaders {
		if len(vs) != 1 || vs[0] != ours.ev.Headers[k] {
			t.Errorf("multiValueHeaders[%q] = %q, headers[%q] = %q", k, vs, k, ours.ev.Headers[k])
		}
	}
	for k, want := range map[string]string{
		"Host":                     r.Host,
		"HeaderAuth1":              "headerValue1",
		"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
		"Sec-WebSocket-Key":        "ElxPGSkjS67JEzN6/32V1A==",
		"Sec-WebSocket-Version":    "13",
		"X-Forwarded-For":          c.SourceIP,
		"X-Forwarded-Port":         "443",
		"X-Forwarded-Proto":        "https",
	} {
		if got := ours.ev.Headers[k]; got != want {
			t.Errorf("headers[%q] = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(ours.ev.Headers["X-Amzn-Trace-Id"], "Root=1-") {
		t.Errorf("X-Amzn-Trace-Id = %q", ours.ev.Headers["X-Amzn-Trace-Id"])
	}
	if !reflect.DeepEqual(ours.ev.QueryStringParameters, map[string]string{"QueryString1": "queryValue1"}) ||
		!reflect.DeepEqual(ours.ev.MultiValueQueryStringParameters, map[string][]string{"QueryString1": {"queryValue1"}}) {
		t.Errorf("query = %v / %v", ours.ev.QueryStringParameters, ours.ev.MultiValueQueryStringParameters)
	}

	rc := object(t, ours.raw, "requestContext")
	want := slices.Clone(guideConnectContext)
	slices.Sort(want)
	if got := sortedKeys(rc); !slices.Equal(got, want) {
		t.Errorf("requestContext keys:\n got  %v\n want %v", got, want)
	}
	// The guide's authorizer input shows identity {sourceIp}; proxy events
	// also carry userAgent, as the MESSAGE and DISCONNECT captures do.
	if got := sortedKeys(object(t, rc, "identity")); !slices.Equal(got, []string{"sourceIp", "userAgent"}) {
		t.Errorf("identity keys = %v", got)
	}
	checkFormats(t, "wsgate", rc, "requestId", "extendedRequestId", "connectionId")
	for k, want := range map[string]any{
		"routeKey": "$connect", "eventType": "CONNECT", "messageDirection": "IN", "stage": "default",
		"apiId": "abcdef123", "domainName": r.Host, "requestTime": "19/Jan/2023:21:13:26 +0000",
		"connectedAt": float64(1674162806344), "requestTimeEpoch": float64(1674162806345),
	} {
		if rc[k] != want {
			t.Errorf("requestContext.%s = %v, want %v", k, rc[k], want)
		}
	}
	if ours.ev.IsBase64Encoded || ours.ev.Body != "" {
		t.Errorf("isBase64Encoded, body = %v, %q; want false and none", ours.ev.IsBase64Encoded, ours.ev.Body)
	}
}

// TestConformanceAuthorizer checks that what the authorizer returned at
// $connect is repeated, as the same JSON object, on every later event.
func TestConformanceAuthorizer(t *testing.T) {
	connectedAt := time.UnixMilli(1705751697419)
	c := testConn(connectedAt)
	c.Authorizer = map[string]any{"principalId": "user", "integrationLatency": 12, "numberKey": "1", "booleanKey": "true"}
	want := map[string]any{"principalId": "user", "integrationLatency": float64(12), "numberKey": "1", "booleanKey": "true"}
	now := connectedAt.Add(time.Second)
	for name, ev := range map[string]*events.APIGatewayWebsocketProxyRequest{
		"connect":    Connect(testAPI, c, &ConnectRequest{Host: c.DomainName}, connectedAt),
		"message":    Message(testAPI, c, "sendmessage", []byte("{}"), false, now),
		"disconnect": Disconnect(testAPI, c, 1000, "Connection Closed Normally", now),
	} {
		d := emit(t, ev)
		rc := object(t, d.raw, "requestContext")
		if got := object(t, rc, "authorizer"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: authorizer = %v, want %v", name, got, want)
		}
		if got, ok := d.ev.RequestContext.Authorizer.(map[string]any); !ok || got["principalId"] != "user" {
			t.Errorf("%s: decoded Authorizer = %#v", name, d.ev.RequestContext.Authorizer)
		}
	}

	c.Authorizer = nil
	for name, ev := range map[string]*events.APIGatewayWebsocketProxyRequest{
		"connect":    Connect(testAPI, c, nil, connectedAt),
		"message":    Message(testAPI, c, "$default", []byte("x"), false, now),
		"disconnect": Disconnect(testAPI, c, 1001, "", now),
	} {
		if _, ok := object(t, emit(t, ev).raw, "requestContext")["authorizer"]; ok {
			t.Errorf("%s: authorizer present without an authorizer", name)
		}
	}
}
