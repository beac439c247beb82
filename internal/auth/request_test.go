package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/config"
)

// testArn is the methodArn of testAPI with the default region and account.
const testArn = "arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect"

var testAPI = auth.API{APIID: "local", Stage: "prod"}

// authorizerServer is an HTTP authorizer that answers every POST with the
// status and body a test sets, and remembers the last request.
type authorizerServer struct {
	*httptest.Server

	mu     sync.Mutex
	status int
	body   string
	got    *http.Request
	event  []byte
}

func newAuthorizerServer(t *testing.T) *authorizerServer {
	t.Helper()
	s := &authorizerServer{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got, s.event = r, body
		status, answer := s.status, s.body
		s.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *authorizerServer) answer(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *authorizerServer) lastEvent() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.event
}

func (s *authorizerServer) lastRequest() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// policy returns an authorizer answer with one statement.
func policy(effect, action, resource string) string {
	return `{"principalId":"user","policyDocument":{"Version":"2012-10-17","Statement":[` +
		`{"Action":"` + action + `","Effect":"` + effect + `","Resource":"` + resource + `"}]}}`
}

func allow(resource string) string { return policy("Allow", "execute-api:Invoke", resource) }

func testRequest() *auth.Request {
	return &auth.Request{
		ConnectionID: "L0SM9cOFvHcCIhw=",
		Header:       http.Header{"Authorization": {"Bearer s3cret-token"}},
		Host:         "localhost:8080",
		SourceIP:     "203.0.113.7",
		Time:         time.UnixMilli(1674162806344),
	}
}

func TestRequestMethodArn(t *testing.T) {
	for _, tc := range []struct {
		cfg  config.RequestAuth
		api  auth.API
		want string
	}{
		{config.RequestAuth{}, auth.API{APIID: "local"}, "arn:aws:execute-api:us-east-1:000000000000:local/$default/$connect"},
		{config.RequestAuth{}, testAPI, testArn},
		{
			config.RequestAuth{Region: "eu-west-1", AccountID: "123456789012"},
			auth.API{APIID: "abcdef123", Stage: "default"},
			"arn:aws:execute-api:eu-west-1:123456789012:abcdef123/default/$connect",
		},
	} {
		if got := auth.NewRequest(tc.cfg, tc.api, nil).MethodArn(); got != tc.want {
			t.Errorf("MethodArn(%+v, %+v) = %q, want %q", tc.cfg, tc.api, got, tc.want)
		}
	}
}

