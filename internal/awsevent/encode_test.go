package awsevent

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// checkAppendJSON fails t unless AppendJSON writes exactly what
// json.Marshal writes (escapeHTML) and what Marshal writes (without).
func checkAppendJSON(t testing.TB, name string, ev *events.APIGatewayWebsocketProxyRequest) {
	t.Helper()
	want, wantErr := json.Marshal(ev)
	got, err := AppendJSON([]byte("prefix"), ev, true)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s: AppendJSON error %v, json.Marshal error %v", name, err, wantErr)
	}
	if wantErr != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("%s: AppendJSON(escapeHTML) =\n%s\njson.Marshal =\n%s", name, got, want)
	}
	want, err = Marshal(ev)
	if err != nil {
		t.Fatalf("%s: Marshal: %v", name, err)
	}
	got, err = AppendJSON(nil, ev, false)
	if err != nil {
		t.Fatalf("%s: AppendJSON: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: AppendJSON =\n%s\nMarshal =\n%s", name, got, want)
	}
}

// awkward are strings that exercise every escaping rule.
var awkward = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "\x00\x01\x07\b\f\n\r\t\x1f\x7f",
	"invalid \xff\xfe utf-8 \xc3", "line\u2028para\u2029sep", "émoji 😀 and ünïcödé", "\ufffd literal",
	strings.Repeat("x", 300), "trailing \xe2\x82",
}

func TestAppendJSONEvents(t *testing.T) {
	api := API{APIID: "abc123", Stage: "prod", StageVariables: map[string]string{"b": "2", "a": "<1>"}}
	now := time.Date(2026, 12, 6, 5, 0, 0, 123e6, time.UTC)
	cert := &x509.Certificate{Raw: []byte("not really DER"), SerialNumber: big.NewInt(0xa1b2)}
	conns := []*Conn{
		{ID: "R1kmxc2VNjMCFIA=", ConnectedAt: now, SourceIP: "192.0.2.1", UserAgent: "ua/1.0", DomainName: "example.com"},
		{ID: "c2", SourceIP: "::1", Authorizer: map[string]any{"principalId": "user<1>", "integrationLatency": 12, "k": "v&w"}},
		{ID: "c3", Authorizer: map[string]any{"n": 1.5, "big": 1e21, "small": 1e-7, "nested": map[string]any{"z": true, "a": nil}, "list": []any{"a", 2.0}}},
		{ID: "c4", Authorizer: map[string]any{}, ClientCert: NewClientCert(cert)},
	}
	h := http.Header{"Sec-Websocket-Key": {"k=="}, "Cookie": {"a=1", "b=<2>"}, "X-Forwarded-For": {"198.51.100.7"}, "User-Agent": {"ua"}}
	q := url.Values{"token": {"a&b"}, "multi": {"1", "2", "\u2028"}}
	var evs []*events.APIGatewayWebsocketProxyRequest
	for _, c := range conns {
		evs = append(evs,
			Connect(api, c, &ConnectRequest{Header: h, Query: q, Host: "example.com", Proto: "https", Port: "443"}, now),
			Connect(API{}, c, nil, now),
			Message(api, c, "sendMessage", []byte(`{"action":"sendMessage","data":"<hi> & bye"}`), false, now),
			Message(api, c, "$default", []byte{0, 1, 2, 0xff}, true, now),
			Disconnect(api, c, 1001, "going <away>", now),
			Disconnect(API{}, c, 0, "", now),
		)
	}
	for _, s := range awkward {
		c := &Conn{ID: s, SourceIP: s, UserAgent: s, DomainName: s, Authorizer: map[string]any{s: s, "p": s}}
		hs := http.Header{s: {s, s}, "X": {s}}
		evs = append(evs,
			Connect(API{APIID: s, Stage: s, StageVariables: map[string]string{s: s}}, c, &ConnectRequest{Header: hs, Query: url.Values{s: {s}}, Host: s}, now),
			Message(API{APIID: s}, c, s, []byte(s), false, now),
			Disconnect(API{}, c, 4000, s, now),
		)
	}
	// Every other member of the event type, set.
	reason := "r"
	full := &events.APIGatewayWebsocketProxyRequest{
		Resource: "/r", Path: "/p", HTTPMethod: "POST",
		PathParameters: map[string]string{"id": "1"},
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			AccountID: "1", ResourceID: "2", ResourcePath: "/rp", HTTPMethod: "GET", Error: "e", IntegrationLatency: "3", Status: "200",
			MessageID: "m", DisconnectStatusCode: 1000, DisconnectReason: &reason,
			Identity: events.APIGatewayRequestIdentity{CognitoIdentityPoolID: "a", AccountID: "b", CognitoIdentityID: "c", Caller: "d",
				APIKey: "e", APIKeyID: "f", AccessKey: "g", CognitoAuthenticationType: "h", CognitoAuthenticationProvider: "i", UserArn: "j", User: "k"},
		},
		MultiValueHeaders: map[string][]string{"nil": nil, "empty": {}},
	}
	evs = append(evs, full, &events.APIGatewayWebsocketProxyRequest{})
	// Values of the two interface members of other types, and one
	// encoding/json refuses.
	for _, v := range []any{42, int64(-7), 2.5, true, nil, map[string]any(nil), map[string]string{"b": "<", "a": ""}, map[string]string(nil),
		[]string{"x"}, struct{ A string }{"<"}, json.Number("12"), math.Inf(1), make(chan int)} {
		evs = append(evs, &events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{Authorizer: v, MessageID: v}})
	}
	// The events AWS captured, as aws-lambda-go ships them.
	dir := lambdaEventsDir(t)
	for _, name := range []string{"apigw-websocket-request.json", "apigw-websocket-request-send-message.json", "apigw-websocket-request-disconnect.json"} {
		b, err := os.ReadFile(filepath.Join(dir, "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		var ev events.APIGatewayWebsocketProxyRequest
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, &ev)
	}
	for i, ev := range evs {
		checkAppendJSON(t, "event "+string(rune('A'+i%26))+"#"+itoa(i), ev)
	}
	if _, err := AppendJSON(nil, &events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{Authorizer: make(chan int)}}, true); err == nil {
		t.Error("AppendJSON encoded a channel")
	}
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// TestAppendJSONRandom compares AppendJSON with encoding/json over many
// events made of random strings.
func TestAppendJSONRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", " ", "\"", "\\", "<", ">", "&", "\x00", "\x1f", "\n", "\t", "\x7f", "é", "😀", "\u2028", "\xff", "\xe2\x82", "/"}
	str := func() string {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := range 2000 {
		c := &Conn{ID: str(), ConnectedAt: time.UnixMilli(r.Int64N(1 << 42)), SourceIP: str(), UserAgent: str(), DomainName: str()}
		if r.IntN(2) == 0 {
			c.Authorizer = map[string]any{"principalId": str(), str(): str(), str(): r.IntN(1000)}
		}
		h := http.Header{}
		for range r.IntN(5) {
			h[str()] = []string{str(), str()}
		}
		q := url.Values{}
		for range r.IntN(3) {
			q[str()] = []string{str()}
		}
		now := time.UnixMilli(r.Int64N(1 << 42))
		api := API{APIID: str(), Stage: str(), StageVariables: map[string]string{str(): str()}, DomainName: str()}
		var ev *events.APIGatewayWebsocketProxyRequest
		switch i % 3 {
		case 0:
			ev = Connect(api, c, &ConnectRequest{Header: h, Query: q, Host: str(), Proto: str(), Port: str(), Peer: str()}, now)
		case 1:
			ev = Message(api, c, str(), []byte(str()), r.IntN(2) == 0, now)
		default:
			ev = Disconnect(api, c, r.IntN(5000), str(), now)
		}
		checkAppendJSON(t, "random event "+itoa(i), ev)
	}
}

