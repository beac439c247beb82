package cfntemplate

import (
	"os"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

// FuzzParse: no template makes the loader panic or loop, and every template
// it accepts gives YAML that config.Parse accepts.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/seed/template.yaml", "testdata/json/template.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base))
	f.Add([]byte("Resources: {A: {Type: AWS::ApiGatewayV2::Api, Properties: {Name: !Sub '${A}${!x}${AWS::Region}'}}}"))
	f.Add([]byte("Conditions: {A: !Condition B, B: !Not [!Condition A]}\nResources: {}"))
	f.Add([]byte("x: &a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("testdata/seed/template.yaml", data, Options{})
		if err != nil {
			return
		}
		if _, err := config.Parse("imported.yaml", r.YAML()); err != nil {
			t.Fatalf("YAML of an accepted template does not parse: %v\n%s", err, r.YAML())
		}
	})
}