func TestRequestAuthorize(t *testing.T) {
	srv := newAuthorizerServer(t)
	const fullPolicy = `{"principalId":"user-1","policyDocument":{"Version":"2012-10-17","Statement":[` +
		`{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"` + testArn + `"}]},` +
		`"context":{"stringKey":"value","numberKey":123,"booleanKey":true,"float":1.5e3},` +
		`"usageIdentifierKey":"api-key-1"}`
	for _, tc := range []struct {
		name   string
		api    *auth.API // nil means testAPI
		status int       // 0 means 200
		body   string
		want   int // 0 means allowed; otherwise the Denial status
		reason string
	}{
		// Allowed.
		{name: "allow exact arn", body: allow(testArn)},
		{name: "allow api wildcard", body: allow("arn:aws:execute-api:us-east-1:000000000000:local/*")},
		{name: "allow any stage", body: allow("arn:aws:execute-api:us-east-1:000000000000:local/*/$connect")},
		{name: "allow star", body: allow("*")},
		{name: "allow region and account wildcards", body: allow("arn:aws:execute-api:*:*:*")},
		{name: "allow question marks", body: allow("arn:aws:execute-api:us-east-?:000000000000:local/pro?/$connect")},
		{name: "allow effect in lower case", body: policy("allow", "execute-api:Invoke", testArn)},
		{name: "allow action wildcard", body: policy("Allow", "execute-api:*", testArn)},
		{name: "allow action star", body: policy("Allow", "*", testArn)},
		{name: "allow action in other case", body: policy("Allow", "Execute-API:invoke", testArn)},
		{name: "allow action and resource lists", body: `{"principalId":"u","policyDocument":{"Statement":[{"Effect":"Allow",` +
			`"Action":["execute-api:ManageConnections","execute-api:Invoke"],"Resource":["arn:aws:execute-api:us-east-1:000000000000:other/*","` + testArn + `"]}]}}`},
		{name: "allow single statement object", body: `{"principalId":"u","policyDocument":{"Statement":` +
			`{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"` + testArn + `"}}}`},
		{name: "allow with NotAction", body: `{"principalId":"u","policyDocument":{"Statement":[` +
			`{"Effect":"Allow","NotAction":"execute-api:ManageConnections","Resource":"*"}]}}`},
		{name: "deny on another resource does not apply", body: `{"principalId":"u","policyDocument":{"Statement":[` +
			`{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"},` +
			`{"Effect":"Deny","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:us-east-1:000000000000:local/dev/*"}]}}`},
		{name: "answer padded to exactly 8 KB", body: allow(testArn) + strings.Repeat(" ", 8192-len(allow(testArn)))},
		{name: "any 2xx status", status: http.StatusCreated, body: allow(testArn)},
		{name: "null context", body: `{"principalId":"u","context":null,"policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`},

		// 403.
		{name: "powertools pitfall", body: allow("arn:aws:execute-api:us-east-1:000000000000:local/prod/*/*"), want: 403, reason: "no policy statement allows"},
		{name: "other stage", body: allow("arn:aws:execute-api:us-east-1:000000000000:local/dev/$connect"), want: 403},
		{name: "other account", body: allow("arn:aws:execute-api:us-east-1:111111111111:local/prod/$connect"), want: 403},
		{name: "resource is case-sensitive", body: allow("arn:aws:execute-api:us-east-1:000000000000:LOCAL/prod/$connect"), want: 403},
		{name: "deny", body: policy("Deny", "execute-api:Invoke", testArn), want: 403, reason: "policy denies"},
		{name: "deny in upper case", body: policy("DENY", "execute-api:Invoke", "*"), want: 403, reason: "policy denies"},
		{name: "allow and deny", body: `{"principalId":"u","policyDocument":{"Statement":[` +
			`{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"` + testArn + `"},` +
			`{"Effect":"Deny","Action":"execute-api:*","Resource":"arn:aws:execute-api:us-east-1:000000000000:local/*"}]}}`, want: 403, reason: "policy denies"},
		{name: "deny before allow", body: `{"principalId":"u","policyDocument":{"Statement":[` +
			`{"Effect":"Deny","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"*","Resource":"*"}]}}`, want: 403, reason: "policy denies"},
		{name: "deny with NotResource", body: `{"principalId":"u","policyDocument":{"Statement":[` +
			`{"Effect":"Allow","Action":"*","Resource":"*"},` +
			`{"Effect":"Deny","Action":"*","NotResource":"arn:aws:execute-api:us-east-1:000000000000:local/dev/*"}]}}`, want: 403, reason: "policy denies"},
		{name: "no statements", body: `{"principalId":"u","policyDocument":{"Version":"2012-10-17","Statement":[]}}`, want: 403},
		{name: "no policy document", body: `{"principalId":"u"}`, want: 403},
		{name: "wrong action", body: policy("Allow", "execute-api:ManageConnections", testArn), want: 403},
		{name: "action of another service", body: policy("Allow", "s3:*", testArn), want: 403},
		{name: "principalId missing", body: `{"policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`, want: 403, reason: "principalId"},
		{name: "principalId empty", body: `{"principalId":"","policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`, want: 403, reason: "principalId"},
		{name: "principalId null", body: `{"principalId":null,"policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`, want: 403, reason: "principalId"},
		{name: "powertools pitfall on the default stage", api: &auth.API{APIID: "local"},
			body: allow("arn:aws:execute-api:us-east-1:000000000000:local/$default/*/*"), want: 403},

		// 401.
		{name: "HTTP 401", status: http.StatusUnauthorized, body: allow(testArn), want: 401},
		{name: "HTTP 401 without body", status: http.StatusUnauthorized, want: 401},
		{name: "body Unauthorized", body: "Unauthorized", want: 401},
		{name: "body Unauthorized with newline", body: "Unauthorized\n", want: 401},
		{name: "JSON string Unauthorized", body: `"Unauthorized"`, want: 401},
		{name: "message Unauthorized", body: `{"message":"Unauthorized"}`, want: 401},
		{name: "Lambda error Unauthorized", body: `{"errorMessage":"Unauthorized","errorType":"Error"}`, want: 401},
		{name: "Unauthorized with HTTP 500", status: http.StatusInternalServerError, body: `{"errorMessage":"Unauthorized"}`, want: 401},

		// 500.
		{name: "lower-case unauthorized", body: "unauthorized", want: 500, reason: "not a JSON object"},
		{name: "context object", body: `{"principalId":"u","context":{"ok":"x","nested":{"a":1}},"policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`,
			want: 500, reason: `context value "nested" is not a string, number or boolean`},
		{name: "context array", body: `{"principalId":"u","context":{"list":[1,2]},"policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`,
			want: 500, reason: `context value "list"`},
		{name: "context null value", body: `{"principalId":"u","context":{"nothing":null},"policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`,
			want: 500, reason: `context value "nothing"`},
		{name: "context not an object", body: `{"principalId":"u","context":"x","policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`,
			want: 500, reason: "context is not a JSON object"},
		{name: "context checked even when denied", body: `{"principalId":"u","context":{"o":{}},"policyDocument":{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}}`,
			want: 500, reason: "context value"},
		{name: "answer over 8 KB", body: allow(testArn) + strings.Repeat(" ", 8193-len(allow(testArn))), want: 500, reason: "larger than 8192 bytes"},
		{name: "malformed JSON", body: `{"principalId":"u",`, want: 500, reason: "malformed"},
		{name: "data after the object", body: allow(testArn) + `{}`, want: 500, reason: "malformed"},
		{name: "JSON array", body: `[]`, want: 500, reason: "not a JSON object"},
		{name: "empty body", body: ``, want: 500, reason: "not a JSON object"},
		{name: "principalId not a string", body: `{"principalId":42,"policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`, want: 500, reason: "principalId is not a string"},
		{name: "usageIdentifierKey not a string", body: `{"principalId":"u","usageIdentifierKey":1,"policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}}`, want: 500},
		{name: "Lambda function error", body: `{"errorMessage":"boom","errorType":"TypeError"}`, want: 500, reason: `errorType "TypeError"`},
		{name: "unknown effect", body: policy("Permit", "*", "*"), want: 500, reason: "neither Allow nor Deny"},
		{name: "statement without Resource", body: `{"principalId":"u","policyDocument":{"Statement":[{"Effect":"Allow","Action":"*"}]}}`, want: 500, reason: "Resource"},
		{name: "statement without Action", body: `{"principalId":"u","policyDocument":{"Statement":[{"Effect":"Allow","Resource":"*"}]}}`, want: 500, reason: "Action"},
		{name: "Resource not a string", body: `{"principalId":"u","policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":7}]}}`, want: 500, reason: "malformed"},
		{name: "statement with Condition", body: `{"principalId":"u","policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}}`,
			want: 500, reason: "Condition"},
		{name: "HTTP 500", status: http.StatusInternalServerError, body: allow(testArn), want: 500, reason: "HTTP 500"},
		{name: "HTTP 403", status: http.StatusForbidden, body: allow(testArn), want: 500, reason: "HTTP 403"},
		{name: "redirect is not followed", status: http.StatusFound, body: allow(testArn), want: 500, reason: "HTTP 302"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status := tc.status
			if status == 0 {
				status = http.StatusOK
			}
			srv.answer(status, tc.body)
			api := testAPI
			if tc.api != nil {
				api = *tc.api
			}
			a := auth.NewRequest(config.RequestAuth{URL: srv.URL, Timeout: 5 * time.Second}, api, nil)
			id, err := a.Authorize(context.Background(), testRequest())
			if tc.want == 0 {
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				if id == nil || id.PrincipalID == "" {
					t.Fatalf("identity = %+v", id)
				}
				return
			}
			var d *auth.Denial
			if !errors.As(err, &d) {
				t.Fatalf("Authorize = %+v, %v; want a %d denial", id, err, tc.want)
			}
			if d.Status != tc.want || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("denial = %d %q, want %d with a reason containing %q", d.Status, d.Reason, tc.want, tc.reason)
			}
			if id != nil {
				t.Errorf("identity %+v returned with a denial", id)
			}
			if strings.Contains(d.Reason, "s3cret") {
				t.Errorf("reason %q holds a credential", d.Reason)
			}
		})
	}

	t.Run("identity", func(t *testing.T) {
		srv.answer(http.StatusOK, fullPolicy)
		a := auth.NewRequest(config.RequestAuth{URL: srv.URL}, testAPI, nil)
		id, err := a.Authorize(context.Background(), testRequest())
		if err != nil {
			t.Fatal(err)
		}
		want := &auth.Identity{
			PrincipalID: "user-1",
			Context: map[string]any{
				"stringKey": "value", "numberKey": json.Number("123"), "booleanKey": true, "float": json.Number("1.5e3"),
			},
			UsageIdentifierKey: "api-key-1",
		}
		if !reflect.DeepEqual(id, want) {
			t.Errorf("identity = %#v\nwant %#v", id, want)
		}
	})
}

