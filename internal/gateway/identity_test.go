package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// valueAuthorizer is a REQUEST authorizer on a real HTTP server that decides
// by the credential it reads from the event, as an AWS authorizer function
// does: it allows the values in good, with that value as principalId, and
// denies every other. It counts its calls.
type valueAuthorizer struct {
	*httptest.Server
	good []string
	// read returns the credential in the event.
	read func(ev authorizerEvent) string

	mu    sync.Mutex
	calls int
}

// authorizerEvent is the part of the REQUEST authorizer event the tests
// read.
type authorizerEvent struct {
	Headers                         map[string]string   `json:"headers"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters"`
}

func newValueAuthorizer(t *testing.T, read func(authorizerEvent) string, good ...string) *valueAuthorizer {
	a := &valueAuthorizer{good: good, read: read}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev authorizerEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.calls++
		a.mu.Unlock()
		v := a.read(ev)
		effect := "Deny"
		if slices.Contains(a.good, v) {
			effect = "Allow"
		}
		principal, _ := json.Marshal(v)
		fmt.Fprintf(w, `{"principalId":%s,"policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":%q,"Resource":"*"}]}}`, principal, effect)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *valueAuthorizer) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// lastCookie returns the last cookie named name in a Cookie header value.
func lastCookie(header, name string) string {
	cs := (&http.Request{Header: http.Header{"Cookie": {header}}}).CookiesNamed(name)
	if len(cs) == 0 {
		return ""
	}
	return cs[len(cs)-1].Value
}

