package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// dialUser connects as principal sub and returns the client with its
// connection id, the n-th $connect the backend saw.
func dialUser(t *testing.T, g *gt.Gateway, b *gt.Backend, sub string, n int, opts *websocket.DialOptions) *gt.Client {
	t.Helper()
	tok := mint(t, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
	c := gt.Dial(t, g.URL+"?access_token="+tok, opts)
	c.ID = b.ConnectionID(t, "/connect", n)
	return c
}

func mgmtJSON(t *testing.T, g *gt.Gateway, method, path, body string, wantStatus int, out any) http.Header {
	t.Helper()
	status, h, got := g.MgmtDo(t, method, path, strings.NewReader(body), nil)
	if status != wantStatus {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, got, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(got), out); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, got)
		}
	}
	return h
}

func TestMgmtUserFanOut(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, ""))
	var alice []*gt.Client
	for i := range 3 {
		alice = append(alice, dialUser(t, g, b, "alice", i, nil))
	}
	bob := dialUser(t, g, b, "bob", 3, nil)

	for _, prefix := range []string{"", "/prod"} {
		var res struct{ Delivered int }
		mgmtJSON(t, g, "POST", prefix+"/@users/alice", "hi"+prefix, 200, &res)
		if res.Delivered != 3 {
			t.Fatalf("delivered %d, want 3", res.Delivered)
		}
		for _, c := range alice {
			if got := c.NextText(); got != "hi"+prefix {
				t.Fatalf("alice got %q", got)
			}
		}
	}
	mgmtJSON(t, g, "POST", "/@users/bob", "only bob", 200, nil)
	if got := bob.NextText(); got != "only bob" {
		t.Fatalf("bob got %q; a message to alice must not reach him", got)
	}

	h := mgmtJSON(t, g, "POST", "/@users/nobody", "x", 410, nil)
	if h.Get("X-Amzn-ErrorType") != "GoneException" {
		t.Fatalf("error type %q", h.Get("X-Amzn-ErrorType"))
	}

	var list struct {
		PrincipalID string `json:"principalId"`
		Connections []struct {
			ConnectionID string `json:"connectionId"`
			ConnectedAt  string `json:"connectedAt"`
			LastActiveAt string `json:"lastActiveAt"`
			Identity     struct {
				SourceIP string `json:"sourceIp"`
			} `json:"identity"`
		} `json:"connections"`
	}
	mgmtJSON(t, g, "GET", "/prod/@users/alice", "", 200, &list)
	if list.PrincipalID != "alice" || len(list.Connections) != 3 {
		t.Fatalf("user list %+v", list)
	}
	for i, c := range list.Connections {
		if c.ConnectionID != alice[i].ID {
			t.Fatalf("connection %d is %s, want %s (oldest first)", i, c.ConnectionID, alice[i].ID)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", c.ConnectedAt); err != nil || c.Identity.SourceIP != "127.0.0.1" {
			t.Fatalf("connection %+v", c)
		}
	}
	var empty map[string]any
	mgmtJSON(t, g, "GET", "/@users/nobody", "", 200, &empty)
	if conns, ok := empty["connections"].([]any); !ok || len(conns) != 0 {
		t.Fatalf("unknown user: %v, want an empty list", empty)
	}
}

func TestMgmtTopics(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, ""))
	c1 := dialUser(t, g, b, "u1", 0, nil)
	c2 := dialUser(t, g, b, "u2", 1, nil)
	const topic = "orders/42/lines"

	mgmtJSON(t, g, "PUT", "/@connections/"+c1.ID+"/topics/"+topic, "", 204, nil)
	mgmtJSON(t, g, "PUT", "/prod/@connections/"+c2.ID+"/topics/"+topic, "", 204, nil)
	mgmtJSON(t, g, "PUT", "/@connections/"+c2.ID+"/topics/"+topic, "", 204, nil)
	mgmtJSON(t, g, "PUT", "/@connections/nope/topics/"+topic, "", 410, nil)
	mgmtJSON(t, g, "DELETE", "/@connections/nope/topics/"+topic, "", 410, nil)

	var count struct {
		Topic       string
		Subscribers int
	}
	mgmtJSON(t, g, "GET", "/@topics/"+topic, "", 200, &count)
	if count.Topic != topic || count.Subscribers != 2 {
		t.Fatalf("count %+v", count)
	}
	var res struct{ Delivered int }
	mgmtJSON(t, g, "POST", "/prod/@topics/"+topic, "news", 200, &res)
	if res.Delivered != 2 || c1.NextText() != "news" || c2.NextText() != "news" {
		t.Fatalf("delivered %d", res.Delivered)
	}

	mgmtJSON(t, g, "DELETE", "/prod/@connections/"+c1.ID+"/topics/"+topic, "", 204, nil)
	mgmtJSON(t, g, "POST", "/@topics/"+topic, "second", 200, &res)
	if res.Delivered != 1 || c2.NextText() != "second" {
		t.Fatalf("after unsubscribe: delivered %d", res.Delivered)
	}

	_ = c2.Close(websocket.StatusNormalClosure, "")
	gt.Eventually(t, func() bool {
		mgmtJSON(t, g, "GET", "/prod/@topics/"+topic, "", 200, &count)
		return count.Subscribers == 0
	}, "subscriptions to end with the connection")
	mgmtJSON(t, g, "POST", "/@topics/"+topic, "nobody", 200, &res)
	if res.Delivered != 0 {
		t.Fatalf("no subscribers: delivered %d", res.Delivered)
	}
	c1.Send(`{"action":"ping"}`)
	if got := c1.NextText(); got != `{"action":"ping"}` {
		t.Fatalf("c1 got %q; it had unsubscribed", got)
	}
}

