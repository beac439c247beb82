package gateway_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// A route response larger than limits.max_message_bytes is the backend's
// failure, not the client's: the client gets the Internal server error
// frame and keeps its connection. Before, the reply was written whatever
// its size, and one over the outbound queue bound (1 MiB) closed a client
// that read promptly as a slow consumer, without a close frame.
func TestRouteResponseOverMessageLimit(t *testing.T) {
	b := gt.NewBackend(t)
	b.On("/echo", func(e gt.Event) gt.Reply {
		if strings.Contains(e.Body, "big") {
			return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: strings.Repeat("a", 2<<20)}}
		}
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: "small"}}
	})
	g := gt.Start(t, backendConfig(b, ""))
	c := gt.Dial(t, g.URL, nil)
	c.SetReadLimit(4 << 20)
	id := b.ConnectionID(t, "/connect", 0)

	c.Send(`{"action":"echo","what":"big"}`)
	got := c.NextText()
	re := regexp.MustCompile(`^\{"message": "Internal server error", "connectionId":"` + regexp.QuoteMeta(id) + `", "requestId":"[A-Za-z0-9_-]{15}="\}$`)
	if !re.MatchString(got) {
		t.Fatalf("reply of %d bytes starting %.40q; want the Internal server error frame", len(got), got)
	}
	// The connection stays open.
	c.Send(`{"action":"echo"}`)
	if got := c.NextText(); got != "small" {
		t.Fatalf("next reply %q, want small", got)
	}
	if n := len(b.Events("/disconnect")); n != 0 {
		t.Fatalf("%d $disconnect events; the client was closed", n)
	}
}

// A route response of exactly limits.max_message_bytes is delivered.
func TestRouteResponseAtMessageLimit(t *testing.T) {
	b := gt.NewBackend(t)
	body := strings.Repeat("b", 128<<10)
	b.On("/echo", func(gt.Event) gt.Reply {
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: body}}
	})
	g := gt.Start(t, backendConfig(b, ""))
	c := gt.Dial(t, g.URL, nil)
	c.Send(`{"action":"echo"}`)
	if got := c.NextText(); got != body {
		t.Fatalf("reply of %d bytes, want %d", len(got), len(body))
	}
}