// TestRepeatedIdentitySourceCannotPoisonTheCache: when the client repeats
// the identity source (?Auth=x&Auth=y, two X-Auth headers, two session
// cookies), the 401 check, the value the authorizer decides on, the cache
// key and the $connect event agree, so the decision taken for one list of
// values is never served for another: the decision of the authorizer for
// ?Auth=good&Auth=bad is not served to ?Auth=good, nor that of
// ?Auth=bad&Auth=good to ?Auth=bad.
func TestRepeatedIdentitySourceCannotPoisonTheCache(t *testing.T) {
	type kind struct {
		name   string
		source string
		read   func(authorizerEvent) string
		// dial returns the URL suffix and the options that send values.
		dial func(values []string) (string, *websocket.DialOptions)
		// connectValue reads the credential from the $connect event.
		connectValue func(ev gt.Event) string
	}
	kinds := []kind{
		{
			name:   "query",
			source: "route.request.querystring.Auth",
			read:   func(ev authorizerEvent) string { return ev.QueryStringParameters["Auth"] },
			dial: func(values []string) (string, *websocket.DialOptions) {
				q := url.Values{"Auth": values}
				return "?" + q.Encode(), nil
			},
			connectValue: func(ev gt.Event) string { return ev.QueryStringParameters["Auth"] },
		},
		{
			name:   "header",
			source: "route.request.header.X-Auth",
			read:   func(ev authorizerEvent) string { return ev.Headers["X-Auth"] },
			dial: func(values []string) (string, *websocket.DialOptions) {
				return "", &websocket.DialOptions{HTTPHeader: http.Header{"X-Auth": values}}
			},
			connectValue: func(ev gt.Event) string { return ev.Headers["X-Auth"] },
		},
		{
			name:   "cookie",
			source: "route.request.cookie.session",
			read:   func(ev authorizerEvent) string { return lastCookie(ev.Headers["Cookie"], "session") },
			dial: func(values []string) (string, *websocket.DialOptions) {
				var parts []string
				for _, v := range values {
					parts = append(parts, "session="+v)
				}
				return "", &websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {strings.Join(parts, "; ")}}}
			},
			connectValue: func(ev gt.Event) string { return lastCookie(ev.Headers["Cookie"], "session") },
		},
		{
			name:   "cookie in separate header lines",
			source: "route.request.cookie.session",
			read:   func(ev authorizerEvent) string { return lastCookie(ev.Headers["Cookie"], "session") },
			dial: func(values []string) (string, *websocket.DialOptions) {
				h := http.Header{}
				for _, v := range values {
					h.Add("Cookie", "session="+v)
					h.Add("Cookie", "theme=dark")
				}
				return "", &websocket.DialOptions{HTTPHeader: h}
			},
			connectValue: func(ev gt.Event) string { return lastCookie(ev.Headers["Cookie"], "session") },
		},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			authz := newValueAuthorizer(t, k.read, "good-x", "good-z")
			b := gt.NewBackend(t)
			g := gt.Start(t, fmt.Sprintf(`
origins: ["https://app.example.com"]
authorizer:
  type: request
  identity_sources: [%s]
  cache_ttl: 1h
  request: {url: %q}
routes:
  $connect: {integration: {type: http, url: %q}}
`, k.source, authz.URL, b.URLFor("/connect")))

			steps := []struct {
				values    []string
				want      int
				principal string // of an accepted connection
				asks      bool   // the authorizer is called
			}{
				{[]string{"good-x", "bad-y"}, 403, "", true},
				{[]string{"good-x"}, 101, "good-x", true},
				{[]string{"bad-y", "good-x"}, 101, "good-x", true},
				{[]string{"bad-y"}, 403, "", true},
				// The same lists again come from the cache.
				{[]string{"good-x", "bad-y"}, 403, "", false},
				{[]string{"bad-y", "good-x"}, 101, "good-x", false},
				{[]string{"good-x"}, 101, "good-x", false},
				// Another order of the same values is another decision.
				{[]string{"good-z", "good-x"}, 101, "good-x", true},
				{[]string{"good-x", "good-z"}, 101, "good-z", true},
				// The value that counts is the last one: it must not be empty.
				{[]string{"good-x", ""}, 401, "", false},
				{[]string{"", "good-x"}, 101, "good-x", true},
			}
			for _, st := range steps {
				suffix, opts := k.dial(st.values)
				if opts == nil {
					opts = &websocket.DialOptions{}
				}
				if opts.HTTPHeader == nil {
					opts.HTTPHeader = http.Header{}
				}
				opts.HTTPHeader.Set("Origin", "https://app.example.com")
				before, connects := authz.Calls(), len(b.Events("/connect"))
				got := dialStatus(g.URL+suffix, opts)
				if got != st.want {
					t.Fatalf("%q: status %d, want %d", st.values, got, st.want)
				}
				if asked := authz.Calls() - before; asked != map[bool]int{true: 1, false: 0}[st.asks] {
					t.Fatalf("%q: the authorizer was called %d times, want called = %v", st.values, asked, st.asks)
				}
				if st.want != 101 {
					continue
				}
				evs := b.Events("/connect")
				if len(evs) != connects+1 {
					t.Fatalf("%q: %d $connect events, want %d", st.values, len(evs), connects+1)
				}
				ev := evs[len(evs)-1]
				authorizer, _ := ev.RequestContext.Authorizer.(map[string]any)
				if authorizer["principalId"] != st.principal {
					t.Errorf("%q: principalId %v, want %q", st.values, authorizer["principalId"], st.principal)
				}
				if v := k.connectValue(ev); v != st.principal {
					t.Errorf("%q: the $connect event shows %q, the connection is %q", st.values, v, st.principal)
				}
			}
			if logs := g.Logs.String(); strings.Contains(logs, "good-x") || strings.Contains(logs, "good-z") {
				t.Errorf("a credential reached the log")
			}
		})
	}
}