func TestMgmtBatch(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, ""))
	c1 := dialUser(t, g, b, "u1", 0, nil)
	c2 := dialUser(t, g, b, "u2", 1, nil)
	mgmtJSON(t, g, "PUT", "/@connections/"+c2.ID+"/topics/room", "", 204, nil)

	body := fmt.Sprintf(`{"items":[
		{"connectionId":%q,"data":"one"},
		{"principalId":"u2","data":"two"},
		{"topic":"room","dataBase64":"AP8="},
		{"connectionId":"gone-id","data":"x"},
		{"principalId":"nobody","data":"x"},
		{"topic":"empty-room","data":"x"},
		{"connectionId":%q,"data":%q},
		{"data":"no target"},
		{"connectionId":%q,"topic":"room","data":"two targets"}
	]}`, c1.ID, c1.ID, strings.Repeat("x", 131073), c1.ID)
	var res struct {
		Results []struct {
			Status    int
			Delivered int
			Error     string
		}
	}
	mgmtJSON(t, g, "POST", "/prod/@batch", body, 200, &res)
	want := []struct {
		status, delivered int
		err               string
	}{
		{200, 1, ""}, {200, 1, ""}, {200, 1, ""},
		{410, 0, "GoneException"}, {410, 0, "GoneException"}, {200, 0, ""},
		{413, 0, "PayloadTooLargeException"}, {400, 0, "BadRequestException"}, {400, 0, "BadRequestException"},
	}
	if len(res.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(res.Results), len(want))
	}
	for i, w := range want {
		if r := res.Results[i]; r.Status != w.status || r.Delivered != w.delivered || r.Error != w.err {
			t.Errorf("item %d: %+v, want %+v", i, r, w)
		}
	}
	if got := c1.NextText(); got != "one" {
		t.Fatalf("c1 got %q", got)
	}
	if got := c2.NextText(); got != "two" {
		t.Fatalf("c2 got %q", got)
	}
	if typ, data := c2.Next(); typ != websocket.MessageBinary || string(data) != "\x00\xff" {
		t.Fatalf("c2 got %v %q, want the binary item", typ, data)
	}

	for _, bad := range []string{`{"items":[`, `{"items":[]}`, `{"itemz":[]}`, `[]`} {
		h := mgmtJSON(t, g, "POST", "/@batch", bad, 400, nil)
		if h.Get("X-Amzn-ErrorType") != "BadRequestException" {
			t.Fatalf("%s: error type %q", bad, h.Get("X-Amzn-ErrorType"))
		}
	}
}

func TestMgmtDeleteWithCode(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, ""))
	c := dialUser(t, g, b, "u1", 0, nil)
	for _, q := range []string{"?code=999", "?code=1001", "?code=2999", "?code=5000", "?code=abc",
		"?code=4000&reason=" + strings.Repeat("r", 124), "?reason=%ff"} {
		h := mgmtJSON(t, g, "DELETE", "/@connections/"+c.ID+q, "", 400, nil)
		if h.Get("X-Amzn-ErrorType") != "BadRequestException" {
			t.Fatalf("%s: error type %q", q, h.Get("X-Amzn-ErrorType"))
		}
	}
	mgmtJSON(t, g, "DELETE", "/prod/@connections/"+c.ID+"?code=4000&reason=account+suspended", "", 204, nil)
	if ce := c.ExpectClose(4000); ce.Reason != "account suspended" {
		t.Fatalf("close reason %q", ce.Reason)
	}
	rc := b.WaitEvent(t, "/disconnect", nil).RequestContext
	if rc.DisconnectStatusCode != 4000 || rc.DisconnectReason == nil || *rc.DisconnectReason != "account suspended" {
		t.Fatalf("$disconnect code %d reason %v, want 4000 %q", rc.DisconnectStatusCode, rc.DisconnectReason, "account suspended")
	}
}

