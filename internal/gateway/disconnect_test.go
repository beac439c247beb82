package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// disconnectConfig sends $connect, $disconnect and $default to b, with the
// given YAML limits block (a flow mapping, or "" for the defaults).
func disconnectConfig(b *gt.Backend, limits string) string {
	cfg := fmt.Sprintf(`
api_id: abc123def4
stage: prod
routes:
  $connect: {integration: {type: http, url: %q}}
  $disconnect: {integration: {type: http, url: %q}}
  $default: {integration: {type: http, url: %q}}
`, b.URLFor("/connect"), b.URLFor("/disconnect"), b.URLFor("/default"))
	if limits != "" {
		cfg += "limits: " + limits + "\n"
	}
	return cfg
}

const disconnectUA = "disconnect-test/1.0"

// connected is one client with the $connect event the backend saw for it.
type connected struct {
	g       *gt.Gateway
	b       *gt.Backend
	c       *gt.Client
	id      string
	connect gt.Event
}

// connectClient starts a gateway with limits and connects one client.
func connectClient(t *testing.T, limits string, opts *websocket.DialOptions) *connected {
	t.Helper()
	b := gt.NewBackend(t)
	g := gt.Start(t, disconnectConfig(b, limits))
	if opts == nil {
		opts = &websocket.DialOptions{}
	}
	opts.HTTPHeader = http.Header{"User-Agent": {disconnectUA}}
	c := gt.Dial(t, g.URL, opts)
	id := b.ConnectionID(t, "/connect", 0)
	return &connected{g: g, b: b, c: c, id: id, connect: b.Events("/connect")[0]}
}

// expectDisconnect waits for the $disconnect event of cc and checks it
// against AWS's DISCONNECT event and the $connect event of the same
// connection.
func (cc *connected) expectDisconnect(t *testing.T, code int, reason string) gt.Event {
	t.Helper()
	ev := cc.b.WaitEvent(t, "/disconnect", func(e gt.Event) bool { return e.RequestContext.ConnectionID == cc.id })
	checkDisconnectEvent(t, cc.connect, ev, code, reason)
	if n := len(cc.b.Events("/disconnect")); n != 1 {
		t.Fatalf("%d $disconnect events, want 1", n)
	}
	return ev
}

