package cfntemplate

import (
	"strconv"
	"strings"
	"testing"
)

// TestModelSchemaStringTrailingData: a Schema string is one JSON document,
// as a model file is (and as API Gateway parses it): text after the first
// value is an error at the Schema's line, not silently dropped.
func TestModelSchemaStringTrailingData(t *testing.T) {
	for _, bad := range []string{`'{"type": "object"} {"required": ["x"]}'`, `'{"type": "object"}}'`, `'{"type": "object"} junk'`} {
		text := strings.Replace(modelsTemplate, "$default: AnyModel", "$default: any-dev", 1)
		text = strings.Replace(text, `'{"type": "object", "minProperties": 1}'`, bad, 1)
		path := writeTemplate(t, text)
		_, err := Load(path, Options{})
		prefix := path + ":" + strconv.Itoa(51) + ": Resources.AnyModel.Properties.Schema: the string is not a JSON document"
		if err == nil || !strings.Contains(err.Error(), prefix) {
			t.Errorf("Schema %s: err = %v, want %q", bad, err, prefix)
		}
	}
}