func TestMgmtRateLimit(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, "management: {rate_limit: {rate: 0.001, burst: 3}}"))
	for range 3 {
		mgmtJSON(t, g, "GET", "/@topics/t", "", 200, nil)
	}
	status, h, body := g.MgmtDo(t, "POST", "/@connections/x", strings.NewReader("x"), nil)
	var msg struct{ Message string }
	_ = json.Unmarshal([]byte(body), &msg)
	if status != 429 || h.Get("X-Amzn-ErrorType") != "LimitExceededException" ||
		msg.Message != "The client is sending more than the allowed number of requests per unit of time or the WebSocket client side buffer is full" {
		t.Fatalf("over the limit: %d %s %s", status, h.Get("X-Amzn-ErrorType"), body)
	}
	if status, _, _ := g.MgmtDo(t, "GET", "/healthz", nil, nil); status != 200 {
		t.Fatalf("healthz is not rate limited, got %d", status)
	}
}

// smallReadBuffer dials with a 4 KiB socket receive buffer, set before the
// handshake so that the window advertised stays small and a client that
// stops reading backs up into the gateway's queue quickly.
func smallReadBuffer() *websocket.DialOptions {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}}
}

func TestMgmtTopicSlowConsumer(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, `limits: {max_message_bytes: 1024, max_frame_bytes: 1024, outbound_queue_bytes: 65536}`))
	const topic = "ticks/all"
	const n = 200
	slow := dialUser(t, g, b, "slow", 0, smallReadBuffer())
	mgmtJSON(t, g, "PUT", "/@connections/"+slow.ID+"/topics/"+topic, "", 204, nil)

	var (
		mu  sync.Mutex
		got = make([][]string, n-1)
		wg  sync.WaitGroup
	)
	fast := make([]*gt.Client, n-1)
	for i := range fast {
		fast[i] = dialUser(t, g, b, fmt.Sprintf("fast-%d", i), i+1, nil)
		mgmtJSON(t, g, "PUT", "/@connections/"+fast[i].ID+"/topics/"+topic, "", 204, nil)
		wg.Add(1)
		go func(i int, c *gt.Client) {
			defer wg.Done()
			for {
				_, data, err := c.Read(context.Background())
				if err != nil {
					return
				}
				mu.Lock()
				got[i] = append(got[i], string(data[:6]))
				mu.Unlock()
			}
		}(i, fast[i])
	}
	t.Cleanup(func() {
		for _, c := range fast {
			_ = c.CloseNow()
		}
		wg.Wait()
	})

	pad := strings.Repeat("x", 32<<10)
	sent := 0
	publish := func() int {
		var res struct{ Delivered int }
		mgmtJSON(t, g, "POST", "/@topics/"+topic, fmt.Sprintf("%06d", sent)+pad, 200, &res)
		sent++
		return res.Delivered
	}
	for d := n; d == n; d = publish() {
		if sent > 5000 {
			t.Fatal("the stalled subscriber was never closed")
		}
	}
	for range 5 {
		if d := publish(); d != n-1 {
			t.Fatalf("delivered %d after the slow consumer left, want %d", d, n-1)
		}
	}

	dis := b.WaitEvent(t, "/disconnect", func(e gt.Event) bool { return e.RequestContext.ConnectionID == slow.ID })
	if dis.RequestContext.DisconnectStatusCode != 1008 {
		t.Fatalf("slow consumer $disconnect code %d, want 1008", dis.RequestContext.DisconnectStatusCode)
	}
	mgmtJSON(t, g, "GET", "/@connections/"+slow.ID, "", 410, nil)
	// Hundreds of megabytes reach the subscribers: wait as long as they
	// keep receiving, and fail when deliveries stop short of the end.
	received := func() (total int, all bool) {
		mu.Lock()
		defer mu.Unlock()
		all = true
		for _, msgs := range got {
			total += len(msgs)
			all = all && len(msgs) >= sent
		}
		return total, all
	}
	for last := -1; ; {
		var total int
		gt.Eventually(t, func() bool {
			var all bool
			total, all = received()
			return all || total > last
		}, "every fast subscriber to receive all %d messages (stalled at %d deliveries)", sent, last)
		if _, all := received(); all {
			break
		}
		last = total
	}
	mu.Lock()
	defer mu.Unlock()
	for i, msgs := range got {
		if len(msgs) != sent {
			t.Fatalf("subscriber %d received %d messages, want %d", i, len(msgs), sent)
		}
		for j, m := range msgs {
			if m != fmt.Sprintf("%06d", j) {
				t.Fatalf("subscriber %d message %d is %q", i, j, m)
			}
		}
	}
	if len(b.Events("/disconnect")) != 1 {
		t.Fatalf("%d $disconnect events; only the slow consumer may leave", len(b.Events("/disconnect")))
	}
}
