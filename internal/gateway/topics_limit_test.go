package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// isSubscriptionLimit reports whether frame is the error frame a client gets
// for a subscription over limits.max_subscriptions_per_connection.
func isSubscriptionLimit(frame string) bool {
	return strings.HasPrefix(frame, `{"message": "Subscription limit exceeded", "connectionId":"`)
}

// jsonString returns s as a JSON string.
func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// badTopics are names no call may use, as they appear in JSON and escaped
// for a management API path.
var badTopics = []struct{ name, topic string }{
	{"empty segment", "user/alice/a//b"},
	{"leading slash", "/user/alice/x"},
	{"trailing slash", "user/alice/x/"},
	{"dot segment", "user/alice/./x"},
	{"dot-dot segment", "user/alice/../bob/x"},
	{"last segment dot-dot", "user/alice/.."},
	{"control character", "user/alice/a\x07b"},
	{"line separator", "user/alice/a\u2028b"},
	{"invalid UTF-8", "user/alice/\xff"},
	{"too long", "user/alice/" + strings.Repeat("x", 246)},
}

// TestTopicRules checks that the built-in subscribe route and every
// management call that names a topic refuse the same malformed names: the
// client gets the Forbidden frame, the management API 400
// BadRequestException.
func TestTopicRules(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, pushConfig(b, ""))
	c := dialUser(t, g, b, "alice", 0, nil)
	pathTopic := func(topic string) string {
		return strings.ReplaceAll(url.PathEscape(topic), "%2F", "/")
	}
	for _, tc := range badTopics {
		// JSON cannot carry invalid UTF-8, so that name is only tried in
		// paths.
		inJSON := utf8.ValidString(tc.topic)
		if inJSON {
			c.Send(`{"action":"subscribe","topic":` + jsonString(t, tc.topic) + `}`)
			if got := c.NextText(); !isForbidden(got) {
				t.Errorf("%s: subscribe got %s, want the Forbidden frame", tc.name, got)
			}
		}
		// Slashes are escaped in the path too, so that the path stays
		// canonical and reaches the topic check.
		esc := url.PathEscape(tc.topic)
		calls := []struct{ method, path, body string }{
			{"PUT", "/@connections/" + url.PathEscape(c.ID) + "/topics/" + esc, ""},
			{"DELETE", "/@connections/" + url.PathEscape(c.ID) + "/topics/" + esc, ""},
			{"POST", "/@topics/" + esc, "hello"},
			{"GET", "/@topics/" + esc, ""},
		}
		for _, call := range calls {
			status, hdr, body := g.MgmtDo(t, call.method, call.path, strings.NewReader(call.body), nil)
			if status != http.StatusBadRequest || hdr.Get("X-Amzn-ErrorType") != "BadRequestException" {
				t.Errorf("%s: %s %s: %d %s %q, want 400 BadRequestException", tc.name, call.method, call.path, status, hdr.Get("X-Amzn-ErrorType"), body)
			}
		}
		var out struct {
			Results []struct {
				Status int    `json:"status"`
				Error  string `json:"error"`
			} `json:"results"`
		}
		if !inJSON {
			continue
		}
		item := `{"items":[{"topic":` + jsonString(t, tc.topic) + `,"data":"x"},{"topic":"user/alice/ok","data":"x"}]}`
		mgmtJSON(t, g, "POST", "/@batch", item, 200, &out)
		if len(out.Results) != 2 || out.Results[0].Status != 400 || out.Results[0].Error != "BadRequestException" || out.Results[1].Status != 200 {
			t.Errorf("%s: batch results %+v, want 400 BadRequestException then 200", tc.name, out.Results)
		}
		if n := topicCount(t, g, tc.topic); n != 0 {
			t.Errorf("%s: %q has %d subscribers", tc.name, tc.topic, n)
		}
	}
	// The rules leave room for what names need: spaces, punctuation,
	// non-ASCII letters, pattern characters, the full 256 bytes.
	for _, topic := range []string{"user/alice/a b", "user/alice/é-ü_~!", "user/alice/*", "user/alice/" + strings.Repeat("x", 245), "user/alice/.x/..y"} {
		c.Send(`{"action":"subscribe","topic":` + jsonString(t, topic) + `}`)
		if got := c.NextText(); !strings.Contains(got, `"status":"subscribed"`) {
			t.Errorf("subscribe %q: got %s", topic, got)
		}
		mgmtJSON(t, g, "PUT", "/@connections/"+url.PathEscape(c.ID)+"/topics/"+pathTopic(topic), "", 204, nil)
		mgmtJSON(t, g, "POST", "/@topics/"+pathTopic(topic), "to "+topic, 200, nil)
		if got := c.NextText(); got != "to "+topic {
			t.Errorf("publish to %q: client got %q", topic, got)
		}
	}
}

