package redact

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"

func TestMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"action":"send","token":"abc"}`, `{"action":"send","token":"[redacted]"}`},
		{`{"Authorization": "x y z", "n": 1}`, `{"Authorization": "[redacted]", "n": 1}`},
		{`{"refreshToken":12345,"ok":true}`, `{"refreshToken":"[redacted]","ok":true}`},
		{`{"session":{"id":"s1","user":"u"},"k":[1,2]}`, `{"session":"[redacted]","k":[1,2]}`},
		{`{"credentials":["a","b",{"c":"]"}],"x":"y"}`, `{"credentials":"[redacted]","x":"y"}`},
		{`[{"a":[{"X-API-KEY":"k1"}]},{"passwd":null}]`, `[{"a":[{"X-API-KEY":"[redacted]"}]},{"passwd":"[redacted]"}]`},
		{`{"api_key" : "k", "apikey":"k", "my_jwt":"j", "cookie":"c", "clientSecret":"s", "Password":"p"}`,
			`{"api_key" : "[redacted]", "apikey":"[redacted]", "my_jwt":"[redacted]", "cookie":"[redacted]", "clientSecret":"[redacted]", "Password":"[redacted]"}`},
		// An escaped key name is decoded before it is compared.
		{`{"to\u006Ben":"abc"}`, `{"to\u006Ben":"[redacted]"}`},
		// A quote escaped inside the value does not end it.
		{`{"secret":"a\"b","x":1}`, `{"secret":"[redacted]","x":1}`},
		// Unterminated values run to the end.
		{`{"token":"abc`, `{"token":"[redacted]"`},
		{`{"token":{"a":"b"`, `{"token":"[redacted]"`},
		{`{"token":`, `{"token":"[redacted]"`},
		{`{"token":abc def}`, `{"token":"[redacted]"}`},
		// Values that merely look like keys are left alone.
		{`{"note":"token","list":["password"]}`, `{"note":"token","list":["password"]}`},
		{`{"a":"` + jwt + `"}`, `{"a":"[redacted]"}`},
		{`Authorization: Bearer abc.def-ghi~/+=` + "\n", "Authorization: [redacted]\n"},
		{`bearer  x`, `[redacted]`},
		{`Bearer`, `Bearer`},
		{`Bearer `, `Bearer `},
		{`text ` + jwt + ` more`, `text [redacted] more`},
		{`unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. end`, `unsigned [redacted] end`},
		{`eyJ.x`, `eyJ.x`},
		{`eyJabc..`, `eyJabc..`},
		{`plain text`, `plain text`},
		{``, ``},
		{`"`, `"`},
		{`"\`, `"\`},
	} {
		if got := string(Message([]byte(tc.in))); got != tc.want {
			t.Errorf("Message(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// TestMessageEscapedSecrets checks that a JWT or bearer credential written
// with JSON escapes is found once the string is decoded.
func TestMessageEscapedSecrets(t *testing.T) {
	escaped := strings.Replace(jwt, "J", `\u004a`, 1)
	escaped = strings.Replace(escaped, "S", `\u0053`, 1)
	for _, in := range []string{
		`{"a":"` + escaped + `"}`,
		`{"a":"x\/y ` + escaped + `"}`,
		`{"a":"Be\u0061rer abcdef"}`,
		`["` + escaped,
	} {
		out := string(Message([]byte(in)))
		var v any
		if json.Unmarshal([]byte(out), &v) == nil {
			if b, _ := json.Marshal(v); strings.Contains(string(b), "abcdef") || strings.Contains(string(b), "eyJhbGci") {
				t.Errorf("Message(%s) = %s: the secret is still there once decoded", in, out)
			}
		}
		if strings.Contains(out, "c2lnbmF0dXJlLXZhbHVl") || strings.Contains(out, "abcdef") {
			t.Errorf("Message(%s) = %s: the secret is still there", in, out)
		}
	}
}

func TestMessageDoesNotModifyInput(t *testing.T) {
	in := []byte(`{"token":"abc","a":"` + jwt + `"}`)
	orig := bytes.Clone(in)
	_ = Message(in)
	if !bytes.Equal(in, orig) {
		t.Fatalf("input changed to %s", in)
	}
}

func TestMessageHuge(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 20000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":1,"token":"supersecretvalue","nested":{"deep":[{"password":"supersecretvalue"}]}}`)
	}
	b.WriteString(`]}`)
	out := Message([]byte(b.String()))
	if bytes.Contains(out, []byte("supersecretvalue")) {
		t.Fatal("a secret is left in a huge message")
	}
	if !json.Valid(out) {
		t.Fatal("redacting valid JSON made it invalid")
	}
	// Deep nesting costs no recursion.
	deep := strings.Repeat(`{"a":[`, 100000) + `{"token":"supersecretvalue"}` + strings.Repeat(`]}`, 100000)
	if bytes.Contains(Message([]byte(deep)), []byte("supersecretvalue")) {
		t.Fatal("a deeply nested secret is left")
	}
}

func TestSensitiveKey(t *testing.T) {
	for _, k := range []string{"token", "ACCESS_TOKEN", "x-api-key", "ApiKey", "sessionId", "setCookie", "JWT", "passwd", "Credential"} {
		if !SensitiveKey(k) {
			t.Errorf("%q is not sensitive", k)
		}
	}
	for _, k := range []string{"action", "message", "user", "pass", "key"} {
		if SensitiveKey(k) {
			t.Errorf("%q is sensitive", k)
		}
	}
	if !SensitiveKey(strings.Repeat("x", 200) + "Token") {
		t.Error("a long key is not checked whole")
	}
}

// noShapes fails when out still has a JWT or bearer shape.
func noShapes(t *testing.T, in, out []byte) {
	t.Helper()
	for i := range out {
		if end := secretAt(out, i); end > i {
			t.Fatalf("Message(%q) = %q still holds %q", in, out, out[i:end])
		}
	}
}

func FuzzMessage(f *testing.F) {
	for _, s := range []string{`{"token":"abc"}`, `{"a":[{"password":{"x":"]"}}]}`, `Bearer abc`, jwt,
		`{"to\u006ben":"x"}`, `{"a":"\ud83d\ude00 eyJ\u0061.b.c"}`, `"\`, `{"secret":`, `[[[[`} {
		f.Add([]byte(s), "prefix", "suffix")
	}
	f.Fuzz(func(t *testing.T, data []byte, prefix, suffix string) {
		out := Message(data)
		noShapes(t, data, out)
		if json.Valid(data) && !json.Valid(out) {
			t.Fatalf("Message(%q) = %q is not valid JSON", data, out)
		}

		// A secret planted in valid JSON, among the fuzzer's strings,
		// never comes out.
		const secret = "Zq9SECRETvalue"
		if strings.Contains(prefix+suffix, secret) {
			return
		}
		p, _ := json.Marshal(prefix)
		s, _ := json.Marshal(suffix)
		doc := `{"a":` + string(p) + `,"list":[1,{"Client_Secret":{"v":["` + secret + `"]}},` + string(s) + `],` +
			`"b":"Bearer ` + secret + `","c":"eyJ` + secret + `.x.y",` + string(p) + `:` + string(s) + `,"password":"` + secret + `"}`
		red := Message([]byte(doc))
		if bytes.Contains(red, []byte(secret)) {
			t.Fatalf("Message(%s) = %s lets the secret through", doc, red)
		}
		if !json.Valid(red) {
			t.Fatalf("Message(%s) = %s is not valid JSON", doc, red)
		}
	})
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://s3cr3tT0ken@127.0.0.1:4222":      "nats://127.0.0.1:4222",
		"nats://user:pw@127.0.0.1:4222":          "nats://127.0.0.1:4222",
		"redis://:pw@host:6379/0":                "redis://host:6379/0",
		"nats://127.0.0.1:4222":                  "nats://127.0.0.1:4222",
		"amqp://guest:guest@host:5672/vhost?x=1": "amqp://host:5672/vhost?x=1",
		"http://[::1]:%zz":                       "",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}
