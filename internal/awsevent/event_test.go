package awsevent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func TestStageAndDomain(t *testing.T) {
	now := time.UnixMilli(1705751700453)
	tests := []struct {
		name       string
		api        API
		connDomain string
		host       string
		wantStage  string
		wantDomain string
	}{
		{"empty stage is $default", API{APIID: "a"}, "conn.example", "", "$default", "conn.example"},
		{"named stage kept", API{Stage: "prod"}, "conn.example", "", "prod", "conn.example"},
		{"api domain wins", API{DomainName: "api.example"}, "conn.example", "host.example", "$default", "api.example"},
		{"connect falls back to the request host", API{}, "", "host.example:8080", "$default", "host.example:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Conn{ID: NewID(), ConnectedAt: now, DomainName: tt.connDomain}
			evs := map[string]*events.APIGatewayWebsocketProxyRequest{
				"connect": Connect(tt.api, c, &ConnectRequest{Host: tt.host}, now),
			}
			if tt.connDomain != "" || tt.api.DomainName != "" {
				evs["message"] = Message(tt.api, c, "$default", nil, false, now)
				evs["disconnect"] = Disconnect(tt.api, c, 1001, "", now)
			}
			for name, ev := range evs {
				if got := ev.RequestContext.Stage; got != tt.wantStage {
					t.Errorf("%s: stage = %q, want %q", name, got, tt.wantStage)
				}
				if got := ev.RequestContext.DomainName; got != tt.wantDomain {
					t.Errorf("%s: domainName = %q, want %q", name, got, tt.wantDomain)
				}
			}
			if d, ok := evs["disconnect"]; ok && d.Headers["Host"] != tt.wantDomain {
				t.Errorf("disconnect Host = %q, want %q", d.Headers["Host"], tt.wantDomain)
			}
		})
	}
}