// TestSubscriptionLimit checks limits.max_subscriptions_per_connection on
// the built-in route and on the management API: one subscription over it is
// refused, subscribing again to a topic already held is not, and an
// unsubscribe makes room.
func TestSubscriptionLimit(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, pushConfig(b, "limits: {max_subscriptions_per_connection: 3}"))
	c := dialUser(t, g, b, "alice", 0, nil)
	sub := func(action, topic string) string {
		c.Send(`{"action":"` + action + `","topic":` + jsonString(t, topic) + `}`)
		return c.NextText()
	}
	for _, topic := range []string{"news", "orders/1", "orders/2"} {
		if got := sub("subscribe", topic); !strings.Contains(got, `"status":"subscribed"`) {
			t.Fatalf("subscribe %s: %s", topic, got)
		}
	}
	if got := sub("subscribe", "orders/3"); !isSubscriptionLimit(got) {
		t.Fatalf("fourth subscription: got %s, want the subscription limit frame", got)
	}
	if n := topicCount(t, g, "orders/3"); n != 0 {
		t.Fatalf("orders/3 has %d subscribers over the limit", n)
	}
	if got := sub("subscribe", "news"); !strings.Contains(got, `"status":"subscribed"`) {
		t.Fatalf("subscribing again at the limit: %s", got)
	}
	status, hdr, body := g.MgmtDo(t, "PUT", "/@connections/"+url.PathEscape(c.ID)+"/topics/orders/4", nil, nil)
	if status != http.StatusBadRequest || hdr.Get("X-Amzn-ErrorType") != "BadRequestException" || !strings.Contains(body, "max_subscriptions_per_connection") {
		t.Fatalf("PUT over the limit: %d %s %q, want 400 BadRequestException naming the limit", status, hdr.Get("X-Amzn-ErrorType"), body)
	}
	mgmtJSON(t, g, "PUT", "/@connections/"+url.PathEscape(c.ID)+"/topics/orders/1", "", 204, nil)
	if got := sub("unsubscribe", "news"); !strings.Contains(got, `"status":"unsubscribed"`) {
		t.Fatalf("unsubscribe: %s", got)
	}
	if got := sub("subscribe", "orders/3"); !strings.Contains(got, `"status":"subscribed"`) {
		t.Fatalf("subscribe after an unsubscribe: %s", got)
	}
	// The limit is per connection.
	other := dialUser(t, g, b, "alice", 1, nil)
	mgmtJSON(t, g, "PUT", "/@connections/"+url.PathEscape(other.ID)+"/topics/orders/4", "", 204, nil)
}

// TestSubscriptionLimitDefault checks that without configuration a
// connection holds at most 128 subscriptions.
func TestSubscriptionLimitDefault(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, ""))
	gt.Dial(t, g.URL, nil)
	id := url.PathEscape(b.ConnectionID(t, "/connect", 0))
	for i := range 128 {
		mgmtJSON(t, g, "PUT", fmt.Sprintf("/@connections/%s/topics/t/%d", id, i), "", 204, nil)
	}
	mgmtJSON(t, g, "PUT", "/@connections/"+id+"/topics/t/128", "", 400, nil)
}

// TestClusterSubscriptionLimit checks that the limit holds for calls made
// through another node: the node that holds the connection counts.
func TestClusterSubscriptionLimit(t *testing.T) {
	b := gt.NewBackend(t)
	newEngine := engines["memory"](t)
	var gs []*gt.Gateway
	for range 2 {
		cfg := clusterConfig(t, b)
		cfg.Limits.MaxSubscriptionsPerConnection = 2
		g := gt.StartNode(t, cfg, newEngine())
		gt.Eventually(t, func() bool {
			status, _, _ := g.MgmtDo(t, "GET", "/readyz", nil, nil)
			return status == 200
		}, "node ready")
		gs = append(gs, g)
	}
	c := dialUser(t, gs[0], b, "alice", 0, nil)
	id := url.PathEscape(c.ID)
	mgmtJSON(t, gs[1], "PUT", "/@connections/"+id+"/topics/a", "", 204, nil)
	mgmtJSON(t, gs[0], "PUT", "/@connections/"+id+"/topics/b", "", 204, nil)
	for _, g := range gs {
		status, hdr, body := g.MgmtDo(t, "PUT", "/@connections/"+id+"/topics/c", nil, nil)
		if status != http.StatusBadRequest || hdr.Get("X-Amzn-ErrorType") != "BadRequestException" {
			t.Fatalf("third subscription: %d %s %q, want 400 BadRequestException", status, hdr.Get("X-Amzn-ErrorType"), body)
		}
	}
	mgmtJSON(t, gs[1], "DELETE", "/@connections/"+id+"/topics/a", "", 204, nil)
	mgmtJSON(t, gs[1], "PUT", "/@connections/"+id+"/topics/c", "", 204, nil)
}
