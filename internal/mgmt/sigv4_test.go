package mgmt

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testKeyID  = "AKIAWSGATETEST0001"
	testSecret = "wsgate/test+secret/0123456789abcdefghijklmn"
	testHost   = "127.0.0.1:9090"
)

var testNow = time.Date(2026, 11, 21, 6, 24, 48, 0, time.UTC)

func newSigV4Server(t *testing.T, tokens ...string) *Server {
	t.Helper()
	return New(Config{
		BearerTokens: tokens,
		SigV4: []SigV4{{AccessKeyID: testKeyID, SecretAccessKey: testSecret, Region: "us-east-1",
			Now: func() time.Time { return testNow }}},
	}, newNode(), slog.New(slog.DiscardHandler))
}

// signed is a request as the AWS SDK sends it, and how it was signed.
type signed struct {
	method  string
	rawPath string // escaped, as on the wire
	body    string
	keyID   string
	secret  string
	token   string
	region  string
	service string
	at      time.Time
	host    string
	// contentSHA sends the body's SHA-256 as X-Amz-Content-Sha256, as
	// some signers do.
	contentSHA bool
}

func defaultSigned() signed {
	return signed{method: "POST", rawPath: "/prod/@connections/R1kmxc2VNjMCFIA%3D", body: `{"hello":"world"}`,
		keyID: testKeyID, secret: testSecret, region: "us-east-1", service: "execute-api", at: testNow, host: testHost}
}