func TestConnectHeaders(t *testing.T) {
	now := time.Unix(0x60351922, 0)
	tests := []struct {
		name      string
		header    http.Header
		proto     string
		port      string
		sourceIP  string
		want      map[string]string
		wantMulti map[string][]string
		absent    []string
	}{
		{
			name:     "gateway adds forwarding headers",
			header:   http.Header{"Sec-Websocket-Protocol": {"chat, superchat"}},
			proto:    "http",
			port:     "8080",
			sourceIP: "10.0.0.7",
			want: map[string]string{
				"Sec-WebSocket-Protocol": "chat, superchat",
				"X-Forwarded-For":        "10.0.0.7",
				"X-Forwarded-Proto":      "http",
				"X-Forwarded-Port":       "8080",
			},
			absent: []string{"Sec-Websocket-Protocol"},
		},
		{
			name: "client forwarding headers are kept and the source ip appended",
			header: http.Header{
				"X-Forwarded-For":   {"203.0.113.9"},
				"X-Forwarded-Proto": {"https"},
				"X-Forwarded-Port":  {"443"},
				"X-Amzn-Trace-Id":   {"Root=1-00000000-000000000000000000000000"},
			},
			proto:    "http",
			port:     "8080",
			sourceIP: "10.0.0.7",
			want: map[string]string{
				"X-Forwarded-For":   "203.0.113.9, 10.0.0.7",
				"X-Forwarded-Proto": "https",
				"X-Forwarded-Port":  "443",
				"X-Amzn-Trace-Id":   "Root=1-00000000-000000000000000000000000",
			},
		},
		{
			name:     "presence is checked ignoring case",
			header:   http.Header{"x-forwarded-proto": {"https"}, "x-forwarded-for": {""}},
			proto:    "http",
			sourceIP: "10.0.0.7",
			want:     map[string]string{"x-forwarded-proto": "https", "x-forwarded-for": "10.0.0.7"},
			absent:   []string{"X-Forwarded-Proto", "X-Forwarded-For", "X-Forwarded-Port"},
		},
		{
			name:      "a repeated header has its last value in headers, all in multiValueHeaders",
			header:    http.Header{"Accept-Language": {"en", "fr"}},
			want:      map[string]string{"Accept-Language": "fr"},
			wantMulti: map[string][]string{"Accept-Language": {"en", "fr"}},
			absent:    []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port"},
		},
		{
			name:      "several Cookie lines are joined into one",
			header:    http.Header{"Cookie": {"a=1; b=2", "a=3"}},
			want:      map[string]string{"Cookie": "a=1; b=2; a=3"},
			wantMulti: map[string][]string{"Cookie": {"a=1; b=2", "a=3"}},
		},
		{
			name:      "a repeated X-Forwarded-For gets the peer on its last line",
			header:    http.Header{"X-Forwarded-For": {"198.51.100.1", "203.0.113.9"}},
			sourceIP:  "10.0.0.7",
			want:      map[string]string{"X-Forwarded-For": "203.0.113.9, 10.0.0.7"},
			wantMulti: map[string][]string{"X-Forwarded-For": {"198.51.100.1", "203.0.113.9, 10.0.0.7"}},
		},
		{
			name: "hop-by-hop headers are dropped, host comes from the request",
			header: http.Header{
				"Connection": {"Upgrade"},
				"Upgrade":    {"websocket"},
				"Host":       {"ignored.example"},
			},
			want:   map[string]string{"Host": "gw.example"},
			absent: []string{"Connection", "Upgrade"},
		},
		{
			name:   "client spelling of other headers is kept",
			header: http.Header{"x-api-key": {"k"}, "Sec-WebSocket-Key": {"raw"}},
			want:   map[string]string{"x-api-key": "k", "Sec-WebSocket-Key": "raw"},
			absent: []string{"X-Api-Key"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cloneHeader(tt.header)
			c := &Conn{ID: NewID(), ConnectedAt: now, SourceIP: tt.sourceIP}
			ev := Connect(API{}, c, &ConnectRequest{Header: tt.header, Host: "gw.example", Proto: tt.proto, Port: tt.port}, now)
			for k, want := range tt.want {
				if got, ok := ev.Headers[k]; !ok || got != want {
					t.Errorf("headers[%q] = %q (present %v), want %q", k, got, ok, want)
				}
				if len(tt.wantMulti[k]) == 0 && !reflect.DeepEqual(ev.MultiValueHeaders[k], []string{want}) {
					t.Errorf("multiValueHeaders[%q] = %q, want [%q]", k, ev.MultiValueHeaders[k], want)
				}
			}
			for k, want := range tt.wantMulti {
				if got := ev.MultiValueHeaders[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("multiValueHeaders[%q] = %q, want %q", k, got, want)
				}
			}
			for _, k := range tt.absent {
				if _, ok := ev.Headers[k]; ok {
					t.Errorf("headers[%q] present, want absent", k)
				}
				if _, ok := ev.MultiValueHeaders[k]; ok {
					t.Errorf("multiValueHeaders[%q] present, want absent", k)
				}
			}
			if ev.Headers["Host"] != "gw.example" {
				t.Errorf("Host = %q", ev.Headers["Host"])
			}
			if _, ok := findHeader(ev.MultiValueHeaders, "X-Amzn-Trace-Id"); !ok {
				t.Error("no X-Amzn-Trace-Id")
			}
			// The event must not share slices with the request.
			for _, vs := range ev.MultiValueHeaders {
				for i := range vs {
					vs[i] = "changed"
				}
			}
			if !reflect.DeepEqual(tt.header, before) {
				t.Errorf("Connect modified the request headers: %v, was %v", tt.header, before)
			}
		})
	}
}

func cloneHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func TestConnectQuery(t *testing.T) {
	now := time.UnixMilli(1705751700453)
	c := &Conn{ID: NewID(), ConnectedAt: now}
	tests := []struct {
		name      string
		query     url.Values
		want      map[string]string
		wantMulti map[string][]string
	}{
		{"no query string", nil, nil, nil},
		{"empty query string", url.Values{}, nil, nil},
		{"single values", url.Values{"token": {"abc"}, "room": {"1"}},
			map[string]string{"token": "abc", "room": "1"},
			map[string][]string{"token": {"abc"}, "room": {"1"}}},
		{"repeated key keeps the last value", url.Values{"a": {"1", "2"}},
			map[string]string{"a": "2"},
			map[string][]string{"a": {"1", "2"}}},
		{"empty value", url.Values{"flag": {""}},
			map[string]string{"flag": ""},
			map[string][]string{"flag": {""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := Connect(API{}, c, &ConnectRequest{Query: tt.query}, now)
			if !reflect.DeepEqual(ev.QueryStringParameters, tt.want) {
				t.Errorf("queryStringParameters = %v, want %v", ev.QueryStringParameters, tt.want)
			}
			if !reflect.DeepEqual(ev.MultiValueQueryStringParameters, tt.wantMulti) {
				t.Errorf("multiValueQueryStringParameters = %v, want %v", ev.MultiValueQueryStringParameters, tt.wantMulti)
			}
			raw, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			present := bytes.Contains(raw, []byte(`"queryStringParameters"`))
			if present != (tt.want != nil) {
				t.Errorf("queryStringParameters in JSON = %v, want %v: %s", present, tt.want != nil, raw)
			}
		})
	}
}

func TestMessageBody(t *testing.T) {
	now := time.UnixMilli(1705751700453)
	c := &Conn{ID: NewID(), ConnectedAt: now}
	tests := []struct {
		name     string
		body     []byte
		isBase64 bool
		want     string
	}{
		{"text", []byte(`{"action":"send","data":"<b>&</b>"}`), false, `{"action":"send","data":"<b>&</b>"}`},
		{"empty text", nil, false, ""},
		{"binary is base64 encoded", []byte{0, 1, 2, 0xff}, true, "AAEC/w=="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := Message(API{}, c, "send", tt.body, tt.isBase64, now)
			if ev.Body != tt.want || ev.IsBase64Encoded != tt.isBase64 {
				t.Errorf("body, isBase64Encoded = %q, %v; want %q, %v", ev.Body, ev.IsBase64Encoded, tt.want, tt.isBase64)
			}
			if ev.RequestContext.RouteKey != "send" || ev.RequestContext.EventType != "MESSAGE" {
				t.Errorf("routeKey, eventType = %q, %q", ev.RequestContext.RouteKey, ev.RequestContext.EventType)
			}
			if ev.Headers != nil || ev.MultiValueHeaders != nil || ev.QueryStringParameters != nil {
				t.Error("message event carries headers or a query string")
			}
		})
	}
}

