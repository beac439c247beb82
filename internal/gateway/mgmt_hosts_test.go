package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestOpenManagementAnswersLoopbackHostsOnly: a management API without
// authentication (on its loopback listener) answers calls addressed to the
// loopback, to localhost and to the names local functions reach it by, and
// refuses with 403 a call naming any other host, as a page whose name was
// rebound to 127.0.0.1 sends. With authentication the host does not matter.
func TestOpenManagementAnswersLoopbackHostsOnly(t *testing.T) {
	open := gt.Start(t, "api_id: chatapi\ndomain_name: ws.example.test\n")
	get := func(g *gt.Gateway, host string, header http.Header) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", g.MgmtURL+"/@connections", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	port := open.MgmtURL[strings.LastIndexByte(open.MgmtURL, ':'):]
	for _, host := range []string{"127.0.0.1" + port, "localhost" + port, "chatapi.execute-api.us-east-1.amazonaws.com", "ws.example.test"} {
		if status, body := get(open, host, nil); status != 200 {
			t.Errorf("Host %s: %d %s, want 200", host, status, body)
		}
	}
	for _, host := range []string{"rebind.evil.example" + port, "other.execute-api.us-east-1.amazonaws.com"} {
		if status, body := get(open, host, nil); status != 403 || !strings.Contains(body, "loopback host") {
			t.Errorf("Host %s: %d %s, want 403", host, status, body)
		}
	}

	withAuth := gt.Start(t, "management: {auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}}\n")
	if status, body := get(withAuth, "gateway.example.test", http.Header{"Authorization": {"Bearer " + gt.TestToken}}); status != 200 {
		t.Errorf("with a token, Host gateway.example.test: %d %s, want 200", status, body)
	}
}
