package accesslog

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func sampleEntry() *Entry {
	return &Entry{
		EventType:            "MESSAGE",
		RequestID:            "req-1",
		ConnectionID:         "conn-1=",
		RouteKey:             "sendmessage",
		MessageID:            "msg-1",
		Status:               200,
		Time:                 time.Date(2024, 1, 20, 11, 55, 0, 453e6, time.FixedZone("x", 3600)),
		ConnectedAt:          time.UnixMilli(1705751697419),
		APIID:                "chat",
		Stage:                "prod",
		DomainName:           "ws.example.com",
		SourceIP:             "192.0.2.7",
		UserAgent:            `Mozilla/5.0 "quoted" \ back`,
		MessageDirection:     "IN",
		IntegrationStatus:    502,
		IntegrationLatency:   1500 * time.Microsecond,
		IntegrationTimed:     true,
		IntegrationError:     "connection refused",
		Authorizer:           map[string]any{"principalId": "user-1", "role": "admin", "integrationLatency": int64(3)},
		AuthorizerStatus:     200,
		AuthorizerLatency:    3 * time.Millisecond,
		AuthorizerTimed:      true,
		ErrorMessage:         "Internal server error",
		ErrorResponseType:    "INTEGRATION_FAILURE",
		DisconnectStatusCode: 1001,
		DisconnectReason:     "Going away",
		Latency:              2 * time.Millisecond,
		ClientCert: &events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert{
			ClientCertPem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
			SubjectDN:     "CN=alice",
			IssuerDN:      "CN=client CA",
			SerialNumber:  "0a:1b",
			Validity: events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCertValidity{
				NotBefore: "May 28 12:30:02 2019 GMT", NotAfter: "May 28 12:30:02 2029 GMT",
			},
		},
	}
}