func checkDisconnectEvent(t *testing.T, connect, ev gt.Event, code int, reason string) {
	t.Helper()
	rc, crc := ev.RequestContext, connect.RequestContext
	if rc.DisconnectStatusCode != int64(code) || rc.DisconnectReason == nil || *rc.DisconnectReason != reason {
		got := "<absent>"
		if rc.DisconnectReason != nil {
			got = fmt.Sprintf("%q", *rc.DisconnectReason)
		}
		t.Fatalf("disconnectStatusCode %d, disconnectReason %s; want %d, %q", rc.DisconnectStatusCode, got, code, reason)
	}
	// disconnectReason is present even when empty, as in AWS's events.
	var raw struct {
		RequestContext map[string]json.RawMessage `json:"requestContext"`
	}
	if err := json.Unmarshal(ev.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.RequestContext["disconnectReason"]; !ok {
		t.Fatalf("requestContext has no disconnectReason: %s", ev.Raw)
	}
	for _, f := range []struct{ name, got, want string }{
		{"routeKey", rc.RouteKey, "$disconnect"},
		{"eventType", rc.EventType, "DISCONNECT"},
		{"messageDirection", rc.MessageDirection, "IN"},
		{"connectionId", rc.ConnectionID, crc.ConnectionID},
		{"identity.sourceIp", rc.Identity.SourceIP, "127.0.0.1"},
		{"identity.userAgent", rc.Identity.UserAgent, disconnectUA},
		{"stage", rc.Stage, "prod"},
		{"apiId", rc.APIID, "abc123def4"},
		{"domainName", rc.DomainName, crc.DomainName},
		{"extendedRequestId", rc.ExtendedRequestID, rc.RequestID},
		{"headers.Host", ev.Headers["Host"], crc.DomainName},
	} {
		if f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
	if rc.ConnectedAt != crc.ConnectedAt || rc.ConnectedAt == 0 {
		t.Errorf("connectedAt %d, $connect said %d", rc.ConnectedAt, crc.ConnectedAt)
	}
	if rc.RequestTimeEpoch < rc.ConnectedAt {
		t.Errorf("requestTimeEpoch %d is before connectedAt %d", rc.RequestTimeEpoch, rc.ConnectedAt)
	}
	if tm, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc.RequestTime); err != nil || tm.Unix() != rc.RequestTimeEpoch/1000 {
		t.Errorf("requestTime %q does not match requestTimeEpoch %d (%v)", rc.RequestTime, rc.RequestTimeEpoch, err)
	}
	if !idPattern.MatchString(rc.RequestID) || rc.RequestID == crc.RequestID {
		t.Errorf("requestId %q (the $connect requestId was %q)", rc.RequestID, crc.RequestID)
	}
	if rc.MessageID != nil {
		t.Errorf("messageId %v on a DISCONNECT event", rc.MessageID)
	}
	for _, h := range []string{"x-api-key", "X-Forwarded-For", "x-restapi"} {
		if v, ok := ev.Headers[h]; !ok || v != "" {
			t.Errorf("header %s = %q (present %v), want present and empty", h, v, ok)
		}
		if v := ev.MultiValueHeaders[h]; len(v) != 1 || v[0] != "" {
			t.Errorf("multiValueHeaders %s = %q, want [\"\"]", h, v)
		}
	}
	if v := ev.MultiValueHeaders["Host"]; len(v) != 1 || v[0] != crc.DomainName {
		t.Errorf("multiValueHeaders Host = %q", v)
	}
	if ev.Body != "" || ev.IsBase64Encoded || ev.QueryStringParameters != nil {
		t.Errorf("body %q, isBase64Encoded %v, query %v", ev.Body, ev.IsBase64Encoded, ev.QueryStringParameters)
	}
}

func TestDisconnectClientClose(t *testing.T) {
	for _, tc := range []struct {
		code   websocket.StatusCode
		reason string
	}{
		{websocket.StatusNormalClosure, "bye"},
		{websocket.StatusGoingAway, ""},
		{4000, "app reason ✓"},
	} {
		t.Run(fmt.Sprintf("%d %q", tc.code, tc.reason), func(t *testing.T) {
			t.Parallel()
			cc := connectClient(t, "", nil)
			if err := cc.c.Close(tc.code, tc.reason); err != nil {
				t.Fatalf("close handshake: %v", err)
			}
			cc.expectDisconnect(t, int(tc.code), tc.reason)
		})
	}
}

func TestDisconnectIdleTimeout(t *testing.T) {
	t.Parallel()
	cc := connectClient(t, "{idle_timeout: 300ms, ping_interval: 250ms}", nil)
	ce := cc.c.ExpectClose(1001)
	if ce.Reason != "Going away" {
		t.Fatalf("close reason %q", ce.Reason)
	}
	cc.expectDisconnect(t, 1001, "Going away")
}

func TestDisconnectMaxConnectionDuration(t *testing.T) {
	t.Parallel()
	cc := connectClient(t, "{max_connection_duration: 300ms}", nil)
	cc.c.ExpectClose(1001)
	cc.expectDisconnect(t, 1001, "Going away")
}

func TestDisconnectSlowConsumer(t *testing.T) {
	t.Parallel()
	// A small receive buffer on the client makes the server's queue fill
	// after a few messages rather than after the kernel has buffered
	// megabytes.
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4 << 10)
		}
		return c, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	cc := connectClient(t, "", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	path := "/prod/@connections/" + strings.ReplaceAll(cc.id, "=", "%3D")
	payload := strings.Repeat("z", 128<<10)
	gone := false
	posts, delivered := 0, 0
	for i := 0; i < 1000 && !gone; i++ {
		status, _, body := cc.g.MgmtDo(t, "POST", path, strings.NewReader(payload), nil)
		posts++
		switch status {
		case http.StatusOK:
			delivered++
		case http.StatusGone:
			gone = true
		default:
			t.Fatalf("POST #%d: %d %s", i, status, body)
		}
	}
	if !gone {
		t.Fatal("the connection never stopped accepting posts while its client did not read")
	}
	cc.expectDisconnect(t, 1008, "slow consumer")
	fams := scrape(t, cc.g)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wsgate_slow_consumer_closes_total", nil, 1},
		{"wsgate_disconnects_total", []string{"code", "1008"}, 1},
		{"wsgate_pushes_total", []string{"target", "connection"}, float64(posts)},
		{"wsgate_push_deliveries_total", []string{"target", "connection"}, float64(delivered)},
	} {
		if got := value(fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

func TestDisconnectDeleteConnection(t *testing.T) {
	t.Parallel()
	cc := connectClient(t, "", nil)
	status, _, body := cc.g.MgmtDo(t, "DELETE", "/prod/@connections/"+strings.ReplaceAll(cc.id, "=", "%3D"), nil, nil)
	if status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	cc.c.ExpectClose(1000)
	cc.expectDisconnect(t, 1000, "Connection Closed Normally")
}

func TestDisconnectGatewayShutdown(t *testing.T) {
	t.Parallel()
	cc := connectClient(t, "", nil)
	second := gt.Dial(t, cc.g.URL, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {disconnectUA}}})
	secondID := cc.b.ConnectionID(t, "/connect", 1)
	closed := make(chan error, 2)
	for _, c := range []*gt.Client{cc.c, second} {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					closed <- err
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cc.g.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// Shutdown returns once the $disconnect events have been delivered.
	byID := map[string]gt.Event{}
	for _, e := range cc.b.Events("/disconnect") {
		byID[e.RequestContext.ConnectionID] = e
	}
	if len(byID) != 2 {
		t.Fatalf("after Shutdown, $disconnect events for %d connections, want 2", len(byID))
	}
	checkDisconnectEvent(t, cc.connect, byID[cc.id], 1001, "Going away")
	checkDisconnectEvent(t, cc.b.Events("/connect")[1], byID[secondID], 1001, "Going away")
	for range 2 {
		err := <-closed
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
			t.Fatalf("client read ended with %v, want close 1001", err)
		}
	}
}

func TestDisconnectAbnormal(t *testing.T) {
	t.Parallel()
	cc := connectClient(t, "", nil)
	cc.c.Send(`{"action":"hello"}`)
	cc.b.WaitEvent(t, "/default", nil)
	if err := cc.c.CloseNow(); err != nil {
		t.Fatal(err)
	}
	cc.expectDisconnect(t, 1006, "")
}

func TestDisconnectProtocolError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		typ    websocket.MessageType
		size   int
		code   int
		reason string
	}{
		{"frame over 32 KB", websocket.MessageText, 40 << 10, 1009, "frame too big"},
		{"binary frame", websocket.MessageBinary, 16, 1003, "binary messages are not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cc := connectClient(t, "", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := cc.c.Write(ctx, tc.typ, []byte(strings.Repeat("a", tc.size))); err != nil {
				t.Fatalf("write: %v", err)
			}
			ce := cc.c.ExpectClose(tc.code)
			if ce.Reason != tc.reason {
				t.Fatalf("close reason %q, want %q", ce.Reason, tc.reason)
			}
			cc.expectDisconnect(t, tc.code, tc.reason)
			if n := len(cc.b.Events("/default")); n != 0 {
				t.Fatalf("%d messages reached the backend", n)
			}
		})
	}
}
