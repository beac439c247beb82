package gateway_test

import (
	"fmt"
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestRequestValidationHugeNumber: a JSON number whose exponent math/big
// refuses to expand, sent to a route whose model compares numbers, gets
// the Bad request body frame; the socket stays open and the next message
// goes through. (It used to panic in the message worker, which has no
// recover: the whole gateway process exited.)
func TestRequestValidationHugeNumber(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
stage: prod
routes:
  $connect: {integration: {type: http, url: %q}}
  $default:
    integration: {type: http, url: %q}
    route_response: true
    model: {type: object, properties: {n: {type: number, minimum: 0}}}
`, b.URLFor("/connect"), b.URLFor("/default")))
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)
	c.Send(`{"n":1e1000001}`)
	badRequestBody(t, c.NextText(), id)
	c.Send(`{"n":1}`)
	if got := c.NextText(); got != `{"n":1}` {
		t.Fatalf("valid message: got %s", got)
	}
}
