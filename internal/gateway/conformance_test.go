package gateway_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// fixtureKeys returns the top-level keys and requestContext keys of an event
// AWS captured, from aws-lambda-go's events/testdata.
func fixtureKeys(t *testing.T, name string) (top, rc []string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/aws/aws-lambda-go").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("locating aws-lambda-go: %v %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(mod.Dir, "events", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return eventKeys(t, data)
}

func eventKeys(t *testing.T, data []byte) (top, rc []string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("event is not a JSON object: %v", err)
	}
	var ctx map[string]json.RawMessage
	if err := json.Unmarshal(m["requestContext"], &ctx); err != nil {
		t.Fatalf("requestContext: %v", err)
	}
	for k := range m {
		top = append(top, k)
	}
	for k := range ctx {
		rc = append(rc, k)
	}
	slices.Sort(top)
	slices.Sort(rc)
	return top, rc
}

// TestEventsOnTheWireMatchAWS checks the events a real backend receives over
// HTTP against the MESSAGE and DISCONNECT events AWS captured.
func TestEventsOnTheWireMatchAWS(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, ""))
	c := gt.Dial(t, g.URL+"?name=me", nil)
	c.Send(`{"action":"sendmessage"}`)
	msg := b.WaitEvent(t, "/send", nil)
	_ = c.Close(websocket.StatusGoingAway, "")
	dis := b.WaitEvent(t, "/disconnect", nil)
	conn := b.Events("/connect")[0]

	wantTop, wantRC := fixtureKeys(t, "apigw-websocket-request-send-message.json")
	gotTop, gotRC := eventKeys(t, msg.Raw)
	if !slices.Equal(gotRC, wantRC) {
		t.Errorf("MESSAGE requestContext keys\n got %v\nwant %v", gotRC, wantRC)
	}
	if !slices.Equal(gotTop, wantTop) {
		t.Errorf("MESSAGE top-level keys\n got %v\nwant %v", gotTop, wantTop)
	}

	wantTop, wantRC = fixtureKeys(t, "apigw-websocket-request-disconnect.json")
	gotTop, gotRC = eventKeys(t, dis.Raw)
	if !slices.Equal(gotRC, wantRC) {
		t.Errorf("DISCONNECT requestContext keys\n got %v\nwant %v", gotRC, wantRC)
	}
	// AWS's fixture has no body key; neither may ours.
	if !slices.Equal(gotTop, wantTop) {
		t.Errorf("DISCONNECT top-level keys\n got %v\nwant %v", gotTop, wantTop)
	}
	if dis.RequestContext.DisconnectStatusCode != 1001 || dis.RequestContext.DisconnectReason == nil || *dis.RequestContext.DisconnectReason != "" {
		t.Errorf("DISCONNECT code %d reason %v, want 1001 \"\"", dis.RequestContext.DisconnectStatusCode, dis.RequestContext.DisconnectReason)
	}

	// CONNECT: the shape of AWS's $connect event (reference §3.3), minus the
	// authorizer-only keys.
	gotTop, gotRC = eventKeys(t, conn.Raw)
	for _, k := range []string{"headers", "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters", "requestContext", "isBase64Encoded"} {
		if !slices.Contains(gotTop, k) {
			t.Errorf("CONNECT lacks %q (has %v)", k, gotTop)
		}
	}
	for _, k := range []string{"routeKey", "eventType", "extendedRequestId", "requestTime", "messageDirection", "stage", "connectedAt", "requestTimeEpoch", "identity", "requestId", "domainName", "connectionId", "apiId"} {
		if !slices.Contains(gotRC, k) {
			t.Errorf("CONNECT requestContext lacks %q (has %v)", k, gotRC)
		}
	}
	if slices.Contains(gotRC, "messageId") || slices.Contains(gotTop, "body") {
		t.Errorf("CONNECT carries a messageId or body: %s", conn.Raw)
	}
	if conn.QueryStringParameters["name"] != "me" || !strings.HasPrefix(conn.Headers["Host"], "127.0.0.1:") {
		t.Errorf("CONNECT query %v Host %q", conn.QueryStringParameters, conn.Headers["Host"])
	}
	// One connection, one identity, in every event.
	for _, ev := range []gt.Event{conn, msg, dis} {
		rc := ev.RequestContext
		if rc.ConnectionID != conn.RequestContext.ConnectionID || rc.ConnectedAt != conn.RequestContext.ConnectedAt ||
			rc.Identity.SourceIP != "127.0.0.1" || rc.Stage != "prod" || rc.RequestID != rc.ExtendedRequestID {
			t.Errorf("%s event context %+v", rc.EventType, rc)
		}
	}
}