// request signs s with the SDK's signer, the way apigatewaymanagementapi
// does (the SHA-256 of the body as the payload hash, no
// X-Amz-Content-Sha256 header, SDK headers signed), and returns it as the
// server receives it.
func (s signed) request(t *testing.T) *http.Request {
	t.Helper()
	u, err := url.Parse("http://" + s.host + s.rawPath)
	if err != nil {
		t.Fatal(err)
	}
	var body io.Reader = http.NoBody
	if s.body != "" {
		body = strings.NewReader(s.body)
	}
	req, err := http.NewRequest(s.method, u.String(), body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL = u
	if s.body != "" {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	req.Header.Set("Amz-Sdk-Invocation-Id", "6a2f7f3e-0d1c-4f5e-9a51-3c2f1d0e9b8a")
	req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.41.11")
	sum := sha256.Sum256([]byte(s.body))
	if s.contentSHA {
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	}
	creds := aws.Credentials{AccessKeyID: s.keyID, SecretAccessKey: s.secret, SessionToken: s.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), s.service, s.region, s.at); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewRequest(s.method, s.rawPath, strings.NewReader(s.body))
	srv.Host = req.Host
	srv.Header = req.Header.Clone()
	return srv
}

func serve(s *Server, r *http.Request) (int, string, string) {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	var body struct{ Message string }
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, strings.Join(rec.Header()["X-Amzn-ErrorType"], ","), body.Message
}

func TestSigV4Signatures(t *testing.T) {
	setHeader := func(k, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(k, v) } }
	tests := []struct {
		name   string
		change func(*signed)
		tamper func(*http.Request)
		ok     bool
	}{
		{name: "valid POST", ok: true},
		{name: "valid GET", change: func(s *signed) { s.method, s.body = "GET", "" }, ok: true},
		{name: "valid DELETE", change: func(s *signed) { s.method, s.body = "DELETE", "" }, ok: true},
		{name: "id with =", change: func(s *signed) { s.rawPath = "/prod/@connections/AAAAAAAAAAAAAAA%3D" }, ok: true},
		{name: "id with -", change: func(s *signed) { s.rawPath = "/prod/@connections/eHrdFcnvvHcCE-w%3D" }, ok: true},
		{name: "id with _", change: func(s *signed) { s.rawPath = "/prod/@connections/HXT_RfBnPHcCIIg%3D" }, ok: true},
		{name: "escaped @ as awscurl sends it", change: func(s *signed) { s.rawPath = "/prod/%40connections/JC1dgf9yoAMCK-g%3D" }, ok: true},
		{name: "no stage", change: func(s *signed) { s.rawPath = "/@connections/TWegAcC4EowCHnA%3D" }, ok: true},
		{name: "session token", change: func(s *signed) { s.token = "FwoGZXIvYXdzEJr//////////session" }, ok: true},
		{name: "4 minutes old", change: func(s *signed) { s.at = testNow.Add(-4 * time.Minute) }, ok: true},
		{name: "4 minutes ahead", change: func(s *signed) { s.at = testNow.Add(4 * time.Minute) }, ok: true},

		{name: "wrong key id", change: func(s *signed) { s.keyID = "AKIAWSGATETEST0002" }},
		{name: "wrong secret", change: func(s *signed) { s.secret = testSecret + "x" }},
		{name: "wrong region", change: func(s *signed) { s.region = "eu-west-1" }},
		{name: "wrong service", change: func(s *signed) { s.service = "execute" }},
		{name: "stale date", change: func(s *signed) { s.at = testNow.Add(-5*time.Minute - time.Second) }},
		{name: "future date", change: func(s *signed) { s.at = testNow.Add(5*time.Minute + time.Second) }},
		{name: "tampered body", tamper: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`{"hello":"World"}`)) }},
		{name: "tampered path", tamper: func(r *http.Request) {
			n := httptest.NewRequest(r.Method, "/prod/@connections/R1kmxc2VNjMCFIB%3D", r.Body)
			n.Host, n.Header = r.Host, r.Header
			*r = *n
		}},
		{name: "tampered signed header", tamper: setHeader("Content-Type", "text/plain")},
		{name: "tampered invocation id", tamper: setHeader("Amz-Sdk-Invocation-Id", "00000000-0000-0000-0000-000000000000")},
		{name: "tampered session token", change: func(s *signed) { s.token = "token-a" }, tamper: setHeader("X-Amz-Security-Token", "token-b")},
		{name: "unsigned session token added", tamper: setHeader("X-Amz-Security-Token", "token-b")},
		{name: "tampered host", tamper: func(r *http.Request) { r.Host = "127.0.0.1:9091" }},
		{name: "unsigned host", tamper: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "host;", "", 1))
		}},
		{name: "x-amz-date changed", tamper: setHeader("X-Amz-Date", testNow.Add(time.Second).Format(amzDateFormat))},
		{name: "scope date differs from x-amz-date", tamper: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261121/", "/20261120/", 1))
		}},
		{name: "path escaped once in the signature", tamper: func(r *http.Request) {
			// A signer that does not re-escape the escaped path signs a
			// different canonical URI.
			sum := sha256.Sum256([]byte(`{"hello":"world"}`))
			c := httptest.NewRequest("POST", "http://"+testHost+"/prod/@connections/R1kmxc2VNjMCFIA%3D", nil)
			c.Header = r.Header.Clone()
			c.Header.Del("Authorization")
			c.ContentLength = int64(len(`{"hello":"world"}`))
			_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
				c, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", testNow, func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
			r.Header.Set("Authorization", c.Header.Get("Authorization"))
		}},
		{name: "no authorization", tamper: func(r *http.Request) { r.Header.Del("Authorization") }},
		{name: "wrong algorithm", tamper: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1))
		}},
	}
	s := newSigV4Server(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sg := defaultSigned()
			if tt.change != nil {
				tt.change(&sg)
			}
			r := sg.request(t)
			sig := signatureOf(r.Header.Get("Authorization"))
			if tt.tamper != nil {
				tt.tamper(r)
			}
			status, typ, msg := serve(s, r)
			if tt.ok {
				// Authenticated: the unknown connection is gone.
				if status != http.StatusGone || typ != "GoneException" {
					t.Fatalf("got %d %s %q, want 410 GoneException", status, typ, msg)
				}
				return
			}
			if status != http.StatusForbidden || typ != "ForbiddenException" {
				t.Fatalf("got %d %s %q, want 403 ForbiddenException", status, typ, msg)
			}
			if msg == "" || (sig != "" && strings.Contains(msg, sig)) || strings.Contains(msg, testSecret) {
				t.Fatalf("message %q is empty or echoes a secret or the signature", msg)
			}
		})
	}
}

