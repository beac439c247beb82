package gateway_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

func TestMatchTopic(t *testing.T) {
	tests := []struct {
		pattern, topic, principal string
		want                      bool
	}{
		{"news", "news", "", true},
		{"news", "news/1", "", false},
		{"news", "new", "", false},
		{"news", "newsx", "", false},
		{"*", "news", "", true},
		{"*", "news/1", "", false},
		{"*", "", "", false},
		{"rooms/*/chat", "rooms/lobby/chat", "", true},
		{"rooms/*/chat", "rooms//chat", "", false},
		{"rooms/*/chat", "rooms/a/b/chat", "", false},
		{"rooms/*/chat", "rooms/lobby/chatter", "", false},
		{"rooms/room-*", "rooms/room-7", "", true},
		{"rooms/room-*", "rooms/room-", "", false},
		{"rooms/room-*", "rooms/room-7/x", "", false},
		{"a*b*c", "axxbyyc", "", true},
		{"a*b*c", "abc", "", false},
		{"orders/*", "orders/42", "", true},
		{"orders/*", "orders/42/items/7", "", true},
		{"orders/*", "orders", "", false},
		{"orders/*", "orders/", "", false},
		{"orders/*", "ordersx/42", "", false},
		{"*/events/*", "eu/events/1/2", "", true},
		{"*/events/*", "eu/west/events/1", "", false},
		{"user/{principalId}/*", "user/alice/inbox", "alice", true},
		{"user/{principalId}/*", "user/alice/a/b", "alice", true},
		{"user/{principalId}/*", "user/bob/inbox", "alice", false},
		{"user/{principalId}/*", "user/alice", "alice", false},
		{"user/{principalId}/*", "user//inbox", "", false},
		{"user/{principalId}/*", "user/{principalId}/inbox", "", false},
		{"user/{principalId}", "user/alice", "alice", true},
		{"user/{principalId}", "user/alicex", "alice", false},
		{"user/{principalId}", "user/a*", "a*", true},
		{"user/{principalId}", "user/ab", "a*", false},
		{"u-{principalId}-*", "u-alice-1", "alice", true},
		{"{principalId}", "alice", "", false},
	}
	for _, tt := range tests {
		if got := gateway.MatchTopic(tt.pattern, tt.topic, tt.principal); got != tt.want {
			t.Errorf("MatchTopic(%q, %q, %q) = %v, want %v", tt.pattern, tt.topic, tt.principal, got, tt.want)
		}
	}
}

func FuzzMatchTopic(f *testing.F) {
	f.Add("user/{principalId}/*", "user/alice/inbox", "alice")
	f.Add("rooms/*/chat", "rooms/lobby/chat", "")
	f.Add("a*b*c*d*e*f*g", strings.Repeat("a", 256), "x")
	f.Add("*/*", "a/b", "")
	f.Fuzz(func(t *testing.T, pattern, topic, principal string) {
		got := gateway.MatchTopic(pattern, topic, principal)
		if got && topic == "" {
			t.Fatalf("%q matches the empty topic", pattern)
		}
		if got && principal == "" && strings.Contains(pattern, "{principalId}") {
			t.Fatalf("%q matches %q without a principal", pattern, topic)
		}
		if !strings.ContainsAny(pattern, "*{") && got != (pattern == topic && topic != "") {
			t.Fatalf("literal %q against %q = %v", pattern, topic, got)
		}
		if topic == "" || strings.ContainsAny(topic, "*{") {
			return
		}
		// A topic matches itself, its segments each replaced by "*"
		// (when none is empty), and any of its proper segment prefixes
		// followed by "/*".
		if !gateway.MatchTopic(topic, topic, principal) {
			t.Fatalf("%q does not match itself", topic)
		}
		segs := strings.Split(topic, "/")
		stars := make([]string, len(segs))
		nonEmpty := true
		for i, s := range segs {
			stars[i] = "*"
			nonEmpty = nonEmpty && s != ""
		}
		if p := strings.Join(stars, "/"); nonEmpty && !gateway.MatchTopic(p, topic, principal) {
			t.Fatalf("%q does not match %q", p, topic)
		}
		if len(segs) > 1 && segs[len(segs)-1] != "" {
			p := strings.Join(segs[:len(segs)-1], "/") + "/*"
			if !gateway.MatchTopic(p, topic, principal) {
				t.Fatalf("%q does not match %q", p, topic)
			}
		}
		if principal != "" && !strings.ContainsAny(principal, "*{") {
			p := strings.ReplaceAll(topic, principal, "{principalId}")
			if !gateway.MatchTopic(p, topic, principal) {
				t.Fatalf("%q does not match %q with principal %q", p, topic, principal)
			}
		}
	})
}

