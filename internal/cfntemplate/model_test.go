package cfntemplate

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

// modelsTemplate is base with a route validated by two models, one written
// as a JSON object and one as a JSON string, and a model no route uses.
const modelsTemplate = base + `  SendRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: send
      ModelSelectionExpression: $request.body.kind
      RequestModels:
        text: TextModel
        $default: AnyModel
      Target: !Join [/, [integrations, !Ref Mock]]
  TextModel:
    Type: AWS::ApiGatewayV2::Model
    Properties:
      ApiId: !Ref Api
      Name: TextModel
      ContentType: application/json
      Schema:
        $schema: http://json-schema.org/draft-04/schema#
        type: object
        required: [text]
        properties:
          text: {type: string, maxLength: 140}
          urgent: {type: boolean, default: false}
  AnyModel:
    Type: AWS::ApiGatewayV2::Model
    Properties:
      ApiId: !Ref Api
      Name: !Sub any-${Env}
      Schema: '{"type": "object", "minProperties": 1}'
  Spare:
    Type: AWS::ApiGatewayV2::Model
    Properties: {ApiId: !Ref Api, Name: Spare, Schema: {}}
`

func TestModels(t *testing.T) {
	text := strings.Replace(modelsTemplate, "$default: AnyModel", "$default: any-dev", 1)
	r := mustLoad(t, text, Options{})
	route := r.Config.Routes["send"]
	if route.ModelSelectionExpression != "$request.body.kind" {
		t.Errorf("model_selection_expression %q", route.ModelSelectionExpression)
	}
	want := map[string]config.Schema{
		"text": {Doc: map[string]any{
			"$schema":  "http://json-schema.org/draft-04/schema#",
			"type":     "object",
			"required": []any{"text"},
			"properties": map[string]any{
				"text":   map[string]any{"type": "string", "maxLength": json.Number("140")},
				"urgent": map[string]any{"type": "boolean", "default": false},
			},
		}},
		"$default": {Doc: map[string]any{"type": "object", "minProperties": json.Number("1")}},
	}
	if !reflect.DeepEqual(route.Models, want) {
		t.Errorf("models\n got %#v\nwant %#v", route.Models, want)
	}
	ignored := map[string]string{}
	for _, i := range r.Ignored {
		ignored[i.LogicalID+"."+i.Property] = i.Reason
	}
	if !strings.Contains(ignored["Spare."], "no route's RequestModels names it") {
		t.Errorf("the unused model is not listed as ignored: %v", r.Ignored)
	}
	if _, ok := ignored["TextModel."]; ok {
		t.Errorf("a used model is listed as ignored: %v", r.Ignored)
	}

	// The merged configuration validates, and the YAML wsgate import
	// prints parses to the same models.
	if _, err := Merge(nil, r); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	c, err := config.Parse("imported.yaml", r.YAML())
	if err != nil {
		t.Fatalf("the imported YAML does not parse: %v\n%s", err, r.YAML())
	}
	if got := c.Routes["send"]; got.ModelSelectionExpression != route.ModelSelectionExpression || !reflect.DeepEqual(got.Models, want) {
		t.Errorf("imported route %#v", got)
	}
}

// A static ModelSelectionExpression of $default checks every message
// against the $default model.
func TestModelsStaticDefault(t *testing.T) {
	text := strings.Replace(modelsTemplate, "ModelSelectionExpression: $request.body.kind", "ModelSelectionExpression: $default", 1)
	text = strings.Replace(text, "$default: AnyModel", "$default: any-dev", 1)
	r := mustLoad(t, text, Options{})
	if got := r.Config.Routes["send"].ModelSelectionExpression; got != `\$default` {
		t.Fatalf("model_selection_expression %q", got)
	}
	if _, err := Merge(nil, r); err != nil {
		t.Fatalf("Merge: %v", err)
	}
}

// Without a ModelSelectionExpression AWS validates nothing: the
// RequestModels are listed as ignored and the route has no models.
func TestRequestModelsWithoutExpression(t *testing.T) {
	text := strings.Replace(modelsTemplate, "      ModelSelectionExpression: $request.body.kind\n", "", 1)
	r := mustLoad(t, text, Options{})
	if len(r.Config.Routes["send"].Models) != 0 {
		t.Fatalf("models %v", r.Config.Routes["send"].Models)
	}
	found := false
	for _, i := range r.Ignored {
		found = found || i.LogicalID == "SendRoute" && i.Property == "RequestModels" && strings.Contains(i.Reason, "validates nothing")
	}
	if !found {
		t.Fatalf("RequestModels not listed as ignored: %v", r.Ignored)
	}
}

func TestModelErrors(t *testing.T) {
	tests := []struct {
		name, old, new string
		// line is the template line of the error, path its path, msg a
		// part of its message.
		line      int
		path, msg string
	}{
		{"unknown model name", "$default: AnyModel", "$default: Nope", 29,
			"Resources.SendRoute.Properties.RequestModels.$default", "Nope names no AWS::ApiGatewayV2::Model of the template"},
		{"expression without models", "      RequestModels:\n        text: TextModel\n        $default: AnyModel\n", "", 28,
			"Resources.SendRoute.Properties.ModelSelectionExpression", "without RequestModels no model matches"},
		{"schema string not JSON", `'{"type": "object", "minProperties": 1}'`, `'{"type": '`, 51,
			"Resources.AnyModel.Properties.Schema", "the string is not a JSON document"},
		{"content type", "ContentType: application/json", "ContentType: text/plain", 38,
			"Resources.TextModel.Properties.ContentType", `"text/plain": wsgate validates JSON message bodies only`},
		{"duplicate name", "Name: Spare", "Name: TextModel", 54,
			"Resources.Spare.Properties.Name", `model name "TextModel" is used twice (first by TextModel)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(strings.Replace(modelsTemplate, "$default: AnyModel", "$default: any-dev", 1), strings.Replace(tt.old, "AnyModel", "any-dev", 1), tt.new, 1)
			if text == modelsTemplate {
				t.Fatal("the replacement changed nothing")
			}
			path := writeTemplate(t, text)
			_, err := Load(path, Options{})
			if err == nil {
				t.Fatalf("no error\n%s", numbered(text))
			}
			prefix := path + ":" + strconv.Itoa(tt.line) + ": " + tt.path + ": "
			if !strings.Contains(err.Error(), prefix) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got\n%v\nwant %q ... %q\n%s", err, prefix, tt.msg, numbered(text))
			}
		})
	}
}

// A model that does not compile is reported at the template's line of the
// model's Schema.
func TestModelDoesNotCompile(t *testing.T) {
	text := strings.Replace(modelsTemplate, "$default: AnyModel", "$default: any-dev", 1)
	text = strings.Replace(text, "required: [text]", "required: text", 1)
	path := writeTemplate(t, text)
	_, err := Load(path, Options{})
	if err == nil || !strings.Contains(err.Error(), path+":39: routes.send.models.text: not a valid JSON Schema: /required: want array, got string") {
		t.Fatalf("Load: %v\n%s", err, numbered(text))
	}
}