func TestDisconnect(t *testing.T) {
	now := time.UnixMilli(1705751708326)
	c := &Conn{ID: NewID(), ConnectedAt: now.Add(-time.Minute), DomainName: "gw.example"}
	tests := []struct {
		code   int
		reason string
	}{
		{1001, ""},
		{1000, "Connection Closed Normally"},
		{1006, ""},
	}
	for _, tt := range tests {
		ev := Disconnect(API{}, c, tt.code, tt.reason, now)
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			RequestContext map[string]any `json:"requestContext"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if m.RequestContext["disconnectStatusCode"] != float64(tt.code) || m.RequestContext["disconnectReason"] != tt.reason {
			t.Errorf("code %d reason %q: got %v, %#v", tt.code, tt.reason, m.RequestContext["disconnectStatusCode"], m.RequestContext["disconnectReason"])
		}
		if _, ok := m.RequestContext["messageId"]; ok {
			t.Errorf("disconnect event has a messageId")
		}
	}
}

func TestRequestIDs(t *testing.T) {
	now := time.UnixMilli(1705751700453)
	c := &Conn{ID: NewID(), ConnectedAt: now}
	seen := map[string]bool{}
	for _, ev := range []*events.APIGatewayWebsocketProxyRequest{
		Connect(API{}, c, nil, now),
		Message(API{}, c, "$default", nil, false, now),
		Message(API{}, c, "$default", nil, false, now),
		Disconnect(API{}, c, 1001, "", now),
	} {
		rc := ev.RequestContext
		if !idPattern.MatchString(rc.RequestID) || rc.ExtendedRequestID != rc.RequestID {
			t.Errorf("requestId %q, extendedRequestId %q", rc.RequestID, rc.ExtendedRequestID)
		}
		if seen[rc.RequestID] {
			t.Errorf("request id %q reused", rc.RequestID)
		}
		seen[rc.RequestID] = true
		if rc.ConnectionID != c.ID {
			t.Errorf("connectionId = %q, want %q", rc.ConnectionID, c.ID)
		}
		if rc.EventType == "MESSAGE" {
			if id, _ := rc.MessageID.(string); !idPattern.MatchString(id) || seen[id] {
				t.Errorf("messageId = %v", rc.MessageID)
			}
			seen[rc.MessageID.(string)] = true
		} else if rc.MessageID != nil {
			t.Errorf("%s event has messageId %v", rc.EventType, rc.MessageID)
		}
	}
}

func TestMarshal(t *testing.T) {
	now := time.UnixMilli(1705751700453)
	c := &Conn{ID: NewID(), ConnectedAt: now, Authorizer: map[string]any{"principalId": "a&b"}}
	ev := Message(API{}, c, "$default", []byte(`<p>"x" & y</p>`), false, now)
	got, err := Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte(`"body":"<p>\"x\" & y</p>"`)) || !bytes.Contains(got, []byte(`"principalId":"a&b"`)) {
		t.Errorf("Marshal escaped HTML characters: %s", got)
	}
	if bytes.HasSuffix(got, []byte("\n")) {
		t.Error("Marshal output ends in a newline")
	}
	std, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(std, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("Marshal and json.Marshal decode differently:\n%s\n%s", got, std)
	}
}

var benchConn = &Conn{
	ID:          "R1kmxc2VNjMCFIA=",
	ConnectedAt: time.UnixMilli(1705751697419),
	SourceIP:    "49.105.91.154",
	UserAgent:   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36",
	DomainName:  "dl7ptocha9.execute-api.ap-northeast-1.amazonaws.com",
	Authorizer:  map[string]any{"principalId": "user", "integrationLatency": 12, "tenant": "acme"},
}

var benchBody = []byte(`{"action":"sendmessage","data":"` + strings.Repeat("x", 200) + `"}`)

func BenchmarkMessageJSONMarshal(b *testing.B) {
	api := API{APIID: "dl7ptocha9", Stage: "prod"}
	now := time.UnixMilli(1705751700453)
	b.ReportAllocs()
	for b.Loop() {
		ev := Message(api, benchConn, "sendmessage", benchBody, false, now)
		if _, err := json.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMessageMarshal(b *testing.B) {
	api := API{APIID: "dl7ptocha9", Stage: "prod"}
	now := time.UnixMilli(1705751700453)
	b.ReportAllocs()
	for b.Loop() {
		ev := Message(api, benchConn, "sendmessage", benchBody, false, now)
		if _, err := Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConnect(b *testing.B) {
	api := API{APIID: "dl7ptocha9", Stage: "prod"}
	now := time.UnixMilli(1705751700453)
	r := &ConnectRequest{
		Header: http.Header{
			"Connection":               {"Upgrade"},
			"Upgrade":                  {"websocket"},
			"Sec-Websocket-Key":        {"ElxPGSkjS67JEzN6/32V1A=="},
			"Sec-Websocket-Version":    {"13"},
			"Sec-Websocket-Extensions": {"permessage-deflate; client_max_window_bits"},
			"User-Agent":               {benchConn.UserAgent},
			"Origin":                   {"https://example.com"},
		},
		Query: url.Values{"token": {"abc"}},
		Host:  benchConn.DomainName,
		Proto: "https",
		Port:  "443",
	}
	b.ReportAllocs()
	for b.Loop() {
		ev := Connect(api, benchConn, r, now)
		if _, err := json.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID()
	}
}

// BenchmarkMessage is building a message event: its ids, request time and
// struct, once per message on every integration's path.
func BenchmarkMessage(b *testing.B) {
	c := &Conn{ID: NewID(), ConnectedAt: time.Now(), SourceIP: "127.0.0.2", UserAgent: "wsbench"}
	body := []byte(`{"action":"x","seq":"0000000042"}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = Message(API{}, c, "x", body, false, time.Now())
	}
}