func TestRequestCall(t *testing.T) {
	srv := newAuthorizerServer(t)
	srv.answer(http.StatusOK, allow(testArn))
	cfg := config.RequestAuth{URL: srv.URL + "/authorize", Headers: map[string]string{"X-Shared-Secret": "abc"}}
	a := auth.NewRequest(cfg, testAPI, nil)
	if _, err := a.Authorize(context.Background(), testRequest()); err != nil {
		t.Fatal(err)
	}
	r := srv.lastRequest()
	if r.Method != http.MethodPost || r.URL.Path != "/authorize" {
		t.Errorf("request = %s %s, want POST /authorize", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.Header.Get("X-Shared-Secret"); got != "abc" {
		t.Errorf("X-Shared-Secret = %q", got)
	}
	if !json.Valid(srv.lastEvent()) {
		t.Errorf("event is not JSON: %s", srv.lastEvent())
	}
}

func TestRequestConcurrent(t *testing.T) {
	srv := newAuthorizerServer(t)
	srv.answer(http.StatusOK, allow(testArn))
	a := auth.NewRequest(config.RequestAuth{URL: srv.URL}, testAPI, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := a.Authorize(context.Background(), testRequest())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	released := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices the client hanging up only once the body has
		// been read.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		close(released)
	}))
	defer srv.Close()
	a := auth.NewRequest(config.RequestAuth{URL: srv.URL, Timeout: 50 * time.Millisecond}, testAPI, nil)
	_, err := a.Authorize(context.Background(), testRequest())
	d := auth.AsDenial(err)
	if d.Status != http.StatusInternalServerError || !strings.Contains(d.Reason, "did not answer within 50ms") {
		t.Fatalf("denial = %d %q, want 500 naming the timeout", d.Status, d.Reason)
	}
	// The call was abandoned, not left running.
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("the authorizer request is still open after Authorize returned")
	}
}

func TestRequestTimeoutReadingBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"principalId":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	a := auth.NewRequest(config.RequestAuth{URL: srv.URL, Timeout: 50 * time.Millisecond}, testAPI, nil)
	_, err := a.Authorize(context.Background(), testRequest())
	if d := auth.AsDenial(err); d.Status != http.StatusInternalServerError || !strings.Contains(d.Reason, "did not answer within") {
		t.Fatalf("denial = %d %q, want 500 naming the timeout", d.Status, d.Reason)
	}
}

func TestRequestCanceled(t *testing.T) {
	srv := newAuthorizerServer(t)
	srv.answer(http.StatusOK, allow(testArn))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := auth.NewRequest(config.RequestAuth{URL: srv.URL}, testAPI, nil)
	_, err := a.Authorize(ctx, testRequest())
	if d := auth.AsDenial(err); d.Status != http.StatusInternalServerError || !strings.Contains(d.Reason, "abandoned") {
		t.Fatalf("denial = %d %q, want 500 saying the call was abandoned", d.Status, d.Reason)
	}
}

func TestRequestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// The URL carries a credential, which must not reach the reason.
	u := "http://user:pa55word@" + addr + "/auth?token=s3cret"
	a := auth.NewRequest(config.RequestAuth{URL: u, Headers: map[string]string{"Authorization": "Bearer h3ader"}}, testAPI, nil)
	_, err = a.Authorize(context.Background(), testRequest())
	d := auth.AsDenial(err)
	if d.Status != http.StatusInternalServerError || !strings.Contains(d.Reason, "unreachable") {
		t.Fatalf("denial = %d %q, want 500 saying the authorizer is unreachable", d.Status, d.Reason)
	}
	for _, secret := range []string{"s3cret", "pa55word", "h3ader"} {
		if strings.Contains(d.Reason, secret) || strings.Contains(d.Error(), secret) {
			t.Errorf("reason %q holds %q", d.Reason, secret)
		}
	}
}

