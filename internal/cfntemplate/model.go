package cfntemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/wsgate/wsgate/internal/config"
)

const typeModel = "AWS::ApiGatewayV2::Model"

var modelProps = map[string]string{
	"ApiId": "", "Name": "", "Schema": "", "ContentType": "", "Description": "",
}

// model records the AWS::ApiGatewayV2::Model r by its Name, the name a
// route's RequestModels gives.
func (b *builder) model(r *resource) {
	b.props(r, modelProps)
	b.apiID(r)
	name, ok := b.str(r, "Name", true)
	if !ok {
		return
	}
	if ct, ok := b.str(r, "ContentType", false); ok && ct != "" && ct != "application/json" {
		b.t.errorf(r.keyLine("ContentType"), propPath(r, "ContentType"), "%q: wsgate validates JSON message bodies only (application/json)", ct)
	}
	if first, dup := b.models[name]; dup {
		b.t.errorf(r.keyLine("Name"), propPath(r, "Name"), "model name %q is used twice (first by %s)", name, first.id)
		return
	}
	b.models[name] = r
}

// schema returns the Schema of the model resource r as JSON values: the
// property is a JSON object in the template, or a string holding one.
func (b *builder) schema(r *resource) (any, bool) {
	p, set := r.props["Schema"]
	if !set {
		b.t.errorf(r.line, propPath(r, "Schema"), "required")
		return nil, false
	}
	v, ok := b.t.jsonEval(p.val, propPath(r, "Schema"))
	if !ok {
		return nil, false
	}
	if s, isStr := v.(string); isStr {
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		dec.UseNumber()
		var doc any
		err := dec.Decode(&doc)
		if err == nil {
			// One document, as a model file: text after it would be
			// dropped silently.
			if _, terr := dec.Token(); terr != io.EOF {
				err = errors.New("text after the JSON value")
			}
		}
		if err != nil {
			b.t.errorf(p.key.Line, propPath(r, "Schema"), "the string is not a JSON document: %v", err)
			return nil, false
		}
		return doc, true
	}
	return v, true
}

// routeModels maps the RequestModels and ModelSelectionExpression of the
// route r, with route key key and configuration path path, to route.
func (b *builder) routeModels(r *resource, key, path string, route *config.Route) {
	t := b.t
	mse, ok := b.str(r, "ModelSelectionExpression", false)
	if !ok {
		return
	}
	v, set, ok := b.value(r, "RequestModels")
	if !ok {
		return
	}
	if !set {
		if mse != "" {
			t.errorf(r.keyLine("ModelSelectionExpression"), propPath(r, "ModelSelectionExpression"),
				"without RequestModels no model matches, and AWS refuses every message; add RequestModels (with a $default model) or remove it")
		}
		return
	}
	names, isMap := v.(map[string]any)
	if !isMap {
		t.errorf(r.keyLine("RequestModels"), propPath(r, "RequestModels"), "want a mapping of model selection keys to model names, got %s", kind(v))
		return
	}
	if mse == "" {
		// AWS validates with a model selection expression only.
		t.ignore(Ignored{LogicalID: r.id, Type: r.typ, Property: "RequestModels", Line: r.keyLine("RequestModels"),
			Reason: "without ModelSelectionExpression API Gateway validates nothing"})
		return
	}
	if mse == "$default" {
		// A static key: every message is checked against the $default
		// model. wsgate's expressions spell a literal dollar "\$".
		mse = `\$default`
	}
	route.ModelSelectionExpression = mse
	b.line(path+".model_selection_expression", r.keyLine("ModelSelectionExpression"))
	b.line(path+".models", r.keyLine("RequestModels"))
	route.Models = map[string]config.Schema{}
	for _, sel := range slices.Sorted(maps.Keys(names)) {
		name, isStr := names[sel].(string)
		m := b.models[name]
		if !isStr || m == nil {
			t.errorf(r.keyLine("RequestModels"), propPath(r, "RequestModels")+"."+sel, "%v names no AWS::ApiGatewayV2::Model of the template (by its Name)", names[sel])
			continue
		}
		b.used[m.id] = true
		doc, ok := b.schema(m)
		if !ok {
			continue
		}
		route.Models[sel] = config.Schema{Doc: doc}
		b.line(path+".models."+sel, m.keyLine("Schema"))
	}
}

// jsonEval evaluates n as eval does, except that scalars written in the
// template keep their JSON type: numbers become json.Number and booleans
// bool, as a JSON Schema needs them.
func (t *template) jsonEval(n *yaml.Node, path string) (any, bool) {
	n = resolve(n)
	if n == nil {
		t.errorf(0, path, "an alias that leads nowhere")
		return nil, false
	}
	if _, _, is := intrinsic(n); is {
		return t.eval(n, path)
	}
	if t.steps++; t.steps > maxSteps {
		if t.steps == maxSteps+1 {
			t.errorf(n.Line, path, "the template expands to more than %d values (aliases?)", maxSteps)
		}
		return nil, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!bool":
			var v bool
			if n.Decode(&v) == nil {
				return v, true
			}
		case "!!int":
			var v int64
			if n.Decode(&v) == nil {
				return json.Number(strconv.FormatInt(v, 10)), true
			}
		case "!!float":
			var v float64
			if n.Decode(&v) == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
				return json.Number(strconv.FormatFloat(v, 'g', -1, 64)), true
			}
		default:
			return n.Value, true
		}
		t.errorf(n.Line, path, "%s is not a JSON value", n.Value)
		return nil, false
	case yaml.SequenceNode, yaml.MappingNode:
		return t.evalChildren(n, path, t.jsonEval)
	}
	t.errorf(n.Line, path, "unexpected value")
	return nil, false
}
