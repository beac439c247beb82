package mgmt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/inspect"
)

// tapConn is a live connection of the test's hub that can be tailed.
type tapConn struct {
	id  string
	tap atomic.Pointer[hub.Tap]
}

func (c *tapConn) ID() string        { return c.id }
func (c *tapConn) Send([]byte) error { return nil }
func (c *tapConn) Close(int, string) {}
func (c *tapConn) Info() hub.Info    { return hub.Info{} }
func (c *tapConn) SetTap(t hub.Tap) {
	if t == nil {
		c.tap.Store(nil)
		return
	}
	c.tap.Store(&t)
}

func (c *tapConn) message(out bool, data string) {
	if t := c.tap.Load(); t != nil {
		(*t).Message(out, []byte(data), false)
	}
}

// inspectServer is a management API on one node, with tails on or off,
// whose hub holds the connections ids.
func inspectServer(t *testing.T, tails bool, ids ...string) (*Server, *inspect.Log, map[string]*tapConn) {
	t.Helper()
	h := hub.New()
	conns := make(map[string]*tapConn)
	for _, id := range ids {
		c := &tapConn{id: id}
		conns[id] = c
		h.Add(c)
	}
	log := inspect.NewLog("n1")
	ts := inspect.NewTails(nil)
	ts.SetEnabled(tails)
	node := cluster.NewNode(cluster.Config{NodeID: "n1", Log: log, Tails: ts}, cluster.NewMemory(), h)
	return New(Config{}, node, slog.New(slog.DiscardHandler)), log, conns
}

// inspectCall makes one call on s and returns its status, error type and body.
func inspectCall(s *Server, method, path string) (int, string, string) {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, path, nil).WithContext(context.Background()))
	body, _ := io.ReadAll(rec.Body)
	// The header is set as AWS spells it, not in Go's canonical form.
	return rec.Code, strings.Join(rec.Header()["X-Amzn-ErrorType"], ","), string(body)
}