func pushConfig(b *gt.Backend, extra string) string {
	return fmt.Sprintf(`
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256]}
topics:
  allow: ["news", "orders/*", "rooms/*/chat", "user/{principalId}/*"]
%s
routes:
  $connect: {integration: {type: http, url: %q}}
  $default: {integration: {type: http, url: %q}, route_response: true}
  subscribe: {builtin: subscribe}
  unsubscribe: {builtin: unsubscribe}
`, extra, b.URLFor("/connect"), b.URLFor("/default"))
}

func userURL(t *testing.T, g *gt.Gateway, sub string) string {
	return g.URL + "?access_token=" + mint(t, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
}

func topicCount(t *testing.T, g *gt.Gateway, topic string) int {
	t.Helper()
	n, err := g.TopicCount(topic)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func isForbidden(frame string) bool {
	return strings.HasPrefix(frame, `{"message": "Forbidden", "connectionId":"`)
}

func TestSubscribeAllowedByPattern(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, pushConfig(b, ""))
	c := gt.Dial(t, userURL(t, g, "alice"), nil)
	for _, topic := range []string{"news", "orders/42", "orders/42/items", "rooms/lobby/chat", "user/alice/inbox"} {
		c.Send(`{"action":"subscribe","topic":"` + topic + `"}`)
		want := `{"action":"subscribe","topic":"` + topic + `","status":"subscribed"}`
		if got := c.NextText(); got != want {
			t.Fatalf("subscribe %s: got %s, want %s", topic, got, want)
		}
		if n := topicCount(t, g, topic); n != 1 {
			t.Fatalf("%s has %d subscribers after subscribe, want 1", topic, n)
		}
	}
	c.Send(`{"action":"subscribe","topic":"news"}`)
	if got := c.NextText(); got != `{"action":"subscribe","topic":"news","status":"subscribed"}` {
		t.Fatalf("second subscribe: got %s", got)
	}
	if n := topicCount(t, g, "news"); n != 1 {
		t.Fatalf("news has %d subscribers after subscribing twice, want 1", n)
	}
	c.Send(`{"action":"unsubscribe","topic":"news"}`)
	if got := c.NextText(); got != `{"action":"unsubscribe","topic":"news","status":"unsubscribed"}` {
		t.Fatalf("unsubscribe: got %s", got)
	}
	if n := topicCount(t, g, "news"); n != 0 {
		t.Fatalf("news has %d subscribers after unsubscribe, want 0", n)
	}
	if n := len(b.Events("/default")); n != 0 {
		t.Fatalf("built-in routes reached the integration %d times", n)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	gt.Eventually(t, func() bool { return topicCount(t, g, "orders/42") == 0 && topicCount(t, g, "user/alice/inbox") == 0 },
		"subscriptions to end with the connection")
}

func TestSubscribeRefused(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, pushConfig(b, ""))
	c := gt.Dial(t, userURL(t, g, "alice"), nil)
	refused := []struct{ name, msg, topic string }{
		{"no pattern", `{"action":"subscribe","topic":"secret"}`, "secret"},
		{"exact pattern, longer topic", `{"action":"subscribe","topic":"news/1"}`, "news/1"},
		{"trailing rest needs a segment", `{"action":"subscribe","topic":"orders"}`, "orders"},
		{"star stays in its segment", `{"action":"subscribe","topic":"rooms/a/b/chat"}`, "rooms/a/b/chat"},
		{"another user's topic", `{"action":"subscribe","topic":"user/bob/inbox"}`, "user/bob/inbox"},
		{"pattern text as topic", `{"action":"subscribe","topic":"user/{principalId}/inbox"}`, "user/{principalId}/inbox"},
		{"too long", `{"action":"subscribe","topic":"orders/` + strings.Repeat("x", 250) + `"}`, "orders/" + strings.Repeat("x", 250)},
		{"control character", `{"action":"subscribe","topic":"orders/\u0001"}`, "orders/\x01"},
		{"missing topic", `{"action":"subscribe"}`, ""},
		{"topic not a string", `{"action":"subscribe","topic":42}`, ""},
		{"unsubscribe without pattern", `{"action":"unsubscribe","topic":"secret"}`, "secret"},
	}
	for _, tc := range refused {
		c.Send(tc.msg)
		if got := c.NextText(); !isForbidden(got) {
			t.Fatalf("%s: got %s, want the Forbidden frame", tc.name, got)
		}
		if tc.topic != "" {
			if n := topicCount(t, g, tc.topic); n != 0 {
				t.Fatalf("%s: %q has %d subscribers", tc.name, tc.topic, n)
			}
		}
	}
	c.Send(`{"action":"subscribe","topic":"orders/1"}`)
	if got := c.NextText(); got != `{"action":"subscribe","topic":"orders/1","status":"subscribed"}` {
		t.Fatalf("after refusals the connection got %s", got)
	}
}

func TestSubscribeInvalidJSON(t *testing.T) {
	g := gt.Start(t, `
topics: {allow: ["*"]}
routes:
  $default: {builtin: subscribe}
`)
	c := gt.Dial(t, g.URL, nil)
	c.Send(`{"action":"subscribe","topic":"news"`)
	if got := c.NextText(); !isForbidden(got) {
		t.Fatalf("invalid JSON: got %s, want the Forbidden frame", got)
	}
	c.Send(`{"topic":"news"}`)
	if got := c.NextText(); got != `{"action":"subscribe","topic":"news","status":"subscribed"}` {
		t.Fatalf("got %s", got)
	}
}

func TestUserLimitRefuseNewest(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, pushConfig(b, "limits: {max_connections_per_user: 2}"))
	first := gt.Dial(t, userURL(t, g, "alice"), nil)
	gt.Dial(t, userURL(t, g, "alice"), nil)
	if got := dialStatus(userURL(t, g, "alice"), nil); got != 429 {
		t.Fatalf("third connection of a user: status %d, want 429", got)
	}
	other := gt.Dial(t, userURL(t, g, "bob"), nil)
	if n := len(b.Events("/connect")); n != 3 {
		t.Fatalf("$connect integration ran %d times, want 3: a refused client must not reach it", n)
	}
	other.Send(`{"action":"hello"}`)
	if got := other.NextText(); got != `{"action":"hello"}` {
		t.Fatalf("another user got %s", got)
	}
	_ = first.Close(websocket.StatusNormalClosure, "")
	gt.Eventually(t, func() bool { return dialStatus(userURL(t, g, "alice"), nil) == 101 },
		"a new connection once the user is under the limit")
}

