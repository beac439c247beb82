package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/wsgate/wsgate/internal/route"
)

// Default is the model a Set falls back on when its selection expression
// yields no key it has, as API Gateway's "$default" request model.
const Default = "$default"

// schemaURL is the base URL of every compiled model. Relative references
// resolve against it and reach refuseLoader.
const schemaURL = "wsgate:///model.json"

// Schema is a compiled JSON Schema. Safe for concurrent use.
type Schema struct {
	s *jsonschema.Schema
}

// Compile compiles doc, a schema decoded from JSON or YAML: maps with string
// keys, slices, strings, bools, nil and numbers (json.Number, float64 or any
// integer type). A schema without "$schema" is draft 4. A reference to
// another document is an error, as is anything the draft's meta-schema
// rejects.
func Compile(doc any) (*Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, compileError(err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, compileError(err)
	}
	return &Schema{s: s}, nil
}

// DraftName names the JSON Schema draft Compile validates doc as, in the
// form of AsyncAPI's schemaFormat versions: "draft-04" (also without
// "$schema"), "draft-06", "draft-07", "2019-09" or "2020-12" (also for
// "http://json-schema.org/schema", the latest draft). It follows the
// library's reading of "$schema": http or https, with an empty fragment or
// none.
func DraftName(doc any) string {
	m, _ := doc.(map[string]any)
	s, _ := m["$schema"].(string)
	u := strings.TrimSuffix(s, "#")
	if rest, ok := strings.CutPrefix(u, "http://"); ok {
		u = rest
	} else {
		u = strings.TrimPrefix(u, "https://")
	}
	switch u {
	case "json-schema.org/schema", "json-schema.org/draft/2020-12/schema":
		return "2020-12"
	case "json-schema.org/draft/2019-09/schema":
		return "2019-09"
	case "json-schema.org/draft-07/schema":
		return "draft-07"
	case "json-schema.org/draft-06/schema":
		return "draft-06"
	}
	return "draft-04"
}

// CompileJSON compiles the schema document data, a JSON text (a model
// file).
func CompileJSON(data []byte) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a JSON document: %w", err)
	}
	return Compile(doc)
}

// errRemoteRef is the cause of a schema referring to another document.
var errRemoteRef = errors.New("references to other documents are not followed; put the definitions in the model itself (\"definitions\" or \"$defs\") and refer to them as \"#/definitions/name\"")

// refuseLoader is the compiler's loader for every document that is not the
// model itself or a meta-schema: it refuses them all, so that building a
// configuration never reads a file or reaches the network through a $ref.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) { return nil, errRemoteRef }

// compileError turns an error of the compiler into one that names what is
// wrong without the internal schema URL.
func compileError(err error) error {
	var le *jsonschema.LoadURLError
	if errors.As(err, &le) {
		return fmt.Errorf("$ref %q: %w", strings.TrimPrefix(le.URL, "wsgate:///"), errRemoteRef)
	}
	var se *jsonschema.SchemaValidationError
	if errors.As(err, &se) {
		return fmt.Errorf("not a valid JSON Schema: %s", detail(se.Err))
	}
	msg := strings.ReplaceAll(err.Error(), schemaURL, "the model")
	return errors.New(msg)
}

// detail lists the leaf causes of a validation error, one per failure.
func detail(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	var parts []string
	leaves(ve, &parts)
	return strings.Join(parts, "; ")
}

func leaves(ve *jsonschema.ValidationError, out *[]string) {
	if len(ve.Causes) == 0 {
		*out = append(*out, describe(ve))
		return
	}
	for _, c := range ve.Causes {
		leaves(c, out)
	}
}

// describe says what failed at one place of the instance, without the
// instance's values: a message may carry secrets, and the description is
// logged (access log $context.error.validationErrorString).
func describe(ve *jsonschema.ValidationError) string {
	at := "/" + strings.Join(ve.InstanceLocation, "/")
	var what string
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		what = "missing properties " + strings.Join(k.Missing, ", ")
	case *kind.AdditionalProperties:
		what = "additional properties not allowed: " + strings.Join(k.Properties, ", ")
	case *kind.Type:
		what = fmt.Sprintf("want %s, got %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.MinLength:
		what = fmt.Sprintf("length %d is below minLength %d", k.Got, k.Want)
	case *kind.MaxLength:
		what = fmt.Sprintf("length %d is over maxLength %d", k.Got, k.Want)
	case *kind.MinItems:
		what = fmt.Sprintf("%d items, below minItems %d", k.Got, k.Want)
	case *kind.MaxItems:
		what = fmt.Sprintf("%d items, over maxItems %d", k.Got, k.Want)
	case *kind.MinProperties:
		what = fmt.Sprintf("%d properties, below minProperties %d", k.Got, k.Want)
	case *kind.MaxProperties:
		what = fmt.Sprintf("%d properties, over maxProperties %d", k.Got, k.Want)
	case *kind.FalseSchema:
		what = "not allowed"
	default:
		kw := ve.ErrorKind.KeywordPath()
		if len(kw) == 0 {
			what = "invalid"
		} else {
			what = "fails " + kw[len(kw)-1]
		}
	}
	return at + ": " + what
}