func signatureOf(auth string) string {
	_, sig, _ := strings.Cut(auth, "Signature=")
	return sig
}

func TestSigV4WithBearerTokens(t *testing.T) {
	s := newSigV4Server(t, "tok-1")
	r := httptest.NewRequest("GET", "/prod/@connections/AAAAAAAAAAAAAAA%3D", nil)
	r.Header.Set("Authorization", "Bearer tok-1")
	if status, _, _ := serve(s, r); status != http.StatusGone {
		t.Fatalf("bearer token: %d, want 410", status)
	}
	r.Header.Set("Authorization", "Bearer tok-2")
	if status, _, _ := serve(s, r); status != http.StatusForbidden {
		t.Fatalf("wrong bearer token: %d, want 403", status)
	}
	sg := defaultSigned()
	if status, _, msg := serve(s, sg.request(t)); status != http.StatusGone {
		t.Fatalf("signed request: %d %q, want 410", status, msg)
	}
	sg.secret = "wrong"
	if status, _, _ := serve(s, sg.request(t)); status != http.StatusForbidden {
		t.Fatalf("bad signature: %d, want 403", status)
	}
}

func TestSigV4PayloadTooLarge(t *testing.T) {
	s := newSigV4Server(t)
	sg := defaultSigned()
	sg.body = strings.Repeat("x", MaxPayloadBytes+1)
	status, typ, _ := serve(s, sg.request(t))
	if status != http.StatusRequestEntityTooLarge || typ != "PayloadTooLargeException" {
		t.Fatalf("got %d %s, want 413 PayloadTooLargeException", status, typ)
	}
	sg.body = strings.Repeat("x", MaxPayloadBytes)
	if status, typ, msg := serve(s, sg.request(t)); status != http.StatusGone {
		t.Fatalf("%d-byte body: %d %s %q, want 410", MaxPayloadBytes, status, typ, msg)
	}
}

func TestSigV4BodyIsRestored(t *testing.T) {
	sg := defaultSigned()
	r := sg.request(t)
	rec := httptest.NewRecorder()
	body, err := newSigV4Server(t).readBody(rec, r, MaxPayloadBytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := (SigV4{AccessKeyID: testKeyID, SecretAccessKey: testSecret, Region: "us-east-1",
		Now: func() time.Time { return testNow }}).verify(r, body); err != nil {
		t.Fatalf("verify: %v", err)
	}
	again, _ := io.ReadAll(r.Body)
	if string(again) != sg.body {
		t.Fatalf("body after verification = %q, want %q", again, sg.body)
	}
}

func TestParseAuthorization(t *testing.T) {
	sig := strings.Repeat("0a", 32)
	good := "AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig
	a, err := parseAuthorization(good)
	want := authorization{AccessKeyID: "AKID", Date: "20261121", Region: "us-east-1", Service: "execute-api",
		SignedHeaders: []string{"host", "x-amz-date"}, Signature: sig}
	if err != nil || !reflect.DeepEqual(a, want) {
		t.Fatalf("parseAuthorization(good) = %+v, %v", a, err)
	}
	reordered := "AWS4-HMAC-SHA256 Signature=" + sig + ",SignedHeaders=host;x-amz-date,Credential=AKID/20261121/us-east-1/execute-api/aws4_request"
	if a, err := parseAuthorization(reordered); err != nil || !reflect.DeepEqual(a, want) {
		t.Fatalf("parseAuthorization(reordered) = %+v, %v", a, err)
	}
	for _, bad := range []string{
		"",
		"Bearer x",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host",
		"AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=" + sig + ", Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/execute-api, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/2026112/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=Host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host;;x, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=" + strings.ToUpper(sig),
		"AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=" + sig[:62],
		"AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=" + sig + ", Extra=1",
	} {
		if _, err := parseAuthorization(bad); err == nil {
			t.Errorf("parseAuthorization(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), sig[:16]) {
			t.Errorf("error %q echoes the signature", err)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	sig := strings.Repeat("0a", 32)
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig)
	f.Add("AWS4-HMAC-SHA256 Signature=" + sig + ",SignedHeaders=host,Credential=A/20260101/r/s/aws4_request")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=, Signature=")
	f.Add("Bearer token")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			if strings.Contains(err.Error(), "Signature=") {
				t.Fatalf("error %q quotes the header", err)
			}
			return
		}
		if len(a.Signature) != 64 || a.AccessKeyID == "" || a.Region == "" || a.Service == "" || len(a.Date) != 8 || len(a.SignedHeaders) == 0 {
			t.Fatalf("accepted %q as %+v", h, a)
		}
		// What was parsed, written back out, parses to the same thing.
		out := "AWS4-HMAC-SHA256 Credential=" + strings.Join([]string{a.AccessKeyID, a.Date, a.Region, a.Service, "aws4_request"}, "/") +
			", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") + ", Signature=" + a.Signature
		b, err := parseAuthorization(out)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", h, b, err, a)
		}
	})
}

