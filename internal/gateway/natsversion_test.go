package gateway_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// TestReadyzNATSServerTooOld: a gateway whose NATS server is older than
// 2.11 answers /readyz with 503 and says the server is too old, rather
// than unreachable, and refuses new clients.
func TestReadyzNATSServerTooOld(t *testing.T) {
	url, _ := servicetest.OldNATS(t)
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, fmt.Sprintf("registry: {type: nats, nats: {url: %q}, heartbeat_interval: 50ms, node_timeout: 300ms}", url)))
	const want = "NATS server too old (needs ≥ 2.11)"
	var last string
	gt.Eventually(t, func() bool {
		status, _, body := g.MgmtDo(t, "GET", "/readyz", nil, nil)
		var r struct{ Status, Reason string }
		last = fmt.Sprintf("%d %s", status, body)
		return status == 503 && json.Unmarshal([]byte(body), &r) == nil && r.Status == "unavailable" && r.Reason == want
	}, "/readyz 503 with the reason "+want)
	t.Logf("/readyz: %s", last)
	tok := mint(t, jwt.MapClaims{"sub": "ann", "exp": time.Now().Add(time.Hour).Unix()})
	if status := dialStatus(g.URL+"?access_token="+tok, nil); status != 503 {
		t.Fatalf("a new client got %d, want 503", status)
	}
}