// guideEvent is the input to a WebSocket REQUEST authorizer in AWS's
// "Creating a Lambda REQUEST authorizer function" (reference §3.3).
const guideEvent = `{
    "type": "REQUEST",
    "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/default/$connect",
    "headers": {
        "Connection": "upgrade",
        "content-length": "0",
        "HeaderAuth1": "headerValue1",
        "Host": "abcdef123.execute-api.us-east-1.amazonaws.com",
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
        "Sec-WebSocket-Key": "...",
        "Sec-WebSocket-Version": "13",
        "Upgrade": "websocket",
        "X-Amzn-Trace-Id": "...",
        "X-Forwarded-For": "...",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https"
    },
    "multiValueHeaders": {
        "Connection": ["upgrade"],
        "content-length": ["0"],
        "HeaderAuth1": ["headerValue1"],
        "Host": ["abcdef123.execute-api.us-east-1.amazonaws.com"],
        "Sec-WebSocket-Extensions": ["permessage-deflate; client_max_window_bits"],
        "Sec-WebSocket-Key": ["..."],
        "Sec-WebSocket-Version": ["13"],
        "Upgrade": ["websocket"],
        "X-Amzn-Trace-Id": ["..."],
        "X-Forwarded-For": ["..."],
        "X-Forwarded-Port": ["443"],
        "X-Forwarded-Proto": ["https"]
    },
    "queryStringParameters": {
        "QueryString1": "queryValue1"
    },
    "multiValueQueryStringParameters": {
        "QueryString1": ["queryValue1"]
    },
    "stageVariables": {},
    "requestContext": {
        "routeKey": "$connect",
        "eventType": "CONNECT",
        "extendedRequestId": "...",
        "requestTime": "19/Jan/2023:21:13:26 +0000",
        "messageDirection": "IN",
        "stage": "default",
        "connectedAt": 1674162806344,
        "requestTimeEpoch": 1674162806345,
        "identity": {
            "sourceIp": "..."
        },
        "requestId": "...",
        "domainName": "abcdef123.execute-api.us-east-1.amazonaws.com",
        "connectionId": "...",
        "apiId": "abcdef123"
    }
}`

var clfPattern = regexp.MustCompile(`^[0-3][0-9]/[A-Z][a-z]{2}/[0-9]{4}:[0-2][0-9]:[0-5][0-9]:[0-5][0-9] \+0000$`)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sameShape checks that got has exactly want's keys, each holding a value of
// the same JSON type, recursing into objects.
func sameShape(t *testing.T, path string, got, want map[string]any) {
	t.Helper()
	if g, w := sortedKeys(got), sortedKeys(want); !slices.Equal(g, w) {
		t.Errorf("%s keys:\n got  %v\n want %v", path, g, w)
	}
	for k, wv := range want {
		gv, ok := got[k]
		if !ok {
			continue
		}
		if reflect.TypeOf(gv) != reflect.TypeOf(wv) {
			t.Errorf("%s.%s is a %T, want a %T", path, k, gv, wv)
			continue
		}
		if wm, ok := wv.(map[string]any); ok {
			sameShape(t, path+"."+k, gv.(map[string]any), wm)
		}
	}
}