// TestSigV4SeveralKeys checks that each configured key is accepted with its
// own secret and region rule: a key without a region accepts any, the
// other only its own, and no key signs with another's secret. An accepted
// call reaches the handler, which answers 410 for the unknown connection.
func TestSigV4SeveralKeys(t *testing.T) {
	const otherID, otherSecret = "AKIALOCALFUNCTION001", "local-function-secret"
	now := func() time.Time { return testNow }
	s := New(Config{SigV4: []SigV4{
		{AccessKeyID: testKeyID, SecretAccessKey: testSecret, Region: "us-east-1", Now: now},
		{AccessKeyID: otherID, SecretAccessKey: otherSecret, Now: now},
		{},
	}}, newNode(), slog.New(slog.DiscardHandler))
	for _, tt := range []struct {
		name                  string
		keyID, secret, region string
		status                int
	}{
		{"configured key", testKeyID, testSecret, "us-east-1", http.StatusGone},
		{"configured key, other region", testKeyID, testSecret, "eu-west-1", http.StatusForbidden},
		{"regionless key", otherID, otherSecret, "us-east-1", http.StatusGone},
		{"regionless key, any region", otherID, otherSecret, "ap-southeast-2", http.StatusGone},
		{"regionless key id, configured secret", otherID, testSecret, "us-east-1", http.StatusForbidden},
		{"configured key id, regionless secret", testKeyID, otherSecret, "us-east-1", http.StatusForbidden},
		{"unknown key", "AKIAUNKNOWNKEY000001", otherSecret, "us-east-1", http.StatusForbidden},
	} {
		sg := defaultSigned()
		sg.keyID, sg.secret, sg.region = tt.keyID, tt.secret, tt.region
		if status, typ, msg := serve(s, sg.request(t)); status != tt.status {
			t.Errorf("%s: status %d (%s: %s), want %d", tt.name, status, typ, msg, tt.status)
		}
	}
}