func TestGetLogQueries(t *testing.T) {
	s, log, _ := inspectServer(t, false)
	base := time.Date(2026, 12, 6, 3, 56, 1, 161_000_000, time.UTC)
	for i := range 5 {
		log.Add(inspect.KindRefused, inspect.Entry{Time: base.Add(time.Duration(i) * time.Second), Status: 429,
			Reason: "throttled", SourceIP: "203.0.113.7", UserAgent: "ua", Path: "/prod"})
	}
	log.Add(inspect.KindAuthorizer, inspect.Entry{Time: base, Authorizer: "jwt", Decision: "allow",
		Latency: 1250 * time.Microsecond, PrincipalID: "user-1", SourceIP: "203.0.113.7"})
	log.Add(inspect.KindAuthorizer, inspect.Entry{Time: base.Add(time.Second), Authorizer: "jwt", Decision: "deny",
		Reason: "token expired", CacheHit: true, SourceIP: "203.0.113.8"})
	for _, tc := range []struct {
		query  string
		status int
		body   string // the whole body, or for 400 part of its message
	}{
		{"?kind=authorizer", 200, `{"items":[` +
			`{"time":"2026-12-06T03:56:02.161Z","nodeId":"n1","authorizer":"jwt","decision":"deny","reason":"token expired","latencyMs":0,"cacheHit":true,"sourceIp":"203.0.113.8"},` +
			`{"time":"2026-12-06T03:56:01.161Z","nodeId":"n1","authorizer":"jwt","decision":"allow","latencyMs":1.25,"cacheHit":false,"principalId":"user-1","sourceIp":"203.0.113.7"}]}`},
		{"?kind=refused&maxResults=2", 200, `{"items":[` +
			`{"time":"2026-12-06T03:56:05.161Z","nodeId":"n1","status":429,"reason":"throttled","sourceIp":"203.0.113.7","userAgent":"ua","path":"/prod"},` +
			`{"time":"2026-12-06T03:56:04.161Z","nodeId":"n1","status":429,"reason":"throttled","sourceIp":"203.0.113.7","userAgent":"ua","path":"/prod"}]}`},
		{"", 400, "kind is missing; give kind=authorizer or kind=refused"},
		{"?kind=", 400, `kind must be authorizer or refused, got \"\"`},
		{"?kind=messages", 400, `kind must be authorizer or refused, got \"messages\"`},
		{"?kind=refused&kind=authorizer", 400, `query parameter \"kind\" is given 2 times; give it once`},
		{"?kind=refused&maxResults=0", 400, `maxResults must be a whole number from 1 to 1000, got \"0\"`},
		{"?kind=refused&maxResults=1001", 400, "maxResults must be a whole number from 1 to 1000"},
		{"?kind=refused&maxResults=x", 400, "maxResults must be a whole number from 1 to 1000"},
		{"?kind=refused&limit=5", 400, `unknown query parameter \"limit\"; GET /@log takes kind and maxResults`},
	} {
		for _, prefix := range []string{"", "/prod"} {
			status, typ, body := inspectCall(s, "GET", prefix+"/@log"+tc.query)
			if status != tc.status {
				t.Errorf("GET %s/@log%s: %d %s, want %d", prefix, tc.query, status, body, tc.status)
				continue
			}
			if status == 200 && body != tc.body {
				t.Errorf("GET %s/@log%s:\n got %s\nwant %s", prefix, tc.query, body, tc.body)
			}
			if status == 400 && (typ != "BadRequestException" || !strings.Contains(body, tc.body)) {
				t.Errorf("GET %s/@log%s: %s %s, want a BadRequestException saying %s", prefix, tc.query, typ, body, tc.body)
			}
		}
	}
	if status, _, body := inspectCall(s, "GET", "/@log?kind=refused&maxResults=1000"); status != 200 || strings.Count(body, `"status":429`) != 5 {
		t.Errorf("every entry: %d %s", status, body)
	}
	// An empty log is an empty list, not null.
	s2, _, _ := inspectServer(t, false)
	if _, _, body := inspectCall(s2, "GET", "/@log?kind=authorizer"); body != `{"items":[]}` {
		t.Errorf("empty log: %s", body)
	}
}

func TestTailCallsOff(t *testing.T) {
	s, _, _ := inspectServer(t, false, "c1")
	for _, method := range []string{"PUT", "GET", "DELETE"} {
		for _, id := range []string{"c1", "unknown"} {
			status, typ, body := inspectCall(s, method, "/@connections/"+id+"/tail")
			if method == "DELETE" {
				// Stopping is harmless: nothing is open.
				if status != 204 {
					t.Errorf("%s %s: %d %s", method, id, status, body)
				}
				continue
			}
			if status != 403 || typ != "ForbiddenException" || body != `{"message":"message tails are off; set management.message_tail: true"}` {
				t.Errorf("%s %s with tails off: %d %s %s", method, id, status, typ, body)
			}
		}
	}
}