func TestUserLimitCloseOldest(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, pushConfig(b, "limits: {max_connections_per_user: 2, user_limit_policy: close_oldest}"))
	oldest := gt.Dial(t, userURL(t, g, "alice"), nil)
	oldest.ID = b.ConnectionID(t, "/connect", 0)
	second := gt.Dial(t, userURL(t, g, "alice"), nil)
	other := gt.Dial(t, userURL(t, g, "bob"), nil)
	newest := gt.Dial(t, userURL(t, g, "alice"), nil)
	ce := oldest.ExpectClose(4008)
	if ce.Reason != "too many connections for this user" {
		t.Fatalf("close reason %q", ce.Reason)
	}
	for _, c := range []*gt.Client{second, other, newest} {
		c.Send(`{"action":"hello"}`)
		if got := c.NextText(); got != `{"action":"hello"}` {
			t.Fatalf("a connection within the limit got %s", got)
		}
	}
}

func TestMessageRateLimit(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, pushConfig(b, "limits: {messages_per_second: {rate: 2, burst: 3}}"))
	c := gt.Dial(t, userURL(t, g, "alice"), nil)
	id := b.ConnectionID(t, "/connect", 0)
	const sent = 20
	for i := range sent {
		c.Send(fmt.Sprintf(`{"action":"m","n":%d}`, i))
	}
	limited, passed := 0, 0
	for range sent {
		got := c.NextText()
		switch {
		case strings.HasPrefix(got, `{"message": "Limit Exceeded", "connectionId":"`+id+`", "requestId":"`):
			limited++
		case strings.HasPrefix(got, `{"action":"m"`):
			passed++
		default:
			t.Fatalf("unexpected frame %s", got)
		}
	}
	if passed < 3 || limited == 0 {
		t.Fatalf("%d passed and %d were limited; want the burst of 3 to pass and the rest limited", passed, limited)
	}
	if n := len(b.Events("/default")); n != passed {
		t.Fatalf("the integration saw %d messages, want only the %d that passed", n, passed)
	}
	gt.Eventually(t, func() bool {
		c.Send(`{"action":"later"}`)
		return c.NextText() == `{"action":"later"}`
	}, "a message to pass once tokens refill")
}