// TestSigV4BodyLimitFollowsTheCall checks that a SigV4-signed push whose
// path merely ends in "/@batch" (a topic, user or connection named
// "@batch") is held to PostToConnection's 128 KB limit, as the same call
// with a bearer token is. Authentication reads a signed body with the
// limit of the path (10 MB for anything ending in /@batch) and the handler
// then took that cached body without checking its own limit.
func TestSigV4BodyLimitFollowsTheCall(t *testing.T) {
	s := newSigV4Server(t, "tok-1")
	body := strings.Repeat("x", MaxPayloadBytes+1)
	for _, p := range []string{"/prod/@topics/@batch", "/@topics/@batch", "/prod/@users/@batch", "/@users/@batch", "/@connections/@batch"} {
		r := httptest.NewRequest("POST", p, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer tok-1")
		if status, typ, msg := serve(s, r); status != http.StatusRequestEntityTooLarge {
			t.Fatalf("bearer POST %s: %d %s %q, want 413", p, status, typ, msg)
		}
		sg := defaultSigned()
		sg.rawPath, sg.body = p, body
		if status, typ, msg := serve(s, sg.request(t)); status != http.StatusRequestEntityTooLarge || typ != "PayloadTooLargeException" {
			t.Errorf("signed POST %s with %d bytes: %d %s %q, want 413 PayloadTooLargeException", p, len(body), status, typ, msg)
		}
	}
}

// specSign signs r as the SigV4 specification describes, over exactly the
// headers named in signed (lower-case), the way signers other than
// aws-sdk-go-v2's choose them: the Java SDK v1 signs every header but
// Connection and X-Amzn-Trace-Id, User-Agent included.
func specSign(r *http.Request, canonicalURI, body string, signed []string) {
	sort.Strings(signed)
	var ch strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		switch h {
		case "host":
			v = r.Host
		case "transfer-encoding":
			v = strings.Join(r.TransferEncoding, ",")
		}
		ch.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	sum := sha256.Sum256([]byte(body))
	creq := strings.Join([]string{r.Method, canonicalURI, "", ch.String(), strings.Join(signed, ";"), hex.EncodeToString(sum[:])}, "\n")
	cs := sha256.Sum256([]byte(creq))
	date := testNow.Format("20060102")
	scope := date + "/us-east-1/execute-api/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + testNow.Format(amzDateFormat) + "\n" + scope + "\n" + hex.EncodeToString(cs[:])
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	k := mac(mac(mac(mac([]byte("AWS4"+testSecret), date), "us-east-1"), "execute-api"), "aws4_request")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testKeyID+"/"+scope+", SignedHeaders="+
		strings.Join(signed, ";")+", Signature="+hex.EncodeToString(mac(k, sts)))
}

// TestSigV4AnySignedHeader checks that a request is accepted whatever
// headers its signer chose to sign, as AWS accepts it: the verifier must
// sign exactly the headers the request names, including User-Agent,
// X-Amzn-Trace-Id, Expect and Transfer-Encoding, which aws-sdk-go-v2's own
// signer leaves out when it signs.
func TestSigV4AnySignedHeader(t *testing.T) {
	s := newSigV4Server(t)
	const body = `{"hello":"world"}`
	for _, extra := range [][]string{
		nil, // the control: what every signer signs
		{"content-type"},
		{"user-agent"},
		{"x-amzn-trace-id"},
		{"expect"},
		{"transfer-encoding"},
		{"user-agent", "content-type", "x-amzn-trace-id"},
	} {
		r := httptest.NewRequest("POST", "/prod/@connections/R1kmxc2VNjMCFIA%3D", strings.NewReader(body))
		r.Host = testHost
		r.Header.Set("X-Amz-Date", testNow.Format(amzDateFormat))
		r.Header.Set("Content-Type", "application/octet-stream")
		r.Header.Set("User-Agent", "aws-sdk-java/1.12.780 Linux/5.10 OpenJDK_64-Bit_Server_VM/21")
		r.Header.Set("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793")
		r.Header.Set("Expect", "100-continue")
		// As net/http hands a chunked body to a handler: not in Header.
		r.TransferEncoding, r.ContentLength = []string{"chunked"}, -1
		specSign(r, "/prod/%40connections/R1kmxc2VNjMCFIA%253D", body, append([]string{"host", "x-amz-date"}, extra...))
		if status, typ, msg := serve(s, r); status != http.StatusGone {
			t.Errorf("signed headers host;x-amz-date+%v: %d %s %q, want 410 (authenticated, unknown connection)", extra, status, typ, msg)
		}
	}
}