func TestRequestEvent(t *testing.T) {
	var want map[string]any
	if err := json.Unmarshal([]byte(guideEvent), &want); err != nil {
		t.Fatal(err)
	}
	srv := newAuthorizerServer(t)
	srv.answer(http.StatusOK, allow("*"))
	a := auth.NewRequest(config.RequestAuth{URL: srv.URL, Region: "us-east-1", AccountID: "123456789012"},
		auth.API{APIID: "abcdef123", Stage: "default"}, nil)

	// The upgrade request as net/http presents it: canonical keys, Host
	// moved to Request.Host. HeaderAuth1 is stored as an edge that keeps the
	// client's spelling stores it. X-Forwarded-Port and X-Forwarded-Proto
	// are known only to the listener: the authorizer forwards them when the
	// edge puts them in Request.Header, as a TLS-terminating edge on port
	// 443 would here.
	h := http.Header{}
	h.Set("Connection", "upgrade")
	h.Set("Upgrade", "websocket")
	h.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
	h.Set("Sec-WebSocket-Key", "ElxPGSkjS67JEzN6/32V1A==")
	h.Set("Sec-WebSocket-Version", "13")
	h.Set("X-Forwarded-Port", "443")
	h.Set("X-Forwarded-Proto", "https")
	h["HeaderAuth1"] = []string{"headerValue1"}
	req := &auth.Request{
		ConnectionID: "L0SM9cOFvHcCIhw=",
		Header:       h,
		Query:        url.Values{"QueryString1": {"queryValue1"}},
		Host:         "abcdef123.execute-api.us-east-1.amazonaws.com",
		SourceIP:     "203.0.113.7",
		Time:         time.UnixMilli(1674162806344),
	}
	before := time.Now()
	if _, err := a.Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	var got map[string]any
	if err := json.Unmarshal(srv.lastEvent(), &got); err != nil {
		t.Fatalf("event: %v\n%s", err, srv.lastEvent())
	}
	sameShape(t, "event", got, want)

	for _, k := range []string{"type", "methodArn"} {
		if got[k] != want[k] {
			t.Errorf("%s = %v, want %v", k, got[k], want[k])
		}
	}
	headers, wantHeaders := got["headers"].(map[string]any), want["headers"].(map[string]any)
	for k, wv := range wantHeaders {
		if wv == "..." {
			continue
		}
		if headers[k] != wv {
			t.Errorf("headers[%q] = %v, want %v", k, headers[k], wv)
		}
	}
	for k, v := range map[string]string{"Sec-WebSocket-Key": "ElxPGSkjS67JEzN6/32V1A==", "X-Forwarded-For": "203.0.113.7"} {
		if headers[k] != v {
			t.Errorf("headers[%q] = %v, want %q", k, headers[k], v)
		}
	}
	if trace, _ := headers["X-Amzn-Trace-Id"].(string); !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$`).MatchString(trace) {
		t.Errorf("X-Amzn-Trace-Id = %q", trace)
	}
	multi := got["multiValueHeaders"].(map[string]any)
	for k, v := range headers {
		if vs, _ := multi[k].([]any); len(vs) != 1 || vs[0] != v {
			t.Errorf("multiValueHeaders[%q] = %v, headers[%q] = %v", k, multi[k], k, v)
		}
	}
	for _, k := range []string{"queryStringParameters", "multiValueQueryStringParameters", "stageVariables"} {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Errorf("%s = %v, want %v", k, got[k], want[k])
		}
	}

	rc, wantRC := got["requestContext"].(map[string]any), want["requestContext"].(map[string]any)
	for _, k := range []string{"routeKey", "eventType", "messageDirection", "stage", "connectedAt", "domainName", "apiId"} {
		if rc[k] != wantRC[k] {
			t.Errorf("requestContext.%s = %v, want %v", k, rc[k], wantRC[k])
		}
	}
	if rc["connectionId"] != req.ConnectionID || rc["identity"].(map[string]any)["sourceIp"] != req.SourceIP {
		t.Errorf("connectionId, sourceIp = %v, %v", rc["connectionId"], rc["identity"])
	}
	id, _ := rc["requestId"].(string)
	if len(id) != 16 || rc["extendedRequestId"] != id {
		t.Errorf("requestId, extendedRequestId = %v, %v; want one 16-character id", rc["requestId"], rc["extendedRequestId"])
	}
	if rt, _ := rc["requestTime"].(string); !clfPattern.MatchString(rt) {
		t.Errorf("requestTime = %q, want Common Log Format", rt)
	}
	if epoch, _ := rc["requestTimeEpoch"].(float64); int64(epoch) < before.UnixMilli() || int64(epoch) > after.UnixMilli() {
		t.Errorf("requestTimeEpoch = %v, want the time of the call", rc["requestTimeEpoch"])
	}

	// A Go authorizer decodes the event with aws-lambda-go.
	var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
	if err := json.Unmarshal(srv.lastEvent(), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "REQUEST" || ev.MethodArn != a.MethodArn() || ev.RequestContext.APIID != "abcdef123" ||
		ev.RequestContext.Stage != "default" || ev.RequestContext.Identity.SourceIP != req.SourceIP ||
		ev.Headers["HeaderAuth1"] != "headerValue1" || ev.QueryStringParameters["QueryString1"] != "queryValue1" {
		t.Errorf("decoded with aws-lambda-go: %+v", ev)
	}
}

func TestRequestEventValues(t *testing.T) {
	srv := newAuthorizerServer(t)
	srv.answer(http.StatusOK, allow("*"))
	a := auth.NewRequest(config.RequestAuth{URL: srv.URL}, auth.API{APIID: "local"}, nil)
	decode := func(req *auth.Request) map[string]any {
		t.Helper()
		if _, err := a.Authorize(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(srv.lastEvent(), &got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("no query string", func(t *testing.T) {
		got := decode(testRequest())
		for _, k := range []string{"queryStringParameters", "multiValueQueryStringParameters"} {
			if _, ok := got[k]; ok {
				t.Errorf("%s present without a query string: %v", k, got[k])
			}
		}
		if sv, ok := got["stageVariables"].(map[string]any); !ok || len(sv) != 0 {
			t.Errorf("stageVariables = %v, want {}", got["stageVariables"])
		}
		if got["requestContext"].(map[string]any)["stage"] != "$default" {
			t.Errorf("stage = %v, want $default", got["requestContext"].(map[string]any)["stage"])
		}
	})

	t.Run("repeated values", func(t *testing.T) {
		req := testRequest()
		req.Query = url.Values{"a": {"1", "2"}, "b": {"x"}}
		req.Header = http.Header{"Accept": {"text/html", "application/json"}, "X-Forwarded-For": {"198.51.100.1"}, "Content-Length": {"0"},
			"Cookie": {"s=1; t=2", "s=3"}}
		req.StageVariables = map[string]string{"env": "test"}
		got := decode(req)
		if q := got["queryStringParameters"]; !reflect.DeepEqual(q, map[string]any{"a": "2", "b": "x"}) {
			t.Errorf("queryStringParameters = %v, want the last value of each", q)
		}
		if q := got["multiValueQueryStringParameters"]; !reflect.DeepEqual(q, map[string]any{"a": []any{"1", "2"}, "b": []any{"x"}}) {
			t.Errorf("multiValueQueryStringParameters = %v", q)
		}
		headers := got["headers"].(map[string]any)
		if headers["Accept"] != "application/json" {
			t.Errorf("headers[Accept] = %v, want the last value", headers["Accept"])
		}
		if headers["Cookie"] != "s=1; t=2; s=3" {
			t.Errorf("headers[Cookie] = %v, want the lines joined with \"; \"", headers["Cookie"])
		}
		if mv := got["multiValueHeaders"].(map[string]any)["Accept"]; !reflect.DeepEqual(mv, []any{"text/html", "application/json"}) {
			t.Errorf("multiValueHeaders[Accept] = %v", mv)
		}
		if headers["X-Forwarded-For"] != "198.51.100.1, 203.0.113.7" {
			t.Errorf("X-Forwarded-For = %v, want the source IP appended", headers["X-Forwarded-For"])
		}
		if _, ok := headers["content-length"]; ok {
			t.Errorf("content-length added beside the request's Content-Length")
		}
		if headers["Authorization"] != nil {
			t.Errorf("headers hold a header the request did not have")
		}
		if !reflect.DeepEqual(got["stageVariables"], map[string]any{"env": "test"}) {
			t.Errorf("stageVariables = %v", got["stageVariables"])
		}
	})

	t.Run("fresh request id per call", func(t *testing.T) {
		id1 := decode(testRequest())["requestContext"].(map[string]any)["requestId"]
		id2 := decode(testRequest())["requestContext"].(map[string]any)["requestId"]
		if id1 == id2 {
			t.Errorf("two calls share requestId %v", id1)
		}
	})
}

func TestMatchResource(t *testing.T) {
	const arn = "arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect"
	for _, tc := range []struct {
		pattern, arn string
		want         bool
	}{
		{arn, arn, true},
		{"*", arn, true},
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"?", "", false},
		{"arn:aws:execute-api:us-east-1:000000000000:local/*", arn, true},
		{"arn:aws:execute-api:us-east-1:000000000000:local/*/$connect", arn, true},
		{"arn:aws:execute-api:*:*:*", arn, true},
		{"arn:aws:execute-api:us-east-1:*:local/prod/*", arn, true},
		{"arn:aws:execute-api:us-east-1:000000000000:local/prod/*/*", arn, false},
		{"arn:aws:execute-api:us-east-1:000000000000:local/prod", arn, false},
		{"arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect/*", arn, false},
		{"arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect*", arn, true},
		{"arn:aws:execute-api:us-east-1:000000000000:LOCAL/prod/$connect", arn, false},
		{"arn:aws:execute-api:us-east-?:000000000000:local/prod/$connect", arn, true},
		{"arn:aws:execute-api:us-east-??:000000000000:local/prod/$connect", arn, false},
		{"arn:aws:execute-api:us-east-1:000000000000:local/pro?/$connect", arn, true},
		{"arn:aws:execute-api:us-east-1:000000000000:local/????/$connect", arn, true},
		{"arn:aws:execute-api:us-east-1:000000000000:local/???/$connect", arn, false},
		{"arn:aws:execute-api:us-east-1:000000000000:local?prod?$connect", arn, true},
		{"*/$connect", arn, true},
		{"*/$disconnect", arn, false},
		{"*prod*", arn, true},
		{"**", arn, true},
		{"*?", "", false},
		{"a*b*c", "abbbc", true},
		{"a*b*c", "abcb", false},
		{"a*b?d", "abxbcd", true},
		{"?", "é", true},
		{"??", "é", false},
		{"st?ge", "stäge", true},
	} {
		if got := auth.MatchResource(tc.pattern, tc.arn); got != tc.want {
			t.Errorf("MatchResource(%q, %q) = %v, want %v", tc.pattern, tc.arn, got, tc.want)
		}
	}
}

// globRegexp is the reference for MatchResource: "*" as ".*", "?" as ".",
// everything else literal, anchored, with "." matching newlines too.
func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`)$`)
	return regexp.MustCompile(b.String())
}

// validPrefix returns at most n bytes of s with invalid UTF-8 replaced.
func validPrefix(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func FuzzMatchResource(f *testing.F) {
	const arn = "arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect"
	for _, seed := range [][2]string{
		{"*", arn},
		{"arn:aws:execute-api:us-east-1:000000000000:local/*", arn},
		{"arn:aws:execute-api:us-east-1:000000000000:local/prod/*/*", arn},
		{"arn:aws:execute-api:us-east-?:*:local/*/$connect", arn},
		{"a*b?c*", "axxbyczz"},
		{"*?*?*", "é"},
		{"[.+]", "[.+]"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		// Any input must be answered; the reference needs valid UTF-8.
		auth.MatchResource(pattern, s)
		pattern, s = validPrefix(pattern, 256), validPrefix(s, 256)
		want := globRegexp(pattern).MatchString(s)
		if got := auth.MatchResource(pattern, s); got != want {
			t.Fatalf("MatchResource(%q, %q) = %v, reference says %v", pattern, s, got, want)
		}
	})
}
