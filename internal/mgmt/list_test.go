package mgmt

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/registry"
)

func TestListQuery(t *testing.T) {
	tok := nextToken(registry.ListQuery{PrincipalID: "alice", Topic: "a/b"}, "id:c1")
	for _, tc := range []struct {
		query string
		want  registry.ListQuery
		err   string // part of the BadRequestException's message; "" for none
	}{
		{"", registry.ListQuery{Limit: 100}, ""},
		{"principal=alice&topic=a/b&node=n1&maxResults=1000", registry.ListQuery{PrincipalID: "alice", Topic: "a/b", NodeID: "n1", Limit: 1000}, ""},
		{"limit=1", registry.ListQuery{Limit: 1}, ""},
		{"principal=alice&topic=a/b&nextToken=" + tok, registry.ListQuery{PrincipalID: "alice", Topic: "a/b", Limit: 100, Cursor: "id:c1"}, ""},
		{"user=alice", registry.ListQuery{}, `unknown query parameter "user"`},
		{"principal=a&principal=b", registry.ListQuery{}, `"principal" is given 2 times`},
		{"principal=", registry.ListQuery{}, "principal is empty"},
		{"node=", registry.ListQuery{}, "node is empty"},
		{"topic=a//b", registry.ListQuery{}, "topic"},
		{"maxResults=0", registry.ListQuery{}, "maxResults must be a whole number from 1 to 1000"},
		{"maxResults=1001", registry.ListQuery{}, "maxResults must be"},
		{"maxResults=ten", registry.ListQuery{}, "maxResults must be"},
		{"limit=-1", registry.ListQuery{}, "limit must be"},
		{"limit=5&maxResults=5", registry.ListQuery{}, "not both"},
		{"nextToken=", registry.ListQuery{}, "nextToken is not one"},
		{"nextToken=%%%", registry.ListQuery{}, "nextToken is not one"},
		{"nextToken=e30", registry.ListQuery{}, "nextToken is not one"}, // {}
		{"nextToken=" + tok, registry.ListQuery{}, "other filters"},
		{"principal=alice&topic=a/c&nextToken=" + tok, registry.ListQuery{}, "other filters"},
	} {
		q, perr := url.ParseQuery(tc.query)
		if perr != nil {
			// "%%%" does not parse as a query; the server gets it raw.
			q = url.Values{"nextToken": {"%%%"}}
		}
		got, err := listQuery(q)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("%q: %+v, %v; want %+v", tc.query, got, err, tc.want)
			}
			continue
		}
		e := asError(err)
		if e == nil || e.Status != http.StatusBadRequest || e.Type != "BadRequestException" || !strings.Contains(e.Message, tc.err) {
			t.Errorf("%q: %v, want a BadRequestException saying %q", tc.query, err, tc.err)
		}
	}
}

// TestListConnectionsErrors checks the AWS-style answers of refused
// listings, on a node whose registry is empty.
func TestListConnectionsErrors(t *testing.T) {
	node := newNode()
	s := New(Config{}, node, slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		query  string
		status int
		body   string
	}{
		{"", 200, `{"items":[]}`},
		{"?node=elsewhere&maxResults=3", 200, `{"items":[]}`},
		{"?nextToken=" + nextToken(registry.ListQuery{}, "nonsense"), 400,
			`{"message":"nextToken is not one that GET /@connections returned"}`},
		{"?foo=1", 400,
			`{"message":"unknown query parameter \"foo\"; GET /@connections takes principal, topic, node, maxResults and nextToken"}`},
	} {
		for _, prefix := range []string{"", "/prod"} {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", prefix+"/@connections"+tc.query, nil).WithContext(context.Background()))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tc.status || string(body) != tc.body {
				t.Errorf("GET %s/@connections%s: %d %s, want %d %s", prefix, tc.query, rec.Code, body, tc.status, tc.body)
			}
			if got := rec.Header()["X-Amzn-ErrorType"]; tc.status == 400 && (len(got) != 1 || got[0] != "BadRequestException") {
				t.Errorf("%s: X-Amzn-ErrorType %q", tc.query, got)
			}
			if tc.status == 200 && !json.Valid(body) {
				t.Errorf("%s: invalid JSON %s", tc.query, body)
			}
		}
	}
}
