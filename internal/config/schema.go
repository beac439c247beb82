package config

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"

	"gopkg.in/yaml.v3"
)

var schemaType = reflect.TypeFor[Schema]()

// maxSchemaNodes bounds the values of one inline schema, counting those
// that aliases repeat, so that nested aliases cannot make decoding take
// exponential time.
const maxSchemaNodes = 100000

// decodeSchema stores in v, a Schema, the schema written at n: a mapping
// (or any JSON value) is the schema itself, a string the path of a file
// holding it.
func (d *decoder) decodeSchema(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		v.Set(reflect.ValueOf(Schema{File: n.Value}))
		return
	}
	budget := maxSchemaNodes
	doc, ok := d.jsonValue(n, path, &budget)
	if !ok {
		d.failed = append(d.failed, path)
		return
	}
	v.Set(reflect.ValueOf(Schema{Doc: doc}))
}

// jsonValue converts n to the JSON value it spells, reporting what JSON
// cannot hold (non-string keys, infinities, timestamps).
func (d *decoder) jsonValue(n *yaml.Node, path string, budget *int) (any, bool) {
	n = resolve(n)
	if n == nil {
		d.errorf(0, path, "an alias that leads nowhere")
		return nil, false
	}
	if *budget--; *budget < 0 {
		if *budget == -1 {
			d.errorf(n.Line, path, "the schema holds more than %d values", maxSchemaNodes)
		}
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		ok := true
		for _, e := range d.entries(n, path) {
			v, vok := d.jsonValue(e.val, path, budget)
			ok = ok && vok
			out[e.key.Value] = v
		}
		return out, ok
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for _, item := range n.Content {
			v, vok := d.jsonValue(item, path, budget)
			ok = ok && vok
			out = append(out, v)
		}
		return out, ok
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				return b, true
			}
		case "!!str":
			return n.Value, true
		case "!!int":
			var i int64
			if n.Decode(&i) == nil {
				return json.Number(strconv.FormatInt(i, 10)), true
			}
			var u uint64
			if n.Decode(&u) == nil {
				return json.Number(strconv.FormatUint(u, 10)), true
			}
		case "!!float":
			var f float64
			if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), true
			}
		}
		d.errorf(n.Line, path, "%s is not a JSON value", describe(n))
		return nil, false
	}
	d.errorf(n.Line, path, "%s is not a JSON value", describe(n))
	return nil, false
}
