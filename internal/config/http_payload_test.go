package config

import (
	"strings"
	"testing"
)

func TestHTTPPayload(t *testing.T) {
	ok := "routes:\n  $default:\n    integration: {type: http, url: 'http://127.0.0.1:1/', payload: body}\n"
	c, err := Parse("w.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Routes["$default"].Integration.Payload; p != PayloadBody {
		t.Errorf("payload = %q, want body", p)
	}
	bad := "routes:\n  $default:\n    integration:\n      type: http\n      url: 'http://127.0.0.1:1/'\n      payload: raw\n"
	_, err = Parse("w.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), `w.yaml:6: routes.$default.integration.payload: unknown payload "raw"`) {
		t.Errorf("got %v, want an unknown payload error at line 6", err)
	}
}