// Set is the request validation of one route: a single model, or models
// chosen by a selection expression. Safe for concurrent use.
type Set struct {
	single *Schema
	expr   *route.Expression
	models map[string]*Schema
}

// Single returns the Set that validates every message against s.
func Single(s *Schema) *Set { return &Set{single: s} }

// Selected returns the Set that validates a message against the model
// whose name expr yields for it, else against the Default model, else
// refuses the message, as API Gateway does.
func Selected(expr *route.Expression, models map[string]*Schema) *Set {
	return &Set{expr: expr, models: models}
}

// maxDetail bounds the length of an Invalid's Detail.
const maxDetail = 1024

// Invalid is the error of a message that fails its route's validation.
type Invalid struct {
	// Model is the name of the model the message was checked against, or
	// "" when none was selected or the Set has a single model.
	Model string
	// Detail says what failed, without the message's values, at most
	// 1 KiB.
	Detail string
}

func (e *Invalid) Error() string { return "bad request body: " + e.Detail }

// Validate checks the message body data: nil when it is valid, else an
// *Invalid. A body that is not JSON is invalid, and so is one the
// validator library fails on (it panics): the message is refused, the
// process goes on.
func (s *Set) Validate(data []byte) (err error) {
	defer func() {
		if recover() != nil {
			err = &Invalid{Detail: "the body could not be validated"}
		}
	}()
	sch, name := s.single, ""
	if sch == nil {
		key, found := s.expr.Evaluate(data)
		if m, ok := s.models[key]; ok && found {
			sch, name = m, key
		} else if m, ok := s.models[Default]; ok {
			sch, name = m, Default
		} else {
			return &Invalid{Detail: "no model matches the selection expression and there is no $default model"}
		}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &Invalid{Model: name, Detail: "the body is not JSON"}
	}
	if at, ok := numbersInRange(doc, nil); !ok {
		return &Invalid{Model: name, Detail: truncate("/"+strings.Join(at, "/")+": number out of range", maxDetail)}
	}
	if err := sch.s.Validate(doc); err != nil {
		return &Invalid{Model: name, Detail: truncate(detail(err), maxDetail)}
	}
	return nil
}

// maxMagnitude bounds the decimal exponent of a message's numbers: a
// nonzero number must be at least 1e-1000 and below 1e+1001 in absolute
// value; a message with another gets the Bad request body frame.
// The validator compares numbers as exact fractions (math/big), expanding
// the exponent: 1e999999 costs tens of milliseconds for each keyword that
// looks at it, so a message of thousands of them would take hours, and
// beyond 10^±1000000 math/big gives up and the validator dereferences nil.
// 1e±1000 is far beyond what any JSON number library reads as a float64
// (1e±308) and costs microseconds.
const maxMagnitude = 1000

// numbersInRange reports whether every number of doc, a document decoded
// with json.Number, is within maxMagnitude; if not, it returns the
// instance location of the first that is not. at is the location of doc.
func numbersInRange(doc any, at []string) ([]string, bool) {
	switch v := doc.(type) {
	case json.Number:
		if !numberInRange(string(v)) {
			return at, false
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if loc, ok := numbersInRange(v[k], append(at, k)); !ok {
				return loc, false
			}
		}
	case []any:
		for i, e := range v {
			if loc, ok := numbersInRange(e, append(at, strconv.Itoa(i))); !ok {
				return loc, false
			}
		}
	}
	return nil, true
}

// numberInRange reports whether the JSON number n is zero or has a
// magnitude within 10^±maxMagnitude.
func numberInRange(n string) bool {
	n = strings.TrimPrefix(n, "-")
	mant, exp, hasExp := strings.Cut(strings.ToLower(n), "e")
	e := 0
	if hasExp {
		exp = strings.TrimLeft(strings.TrimPrefix(exp, "+"), "0")
		neg := strings.HasPrefix(exp, "-")
		exp = strings.TrimLeft(strings.TrimPrefix(exp, "-"), "0")
		if len(exp) > 9 {
			// Beyond what math/big reads, even for zero.
			return false
		}
		e, _ = strconv.Atoi("0" + exp)
		if neg {
			e = -e
		}
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	if strings.Trim(digits, "0") == "" {
		return true // zero, whatever its exponent
	}
	// The number is 0.D × 10^mag with D's first digit nonzero.
	mag := len(intPart) - (len(intPart+frac) - len(digits)) + e
	return mag > -maxMagnitude && mag <= maxMagnitude+1
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-3]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}
