package integration

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// slowProxyResponse is parseProxyResponse without its quick path: the
// general decoding the quick path must agree with.
func slowProxyResponse(body []byte) (*Response, bool, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false, nil
	}
	return decodeProxyResponse(trimmed)
}

// proxyBodies are answers of backends, proxy responses and others.
var proxyBodies = []string{
	`{"statusCode":200,"body":"{\"action\":\"x\",\"seq\":\"0000000042\"}"}`,
	`{"statusCode":200,"body":"hi","headers":{"Content-Type":"text/plain","X-A":"1","X-A":"2"},"isBase64Encoded":false}`,
	` {"statusCode" : 201 , "body" : "AAE=" , "isBase64Encoded" : true } `,
	`{"statusCode":204}`, `{"statusCode":599,"body":""}`, `{"statusCode":100,"headers":{}}`,
	`{"statusCode":200,"body":"esc \" \\ \/ \b \f \n \r \t \u00e9 \u2028 \u0000 é 😀"}`,
	`{"body":"x","statusCode":200}`,
	// Left to the general path, which decides.
	`{"statusCode":200,"body":"\ud83d\ude00"}`, `{"statusCode":200,"body":"\udc00"}`,
	`{"statusCode":200,"body":null}`, `{"statusCode":200,"headers":null}`, `{"statusCode":200,"isBase64Encoded":null}`,
	`{"statusCode":200,"multiValueHeaders":{"A":["1","2"]}}`, `{"statusCode":200,"Body":"case"}`,
	`{"statusCode":200,"cookies":["a=1"]}`, `{"statusCode":200.0}`, `{"statusCode":2e2}`, `{"statusCode":"200"}`,
	`{"statusCode":99}`, `{"statusCode":600}`, `{"statusCode":0200}`, `{"statusCode":-200}`, `{"statusCode":2000}`,
	`{"statusCode":200,"statusCode":201}`, `{"statusCode":200,"body":"a","body":"b"}`,
	`{"statusCode":200,"body":"bad \xff utf-8"}`, `{"statusCode":200,"body":"ctl ` + "\x01" + `"}`,
	`{"statusCode":200,}`, `{"statusCode":200`, `{"statusCode":200} x`, `{"statusCode":200}{}`, `{}`, `{"body":"no status"}`,
	`{"statusCode":200,"headers":{"a":1}}`, `{"statusCode":200,"headers":{"a":"1",}}`, `{"statusCode":200,"body":"\x"}`,
	`{"statusCode":200,"body":"\u12"}`, `{"statusCode":200,"body":"unterminated}`, `{"stat\u0075sCode":200}`,
	`[1,2]`, `"text"`, `plain text`, ``, `{"statusCode":200,"isBase64Encoded":tru}`, `{"statusCode":200,"isBase64Encoded":false1}`,
}

func TestQuickProxyResponseAgrees(t *testing.T) {
	quick := 0
	for _, body := range proxyBodies {
		checkQuickProxyResponse(t, []byte(body))
		if _, ok := quickProxyResponse([]byte(strings.TrimSpace(body))); ok {
			quick++
		}
	}
	// The common shapes take the quick path.
	if quick < 8 {
		t.Errorf("the quick path decoded %d of the bodies, want at least the first 8", quick)
	}
	for _, body := range proxyBodies[:8] {
		if _, ok := quickProxyResponse([]byte(strings.TrimSpace(body))); !ok {
			t.Errorf("quick path refused %s", body)
		}
	}
}

// checkQuickProxyResponse fails t when the quick path decodes body other
// than the general decoding does.
func checkQuickProxyResponse(t *testing.T, body []byte) {
	t.Helper()
	want, wantOK, wantErr := slowProxyResponse(body)
	got, ok, err := parseProxyResponse(body)
	if ok != wantOK || (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q: parseProxyResponse = %+v, %v, %v; general decoding = %+v, %v, %v", body, got, ok, err, want, wantOK, wantErr)
	}
}

func FuzzQuickProxyResponse(f *testing.F) {
	for _, b := range proxyBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkQuickProxyResponse(t, body)
	})
}

func BenchmarkParseProxyResponse(b *testing.B) {
	body := []byte(`{"statusCode":200,"body":"{\"action\":\"x\",\"seq\":\"0000000042\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}"}`)
	for name, parse := range map[string]func([]byte) (*Response, bool, error){"encoding/json": slowProxyResponse, "quick": parseProxyResponse} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := parse(body); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
