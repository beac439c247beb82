package mgmt

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/registry"
)

func TestTopicsQuery(t *testing.T) {
	tok := encodeToken(topicsToken{After: "orders/42", Prefix: "orders/"})
	bare := encodeToken(topicsToken{After: "a"})
	for _, tc := range []struct {
		query string
		want  cluster.TopicQuery
		err   string // the BadRequestException's message; "" for none
	}{
		{"", cluster.TopicQuery{Limit: 100}, ""},
		{"prefix=orders/&maxResults=1000", cluster.TopicQuery{Prefix: "orders/", Limit: 1000}, ""},
		{"maxResults=1", cluster.TopicQuery{Limit: 1}, ""},
		{"prefix=orders/&nextToken=" + tok, cluster.TopicQuery{Prefix: "orders/", After: "orders/42", Limit: 100}, ""},
		{"nextToken=" + bare, cluster.TopicQuery{After: "a", Limit: 100}, ""},
		{"topic=a", cluster.TopicQuery{}, `unknown query parameter "topic"; GET /@topics takes prefix, maxResults and nextToken`},
		{"limit=5", cluster.TopicQuery{}, `unknown query parameter "limit"; GET /@topics takes prefix, maxResults and nextToken`},
		{"prefix=a&prefix=b", cluster.TopicQuery{}, `query parameter "prefix" is given 2 times; give it once`},
		{"prefix=", cluster.TopicQuery{}, "prefix is empty; leave it out to list topics of any name"},
		{"prefix=" + strings.Repeat("a", 257), cluster.TopicQuery{}, "prefix is 257 bytes; at most 256 are allowed"},
		{"prefix=%FF", cluster.TopicQuery{}, "prefix is not valid UTF-8"},
		{"prefix=a%07", cluster.TopicQuery{}, "prefix holds the unprintable character U+0007"},
		{"maxResults=0", cluster.TopicQuery{}, `maxResults must be a whole number from 1 to 1000, got "0"`},
		{"maxResults=1001", cluster.TopicQuery{}, `maxResults must be a whole number from 1 to 1000, got "1001"`},
		{"maxResults=ten", cluster.TopicQuery{}, `maxResults must be a whole number from 1 to 1000, got "ten"`},
		{"maxResults=", cluster.TopicQuery{}, `maxResults must be a whole number from 1 to 1000, got ""`},
		{"nextToken=", cluster.TopicQuery{}, "nextToken is not one that GET /@topics returned"},
		{"nextToken=%%%", cluster.TopicQuery{}, "nextToken is not one that GET /@topics returned"},
		{"nextToken=e30", cluster.TopicQuery{}, "nextToken is not one that GET /@topics returned"}, // {}
		{"nextToken=" + encodeToken(topicsToken{After: "a//b"}), cluster.TopicQuery{}, "nextToken is not one that GET /@topics returned"},
		{"nextToken=" + nextToken(registry.ListQuery{PrincipalID: "alice"}, "id:c1"), cluster.TopicQuery{}, "nextToken is not one that GET /@topics returned"},
		{"nextToken=" + tok, cluster.TopicQuery{}, "nextToken was returned for another prefix; repeat the prefix of the call that returned it"},
		{"prefix=order&nextToken=" + tok, cluster.TopicQuery{}, "nextToken was returned for another prefix; repeat the prefix of the call that returned it"},
		{"prefix=a&nextToken=" + bare, cluster.TopicQuery{}, "nextToken was returned for another prefix; repeat the prefix of the call that returned it"},
	} {
		q, perr := url.ParseQuery(tc.query)
		if perr != nil {
			// "%%%" does not parse as a query; the server gets it raw.
			q = url.Values{"nextToken": {"%%%"}}
		}
		got, err := topicsQuery(q)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("%q: %+v, %v; want %+v", tc.query, got, err, tc.want)
			}
			continue
		}
		e := asError(err)
		if e == nil || e.Status != http.StatusBadRequest || e.Type != "BadRequestException" || e.Message != tc.err {
			t.Errorf("%q: %v, want a BadRequestException %q", tc.query, err, tc.err)
		}
	}
}

// TestInspectCalls checks GET /@nodes and GET /@topics on a node alone on
// its engine, with and without the stage prefix, and their refusals.
func TestInspectCalls(t *testing.T) {
	s := New(Config{}, newNode(), slog.New(slog.DiscardHandler))
	for _, prefix := range []string{"", "/prod"} {
		for _, tc := range []struct {
			path   string
			status int
			body   string // the whole body; "" when checked below
		}{
			{"/@topics", 200, `{"items":[]}`},
			{"/@topics?prefix=a&maxResults=5", 200, `{"items":[]}`},
			{"/@topics?maxResults=0", 400, `{"message":"maxResults must be a whole number from 1 to 1000, got \"0\""}`},
			{"/@topics?nextToken=bm9wZQ", 400, `{"message":"nextToken is not one that GET /@topics returned"}`},
			{"/@nodes?verbose=1", 400, `{"message":"unknown query parameter \"verbose\"; GET /@nodes takes none"}`},
			{"/@nodes", 200, ""},
		} {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", prefix+tc.path, nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tc.status || tc.body != "" && string(body) != tc.body {
				t.Errorf("GET %s%s: %d %s, want %d %s", prefix, tc.path, rec.Code, body, tc.status, tc.body)
			}
			if got := rec.Header()["X-Amzn-ErrorType"]; tc.status == 400 && (len(got) != 1 || got[0] != "BadRequestException") {
				t.Errorf("GET %s%s: X-Amzn-ErrorType %q", prefix, tc.path, got)
			}
			if tc.body != "" {
				continue
			}
			var out struct {
				At    string
				Nodes []map[string]any
			}
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatalf("GET %s%s: %v in %s", prefix, tc.path, err, body)
			}
			if len(out.At) != len("2026-12-06T03:56:01.161Z") || len(out.Nodes) != 1 {
				t.Fatalf("GET %s%s: %s, want the time and the one node", prefix, tc.path, body)
			}
			n := out.Nodes[0]
			// Not started: no heartbeat yet, so no age.
			if n["nodeId"] != "n1" || n["self"] != true || n["reachable"] != true || n["connections"] != 0.0 ||
				n["subscriptions"] != 0.0 || n["messagesReceived"] != 0.0 || n["messagesSent"] != 0.0 ||
				n["startedAt"] == nil || n["heartbeatAgeMs"] != nil {
				t.Fatalf("GET %s%s: node %v", prefix, tc.path, n)
			}
		}
	}
	for _, method := range []string{"POST", "DELETE", "PUT"} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(method, "/@nodes", nil))
		if rec.Code != 404 {
			t.Errorf("%s /@nodes: %d, want 404", method, rec.Code)
		}
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(method, "/@topics", nil))
		if rec.Code != 404 {
			t.Errorf("%s /@topics: %d, want 404", method, rec.Code)
		}
	}
}

func TestUnreachableNodeError(t *testing.T) {
	e := asError(&cluster.UnreachableError{NodeID: "gw-2"})
	if e == nil || e.Status != 503 || e.Type != "ServiceUnavailableException" ||
		e.Message != "Node gw-2 did not answer within 1s; the answer would be incomplete without it. Retry later" {
		t.Fatalf("%+v", e)
	}
}
