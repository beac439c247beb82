package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// tiny is a rate that refills no token during a test, so that exactly the
// burst passes.
const tiny = "0.000001"

func isTooManyRequests(frame, connectionID string) bool {
	return strings.HasPrefix(frame, `{"message": "Too Many Requests", "connectionId":"`+connectionID+`", "requestId":"`) &&
		strings.HasSuffix(frame, `="}`)
}

// TestRouteThrottling: a route's bucket lets exactly its burst through; the
// rest get AWS's Too Many Requests frame, never reach the integration, and
// the socket stays open. Another route has a bucket of its own (the stage
// default), and a throttled message counts in the metrics.
func TestRouteThrottling(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, fmt.Sprintf(
		"  limited: {integration: {type: http, url: %q}, route_response: true, throttling: {rate: %s, burst: 3}}\nthrottling: {rate: %s, burst: 2}\n",
		b.URLFor("/limited"), tiny, tiny)))
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)

	const burst, extra = 3, 4
	for i := range burst + extra {
		c.Send(fmt.Sprintf(`{"action":"limited","n":%d}`, i))
	}
	passed, throttled := 0, 0
	for range burst + extra {
		got := c.NextText()
		switch {
		case isTooManyRequests(got, id):
			throttled++
		case strings.HasPrefix(got, `{"action":"limited"`):
			passed++
		default:
			t.Fatalf("unexpected frame %s", got)
		}
	}
	if passed != burst || throttled != extra {
		t.Fatalf("%d passed and %d throttled; want %d and %d", passed, throttled, burst, extra)
	}
	if n := len(b.Events("/limited")); n != burst {
		t.Fatalf("the integration saw %d messages; want %d", n, burst)
	}

	// $default has the stage's bucket (burst 2), untouched so far.
	for i := range 3 {
		c.Send(fmt.Sprintf(`{"action":"other","n":%d}`, i))
	}
	for i := range 2 {
		if got := c.NextText(); got != fmt.Sprintf(`{"action":"other","n":%d}`, i) {
			t.Fatalf("$default message %d: got %s", i, got)
		}
	}
	if got := c.NextText(); !isTooManyRequests(got, id) {
		t.Fatalf("third $default message: got %s", got)
	}

	fams := scrape(t, g)
	if got := value(fams, "wsgate_throttled_total", "route", "limited"); got != extra {
		t.Errorf("wsgate_throttled_total{route=limited} = %v; want %d", got, extra)
	}
	if got := value(fams, "wsgate_throttled_total", "route", "$default"); got != 1 {
		t.Errorf("wsgate_throttled_total{route=$default} = %v; want 1", got)
	}
	if got := value(fams, "wsgate_client_errors_total", "route", "limited"); got != extra {
		t.Errorf("wsgate_client_errors_total{route=limited} = %v; want %d", got, extra)
	}
	if got := value(fams, "wsgate_messages_received_total", "route", "limited"); got != burst+extra {
		t.Errorf("wsgate_messages_received_total{route=limited} = %v; want %d", got, burst+extra)
	}
}

// TestHandshakeThrottling: the $connect route's bucket answers handshakes
// over it 429 before the $connect integration runs, and no $disconnect
// follows; open connections are not affected.
func TestHandshakeThrottling(t *testing.T) {
	b := gt.NewBackend(t)
	cfg := backendConfig(b, "")
	cfg = strings.Replace(cfg, "$connect: {integration: {type: http, url: "+fmt.Sprintf("%q", b.URLFor("/connect"))+"}}",
		"$connect: {integration: {type: http, url: "+fmt.Sprintf("%q", b.URLFor("/connect"))+"}, throttling: {rate: "+tiny+", burst: 2}}", 1)
	g := gt.Start(t, cfg)
	first := gt.Dial(t, g.URL, nil)
	gt.Dial(t, g.URL, nil)
	for range 3 {
		c, resp, err := gt.TryDial(g.URL, nil)
		if err == nil {
			_ = c.CloseNow()
			t.Fatal("a handshake over the $connect bucket was accepted")
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("handshake over the bucket: %v %v; want 429", resp, err)
		}
	}
	if n := len(b.Events("/connect")); n != 2 {
		t.Fatalf("$connect ran %d times; want 2", n)
	}
	first.Send(`{"action":"echo","x":1}`)
	if got := first.NextText(); got != `{"action":"echo","x":1}` {
		t.Fatalf("open connection got %s", got)
	}
	fams := scrape(t, g)
	if got := value(fams, "wsgate_handshakes_total", "status", "429"); got != 3 {
		t.Errorf("wsgate_handshakes_total{status=429} = %v; want 3", got)
	}
	if got := value(fams, "wsgate_throttled_total", "route", "$connect"); got != 3 {
		t.Errorf("wsgate_throttled_total{route=$connect} = %v; want 3", got)
	}
	if n := len(b.Events("/disconnect")); n != 0 {
		t.Errorf("%d $disconnect events for refused handshakes; want 0", n)
	}
}

// TestStageThrottlingCoversHandshakes: without a $connect route, the
// stage's default throttles handshakes too, with AWS's body.
func TestStageThrottlingCoversHandshakes(t *testing.T) {
	g := gt.Start(t, "throttling: {rate: "+tiny+", burst: 1}\n")
	gt.Dial(t, g.URL, nil)
	_, resp, err := gt.TryDial(g.URL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second handshake: %v %v; want 429", resp, err)
	}
	body := make([]byte, 256)
	n, _ := resp.Body.Read(body)
	if got := string(body[:n]); got != `{"message":"Too Many Requests"}` {
		t.Fatalf("429 body %q", got)
	}
}