func TestTailCalls(t *testing.T) {
	ids := []string{"c0"}
	for i := 1; i <= inspect.MaxTails; i++ {
		ids = append(ids, fmt.Sprintf("c%d", i))
	}
	s, _, conns := inspectServer(t, true, ids...)
	c0 := conns["c0"]

	expect := func(method, path string, status int, typ, body string) string {
		t.Helper()
		gotStatus, gotType, gotBody := inspectCall(s, method, path)
		if gotStatus != status || gotType != typ || (body != "" && !strings.Contains(gotBody, body)) {
			t.Fatalf("%s %s: %d %q %s; want %d %q %s", method, path, gotStatus, gotType, gotBody, status, typ, body)
		}
		return gotBody
	}
	noTail := `{"message":"no tail is open on this connection; PUT /@connections/{id}/tail starts one"}`
	gone := `{"message":"The connection with the provided id no longer exists"}`

	expect("GET", "/@connections/c0/tail", 404, "NotFoundException", noTail)
	expect("PUT", "/@connections/gone/tail", 410, "GoneException", gone)
	expect("GET", "/@connections/gone/tail", 410, "GoneException", gone)
	expect("DELETE", "/@connections/gone/tail", 204, "", "")

	expect("PUT", "/prod/@connections/c0/tail", 204, "", "")
	c0.message(false, `{"action":"login","password":"hunter2"}`)
	c0.message(true, `Bearer abc.def`)
	body := expect("GET", "/@connections/c0/tail", 200, "", "")
	var page struct {
		Items []struct {
			Seq       uint64 `json:"seq"`
			Time      string `json:"time"`
			Direction string `json:"direction"`
			Data      string `json:"data"`
			Bytes     int    `json:"bytes"`
			Truncated bool   `json:"truncated"`
			Binary    bool   `json:"binary"`
		} `json:"items"`
		Next    uint64 `json:"next"`
		Dropped uint64 `json:"dropped"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Next != 2 || page.Dropped != 0 ||
		page.Items[0].Direction != "in" || page.Items[0].Data != `{"action":"login","password":"[redacted]"}` || page.Items[0].Bytes != 39 ||
		page.Items[1].Direction != "out" || page.Items[1].Data != "[redacted]" || page.Items[1].Seq != 2 {
		t.Fatalf("tail: %s", body)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", page.Items[0].Time); err != nil {
		t.Errorf("time %q: %v", page.Items[0].Time, err)
	}
	if strings.Contains(body, "hunter2") || strings.Contains(body, "abc.def") {
		t.Fatalf("a secret in the tail: %s", body)
	}
	expect("GET", "/@connections/c0/tail?after=2", 200, "", `{"items":[],"next":2,"dropped":0}`)
	for _, q := range []string{"after=-1", "after=x", "after=", "after=1&after=2", "from=1"} {
		expect("GET", "/@connections/c0/tail?"+q, 400, "BadRequestException", "")
	}

	// The node's 65th tail is one too many; extending one is not.
	for i := 1; i < inspect.MaxTails; i++ {
		expect("PUT", fmt.Sprintf("/@connections/c%d/tail", i), 204, "", "")
	}
	expect("PUT", fmt.Sprintf("/@connections/c%d/tail", inspect.MaxTails), 429, "LimitExceededException", "most message tails open (64)")
	expect("PUT", "/@connections/c0/tail", 204, "", "")
	expect("DELETE", "/@connections/c1/tail", 204, "", "")
	expect("PUT", fmt.Sprintf("/@connections/c%d/tail", inspect.MaxTails), 204, "", "")

	expect("DELETE", "/@connections/c0/tail", 204, "", "")
	expect("DELETE", "/@connections/c0/tail", 204, "", "")
	expect("GET", "/@connections/c0/tail", 404, "NotFoundException", noTail)
	if c0.tap.Load() != nil {
		t.Fatal("a stopped tail is still set on its connection")
	}
}

func TestInspectorOperations(t *testing.T) {
	s, _, _ := inspectServer(t, true, "c1")
	for _, tc := range []struct{ method, path, op string }{
		{"GET", "/@log?kind=refused", "GetLog"},
		{"GET", "/prod/@log", "GetLog"},
		{"PUT", "/@connections/c1/tail", "StartTail"},
		{"GET", "/prod/@connections/c1/tail", "GetTail"},
		{"DELETE", "/@connections/c1/tail", "StopTail"},
		{"POST", "/@connections/c1/tail", "Unknown"},
	} {
		if got := s.operation(httptest.NewRequest(tc.method, tc.path, nil)); got != tc.op {
			t.Errorf("%s %s: operation %s, want %s", tc.method, tc.path, got, tc.op)
		}
	}
	if status, typ, _ := inspectCall(s, "POST", "/@connections/c1/tail"); status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
		t.Errorf("POST tail: %d %s", status, typ)
	}
}
