// Package asyncapitest checks documents against the official AsyncAPI
// 3.0.0 JSON Schema, for the tests of the packages that write or serve
// them.
package asyncapitest

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// schemaJSON is the AsyncAPI 3.0.0 schema of @asyncapi/specs (see
// testdata/README.md).
//
//go:embed testdata/asyncapi-3.0.0.json
var schemaJSON []byte

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("asyncapi-3.0.0.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("asyncapi-3.0.0.json")
})

// ValidateJSON reports whether data, a JSON document, is a valid AsyncAPI
// 3.0.0 document: nil, or the schema's errors.
func ValidateJSON(data []byte) error {
	sch, err := compiled()
	if err != nil {
		return fmt.Errorf("compiling the AsyncAPI schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(doc)
}

// ValidateYAML is ValidateJSON for a YAML document.
func ValidateYAML(data []byte) error {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return err
	}
	sch, err := compiled()
	if err != nil {
		return fmt.Errorf("compiling the AsyncAPI schema: %w", err)
	}
	return sch.Validate(v)
}