func TestVariables(t *testing.T) {
	e := sampleEntry()
	tests := map[string]string{
		"apiId":                                  "chat",
		"connectedAt":                            "1705751697419",
		"connectionId":                           "conn-1=",
		"domainName":                             "ws.example.com",
		"eventType":                              "MESSAGE",
		"extendedRequestId":                      "req-1",
		"requestId":                              "req-1",
		"messageId":                              "msg-1",
		"messageDirection":                       "IN",
		"routeKey":                               "sendmessage",
		"stage":                                  "prod",
		"status":                                 "200",
		"requestTime":                            "20/Jan/2024:10:55:00 +0000",
		"requestTimeEpoch":                       "1705748100453",
		"identity.sourceIp":                      "192.0.2.7",
		"identity.userAgent":                     `Mozilla/5.0 \"quoted\" \\ back`,
		"identity.caller":                        "-",
		"identity.user":                          "-",
		"identity.apiKey":                        "-",
		"integrationLatency":                     "1",
		"integration.latency":                    "1",
		"integrationStatus":                      "502",
		"integration.status":                     "502",
		"integration.error":                      "connection refused",
		"error.message":                          "Internal server error",
		"error.messageString":                    `"Internal server error"`,
		"error.responseType":                     "INTEGRATION_FAILURE",
		"authorizer.principalId":                 "user-1",
		"authorizer.role":                        "admin",
		"authorizer.integrationLatency":          "3",
		"authorizer.status":                      "200",
		"authorizer.missing":                     "-",
		"disconnectStatusCode":                   "1001",
		"disconnectReason":                       "Going away",
		"responseLatency":                        "2",
		"waf.status":                             "-",
		"identity.clientCert.subjectDN":          "CN=alice",
		"identity.clientCert.issuerDN":           "CN=client CA",
		"identity.clientCert.serialNumber":       "0a:1b",
		"identity.clientCert.validity.notBefore": "May 28 12:30:02 2019 GMT",
		"identity.clientCert.validity.notAfter":  "May 28 12:30:02 2029 GMT",
		"identity.clientCert.clientCertPem":      `-----BEGIN CERTIFICATE-----\x0aMIIB\x0a-----END CERTIFICATE-----\x0a`,
	}
	for name, want := range tests {
		f, err := ParseFormat("$context." + name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := string(f.Append(nil, e)); got != want {
			t.Errorf("$context.%s = %q, want %q", name, got, want)
		}
		if got := string(f.Append(nil, &Entry{})); name != "responseLatency" && got != "-" {
			t.Errorf("$context.%s of an empty entry = %q, want -", name, got)
		}
	}
}

func TestEveryVariableParses(t *testing.T) {
	for _, v := range Variables() {
		if _, err := ParseFormat("$context." + v); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
}

func TestPresets(t *testing.T) {
	e := sampleEntry()
	e.UserAgent = `a"<b>&'c` + "\n"
	e.ConnectionID = `x"y`
	got := func(name string) string {
		f, err := ParseFormat(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(f.Append(nil, e))
	}
	if s, want := got("clf"), `192.0.2.7 - - [20/Jan/2024:10:55:00 +0000] "MESSAGE sendmessage x\"y" 200 req-1`; s != want {
		t.Errorf("clf:\n got %s\nwant %s", s, want)
	}
	if s, want := got("csv"), `192.0.2.7,-,-,20/Jan/2024:10:55:00 +0000,MESSAGE,sendmessage,x\"y,200,req-1`; s != want {
		t.Errorf("csv:\n got %s\nwant %s", s, want)
	}
	var j map[string]string
	if err := json.Unmarshal([]byte(got("json")), &j); err != nil {
		t.Fatalf("json preset: %v", err)
	}
	if j["connectionId"] != `x"y` || j["status"] != "200" || j["caller"] != "-" || j["requestId"] != "req-1" {
		t.Errorf("json preset: %v", j)
	}
	var x struct {
		ID           string `xml:"id,attr"`
		ConnectionID string `xml:"connectionId"`
		EventType    string `xml:"eventType"`
	}
	if err := xml.Unmarshal([]byte(got("xml")), &x); err != nil {
		t.Fatalf("xml preset: %v", err)
	}
	if x.ID != "req-1" || x.ConnectionID != `x"y` || x.EventType != "MESSAGE" {
		t.Errorf("xml preset: %+v", x)
	}
}

func TestJSONFormatEscapesValues(t *testing.T) {
	f, err := ParseFormat(`{"ua":"$context.identity.userAgent","err":"$context.error.messageString","role":"$context.authorizer.role"}`)
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEntry()
	e.UserAgent = "evil\"}\n{\"injected\":\"1\\\x00\xff"
	line := f.Append(nil, e)
	var m map[string]string
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if want := "evil\"}\n{\"injected\":\"1\\\x00\ufffd"; m["ua"] != want {
		t.Errorf("ua = %q, want %q", m["ua"], want)
	}
	if m["err"] != `"Internal server error"` || m["role"] != "admin" {
		t.Errorf("line %s", line)
	}
	if strings.Contains(string(line), "\n") {
		t.Errorf("line holds a newline: %q", line)
	}
}

func TestTextFormatKeepsOneLine(t *testing.T) {
	f, err := ParseFormat(`$context.identity.userAgent end`)
	if err != nil {
		t.Fatal(err)
	}
	e := &Entry{UserAgent: "a\r\nb\x1b[31m"}
	if got, want := string(f.Append(nil, e)), `a\x0d\x0ab\x1b[31m end`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFormatLiteralsAndNames(t *testing.T) {
	f, err := ParseFormat(`$ $context.status. $context.stage-$context.apiId,$contextual`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(f.Append(nil, sampleEntry())), `$ 200. prod-chat,$contextual`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseFormatErrors(t *testing.T) {
	tests := []struct{ format, want string }{
		{"", "empty"},
		{"  ", "empty"},
		{"$context.requestid", "unknown variable $context.requestid (did you mean $context.requestId?)"},
		{"$context.reqestId x", "did you mean $context.requestId?"},
		{"$context.zzzzzzzzzzzz", "unknown variable $context.zzzzzzzzzzzz; see docs/access-logs.md"},
		{"$context.authorizer.a.b", "unknown variable $context.authorizer.a.b"},
		{"$context.identity.clientCert.pem", "unknown variable $context.identity.clientCert.pem;"},
		{"$context.identity.clientCert.issuerD", "(did you mean $context.identity.clientCert.issuerDN?)"},
		{"ok $context. x", `"$context." at byte 3 names no variable`},
		{"a\nb", "one line"},
		{strings.Repeat("x", MaxFormatBytes+1), "AWS allows at most 3072"},
		{`{"status": $context.status}`, "not JSON"},
		{`{"a":"$context.status"`, "not JSON"},
		{"\xff", "UTF-8"},
	}
	for _, tt := range tests {
		_, err := ParseFormat(tt.format)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseFormat(%.40q) = %v, want an error containing %q", tt.format, err, tt.want)
		}
	}
}

func FuzzParseFormat(f *testing.F) {
	for _, p := range Presets {
		f.Add(p, "ua")
	}
	f.Add("$context.authorizer.x $context.", "\x00")
	f.Fuzz(func(t *testing.T, format, ua string) {
		p, err := ParseFormat(format)
		if err != nil {
			return
		}
		e := sampleEntry()
		e.UserAgent = ua
		e.Authorizer = map[string]any{"x": ua}
		line := p.Append(nil, e)
		if strings.ContainsAny(string(line), "\r\n") {
			t.Fatalf("line %q holds a line break", line)
		}
		if p.esc == escapeJSON && !json.Valid(line) {
			t.Fatalf("JSON format %q gave %q", format, line)
		}
	})
}
