package redact

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMessageJSONInsideString checks that a JSON document carried as a
// string value (encoded twice, as API Gateway's "body" and many clients'
// envelopes carry it) has the values of its sensitive keys redacted too:
// the string's escapes are decoded before its keys are compared, as they
// are before it is searched for JWTs.
func TestMessageJSONInsideString(t *testing.T) {
	inner := `{"action":"login","password":"hunter2-secret","sessionId":"s-secret"}`
	once, _ := json.Marshal(map[string]string{"body": inner})
	twice, _ := json.Marshal(map[string]string{"envelope": string(once)})
	for _, in := range []string{string(once), string(twice), `["` + strings.ReplaceAll(inner, `"`, `\"`)} {
		out := string(Message([]byte(in)))
		if strings.Contains(out, "secret") {
			t.Errorf("Message(%s)\n = %s: a sensitive key's value is left", in, out)
		}
		if json.Valid([]byte(in)) && !json.Valid([]byte(out)) {
			t.Errorf("Message(%s) = %s: no longer valid JSON", in, out)
		}
		if !strings.Contains(out, "login") {
			t.Errorf("Message(%s) = %s: more than the secrets went", in, out)
		}
	}
}