// TestIdentitySourcesCannotShareACacheKey: two sources whose values split
// differently (A="x\x00y", B="z" and A="x", B="y\x00z") are different
// credentials and get their own decisions.
func TestIdentitySourcesCannotShareACacheKey(t *testing.T) {
	authz := newValueAuthorizer(t, func(ev authorizerEvent) string {
		return ev.QueryStringParameters["A"] + "|" + ev.QueryStringParameters["B"]
	}, "x\x00y|z")
	g := gt.Start(t, fmt.Sprintf(`
authorizer:
  type: request
  identity_sources: [route.request.querystring.A, route.request.querystring.B]
  cache_ttl: 1h
  request: {url: %q}
`, authz.URL))
	if got := dialStatus(g.URL+"?A=x%00y&B=z", nil); got != 101 {
		t.Fatalf("A=x%%00y&B=z: status %d, want 101", got)
	}
	if got := dialStatus(g.URL+"?A=x&B=y%00z", nil); got != 403 {
		t.Fatalf("A=x&B=y%%00z: status %d, want 403 (its own decision)", got)
	}
	if n := authz.Calls(); n != 2 {
		t.Fatalf("the authorizer was called %d times, want once for each credential", n)
	}
}

// TestRepeatedIdentitySourceInEvents: the $connect event and the authorizer
// event show a repeated query parameter and header as AWS does, the last
// value in the single-valued map and every value, in order, in the
// multi-valued one; several Cookie lines are one Cookie header.
func TestRepeatedIdentitySourceInEvents(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []authorizerEvent
	)
	authz := newValueAuthorizer(t, func(ev authorizerEvent) string {
		mu.Lock()
		seen = append(seen, ev)
		mu.Unlock()
		return ev.QueryStringParameters["Auth"]
	}, "b")
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
authorizer:
  type: request
  identity_sources: [route.request.querystring.Auth, route.request.header.X-Key]
  request: {url: %q}
routes:
  $connect: {integration: {type: http, url: %q}}
`, authz.URL, b.URLFor("/connect")))
	h := http.Header{"X-Key": {"k1", "k2"}, "Cookie": {"a=1; s=x", "s=y"}}
	if got := dialStatus(g.URL+"?Auth=a&Auth=b&other=1", &websocket.DialOptions{HTTPHeader: h}); got != 101 {
		t.Fatalf("status %d, want 101", got)
	}
	connect := b.WaitEvent(t, "/connect", nil)
	mu.Lock()
	ae := seen[0]
	mu.Unlock()
	events := map[string]authorizerEvent{
		"authorizer": ae,
		"$connect": {
			Headers: connect.Headers, MultiValueHeaders: connect.MultiValueHeaders,
			QueryStringParameters: connect.QueryStringParameters, MultiValueQueryStringParameters: connect.MultiValueQueryStringParameters,
		},
	}
	for name, ev := range events {
		if ev.QueryStringParameters["Auth"] != "b" || !slices.Equal(ev.MultiValueQueryStringParameters["Auth"], []string{"a", "b"}) {
			t.Errorf("%s event: Auth %q / %q, want \"b\" / [a b]", name, ev.QueryStringParameters["Auth"], ev.MultiValueQueryStringParameters["Auth"])
		}
		if ev.Headers["X-Key"] != "k2" || !slices.Equal(ev.MultiValueHeaders["X-Key"], []string{"k1", "k2"}) {
			t.Errorf("%s event: X-Key %q / %q, want \"k2\" / [k1 k2]", name, ev.Headers["X-Key"], ev.MultiValueHeaders["X-Key"])
		}
		if ev.Headers["Cookie"] != "a=1; s=x; s=y" || !slices.Equal(ev.MultiValueHeaders["Cookie"], []string{"a=1; s=x", "s=y"}) {
			t.Errorf("%s event: Cookie %q / %q, want the lines joined with \"; \" / each line", name, ev.Headers["Cookie"], ev.MultiValueHeaders["Cookie"])
		}
	}
	authorizer, _ := connect.RequestContext.Authorizer.(map[string]any)
	if authorizer["principalId"] != "b" {
		t.Errorf("principalId %v, want the last Auth value", authorizer["principalId"])
	}
}