// FuzzAppendJSON checks AppendJSON against encoding/json on events whose
// strings come from the fuzzer.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range awkward {
		f.Add(s, s, s, true)
	}
	f.Add(`{"action":"x"}`, "X-Api-Key", "user", false)
	f.Fuzz(func(t *testing.T, body, header, principal string, binary bool) {
		c := &Conn{ID: principal, SourceIP: header, UserAgent: body, Authorizer: map[string]any{"principalId": principal, header: body}}
		now := time.UnixMilli(1700000000000)
		h := http.Header{header: {body, principal}, "Host": {header}}
		checkAppendJSON(t, "connect", Connect(API{StageVariables: map[string]string{header: principal}}, c,
			&ConnectRequest{Header: h, Query: url.Values{body: {header}}, Host: principal}, now))
		checkAppendJSON(t, "message", Message(API{APIID: header}, c, principal, []byte(body), binary, now))
		checkAppendJSON(t, "disconnect", Disconnect(API{}, c, 1000, body, now))
	})
}

// benchEvent is a message event as the gateway sends it for a 64-byte
// message on a connection with an authorizer.
func benchEvent() *events.APIGatewayWebsocketProxyRequest {
	c := &Conn{ID: "R1kmxc2VNjMCFIA=", ConnectedAt: time.Now(), SourceIP: "127.0.0.2", UserAgent: "wsbench",
		DomainName: "127.0.0.1:8080", Authorizer: map[string]any{"principalId": "user-1", "integrationLatency": 0}}
	return Message(API{}, c, "x", []byte(`{"action":"x","seq":"0000000042","pad":"xxxxxxxxxxxxxxxxxxxxxxxx"}`), false, time.Now())
}

// BenchmarkMessageEventJSON compares encoding/json with AppendJSON on a
// message event.
func BenchmarkMessageEventJSON(b *testing.B) {
	ev := benchEvent()
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = AppendJSON(buf[:0], ev, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}
