package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/config"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestRequestAuthorizerCacheWithoutIdentitySources: a request authorizer
// with cache_ttl and no identity sources has nothing to key its decisions
// by. Either the configuration is refused, or every connection is decided
// for itself: one user's Allow must never admit another client as that
// user.
func TestRequestAuthorizerCacheWithoutIdentitySources(t *testing.T) {
	authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Headers map[string]string `json:"headers"`
		}
		_ = json.Unmarshal(body, &ev)
		user := ""
		for k, v := range ev.Headers {
			if strings.EqualFold(k, "X-User-Token") && v == "alice-secret" {
				user = "alice"
			}
		}
		if user == "" {
			w.WriteHeader(401)
			_, _ = io.WriteString(w, "Unauthorized")
			return
		}
		fmt.Fprintf(w, `{"principalId":%q,"policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]}}`, user)
	}))
	defer authz.Close()
	yaml := fmt.Sprintf(`
authorizer:
  type: request
  cache_ttl: 1h
  request: {url: %q}
`, authz.URL)
	if _, err := config.Parse("test.yaml", []byte(yaml)); err != nil {
		if !strings.Contains(err.Error(), "cache_ttl") {
			t.Fatalf("config refused for another reason: %v", err)
		}
		return // refused, as it should be
	}
	g := gt.Start(t, yaml)
	alice := &websocket.DialOptions{HTTPHeader: http.Header{"X-User-Token": {"alice-secret"}}}
	if got := dialStatus(g.URL, alice); got != 101 {
		t.Fatalf("alice: status %d, want 101", got)
	}
	if got := dialStatus(g.URL, nil); got != 401 {
		t.Fatalf("a client without credentials: status %d, want 401 (it was admitted on alice's cached Allow)", got)
	}
}
