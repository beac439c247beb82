package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestTrustedProxies: the $connect event, the message events and
// GetConnection show as identity.sourceIp what a trusted proxy's
// X-Forwarded-For or Forwarded header says, and the socket's address when
// the peer is not trusted or the header cannot be read. The scheme a
// trusted proxy reports is the event's X-Forwarded-Proto, and the peer is
// appended to X-Forwarded-For.
func TestTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		trusted string // trusted_proxies; the test client is 127.0.0.1
		header  http.Header
		source  string
		xff     string // the event's X-Forwarded-For
		proto   string // the event's X-Forwarded-Proto
	}{
		{"trusted X-Forwarded-For", `["127.0.0.0/8"]`,
			http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.5"}},
			"203.0.113.5", "198.51.100.1, 203.0.113.5, 127.0.0.1", "http"},
		{"trusted proxy says https", `["127.0.0.1"]`,
			http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"https"}},
			"203.0.113.5", "203.0.113.5, 127.0.0.1", "https"},
		{"trusted Forwarded", `["127.0.0.1"]`,
			http.Header{"Forwarded": {`for="[2001:db8::5]:4711";proto=https`}},
			"2001:db8::5", "127.0.0.1", "https"},
		{"untrusted peer", `["10.0.0.0/8"]`,
			http.Header{"X-Forwarded-For": {"203.0.113.5"}, "Forwarded": {"for=203.0.113.6;proto=https"}},
			"127.0.0.1", "203.0.113.5, 127.0.0.1", "http"},
		{"no trusted proxies", `[]`,
			http.Header{"X-Forwarded-For": {"203.0.113.5"}},
			"127.0.0.1", "203.0.113.5, 127.0.0.1", "http"},
		{"malformed X-Forwarded-For from a trusted proxy", `["127.0.0.1"]`,
			http.Header{"X-Forwarded-For": {"203.0.113.5, not-an-address"}},
			"127.0.0.1", "203.0.113.5, not-an-address, 127.0.0.1", "http"},
		{"malformed Forwarded from a trusted proxy", `["127.0.0.1"]`,
			http.Header{"Forwarded": {`for="203.0.113.5`}},
			"127.0.0.1", "127.0.0.1", "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := gt.NewBackend(t)
			g := gt.Start(t, backendConfig(b, "trusted_proxies: "+tt.trusted+"\n"))
			c := gt.Dial(t, g.URL, &websocket.DialOptions{HTTPHeader: tt.header})
			ev := b.WaitEvent(t, "/connect", nil)
			if got := ev.RequestContext.Identity.SourceIP; got != tt.source {
				t.Errorf("$connect identity.sourceIp %q; want %q", got, tt.source)
			}
			if got := ev.Headers["X-Forwarded-For"]; got != tt.xff {
				t.Errorf("$connect X-Forwarded-For %q; want %q", got, tt.xff)
			}
			if got := ev.Headers["X-Forwarded-Proto"]; tt.header.Get("X-Forwarded-Proto") == "" && got != tt.proto {
				t.Errorf("$connect X-Forwarded-Proto %q; want %q", got, tt.proto)
			}
			c.Send(`{"action":"echo"}`)
			c.NextText()
			msg := b.WaitEvent(t, "/echo", nil)
			if got := msg.RequestContext.Identity.SourceIP; got != tt.source {
				t.Errorf("message identity.sourceIp %q; want %q", got, tt.source)
			}
			status, _, body := g.MgmtDo(t, "GET", "/@connections/"+url.PathEscape(ev.RequestContext.ConnectionID), nil,
				http.Header{"Authorization": {"Bearer " + gt.TestToken}})
			var info struct {
				Identity struct {
					SourceIP string `json:"sourceIp"`
				} `json:"identity"`
			}
			if err := json.Unmarshal([]byte(body), &info); status != 200 || err != nil {
				t.Fatalf("GetConnection: %d %s %v", status, body, err)
			}
			if info.Identity.SourceIP != tt.source {
				t.Errorf("GetConnection identity.sourceIp %q; want %q", info.Identity.SourceIP, tt.source)
			}
		})
	}
}

// TestTrustedProxiesInTheAuthorizerEvent: a REQUEST authorizer sees the
// client's address as identity.sourceIp and the peer appended to
// X-Forwarded-For.
func TestTrustedProxiesInTheAuthorizerEvent(t *testing.T) {
	var got struct {
		Headers        map[string]string `json:"headers"`
		RequestContext struct {
			Identity struct {
				SourceIP string `json:"sourceIp"`
			} `json:"identity"`
		} `json:"requestContext"`
	}
	seen := make(chan struct{}, 1)
	authz := gt.NewBackend(t)
	authz.On("/authorize", func(ev gt.Event) gt.Reply {
		_ = json.Unmarshal(ev.Raw, &got)
		seen <- struct{}{}
		return gt.Reply{Body: `{"principalId":"u","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]}}`}
	})
	g := gt.Start(t, fmt.Sprintf("trusted_proxies: [127.0.0.1]\nauthorizer:\n  type: request\n  request: {url: %q}\n", authz.URLFor("/authorize")))
	gt.Dial(t, g.URL, &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {"203.0.113.5"}}})
	<-seen
	if got.RequestContext.Identity.SourceIP != "203.0.113.5" || got.Headers["X-Forwarded-For"] != "203.0.113.5, 127.0.0.1" {
		t.Fatalf("authorizer event sourceIp %q X-Forwarded-For %q", got.RequestContext.Identity.SourceIP, got.Headers["X-Forwarded-For"])
	}
}
