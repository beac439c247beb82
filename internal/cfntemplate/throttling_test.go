package cfntemplate

import (
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

// throttled is base with a $connect and a $disconnect route and a stage
// whose route settings are settings.
func throttled(settings string) string {
	return base + `  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $connect, Target: !Join [/, [integrations, !Ref Mock]]}
  DisconnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $disconnect, Target: !Join [/, [integrations, !Ref Mock]]}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: prod
` + settings
}

func TestStageRouteSettingsBecomeThrottling(t *testing.T) {
	text := throttled(`      DefaultRouteSettings:
        ThrottlingRateLimit: 50
        ThrottlingBurstLimit: 100
        LoggingLevel: INFO
      RouteSettings:
        $connect: {ThrottlingBurstLimit: 5}
        $default: {ThrottlingRateLimit: 2.5, ThrottlingBurstLimit: 3, DetailedMetricsEnabled: true}
        $disconnect: {ThrottlingRateLimit: 1, ThrottlingBurstLimit: 1}
`)
	r := mustLoad(t, text, Options{})
	c := r.Config
	if c.Throttling != (config.RateLimit{Rate: 50, Burst: 100}) {
		t.Errorf("throttling %+v; want the DefaultRouteSettings", c.Throttling)
	}
	for key, want := range map[string]config.RateLimit{
		"$connect":    {Rate: 10000, Burst: 5}, // the rate left out is AWS's account-level one
		"$default":    {Rate: 2.5, Burst: 3},
		"$disconnect": {},
	} {
		if got := c.Routes[key].Throttling; got != want {
			t.Errorf("routes.%s.throttling %+v; want %+v", key, got, want)
		}
	}
	ignored := map[string]string{}
	for _, i := range r.Ignored {
		ignored[i.LogicalID+"."+i.Property] = i.Reason
	}
	for key, reason := range map[string]string{
		"Stage.DefaultRouteSettings.LoggingLevel":             "its own log",
		"Stage.RouteSettings.$default.DetailedMetricsEnabled": "by route",
		"Stage.RouteSettings.$disconnect":                     "does not throttle $disconnect",
	} {
		if !strings.Contains(ignored[key], reason) {
			t.Errorf("%s: ignored with %q; want a reason mentioning %q (all: %v)", key, ignored[key], reason, r.Ignored)
		}
	}

	// The configuration runs, and `wsgate import` writes the same
	// throttling.
	merged, err := Merge(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := config.Parse("import.yaml", r.YAML())
	if err != nil {
		t.Fatalf("the imported YAML does not parse: %v\n%s", err, r.YAML())
	}
	if parsed.Throttling != merged.Throttling {
		t.Errorf("imported throttling %+v; merged %+v", parsed.Throttling, merged.Throttling)
	}
	for key, rt := range merged.Routes {
		if parsed.Routes[key].Throttling != rt.Throttling {
			t.Errorf("imported routes.%s.throttling %+v; merged %+v", key, parsed.Routes[key].Throttling, rt.Throttling)
		}
	}
}

func TestRouteSettingsErrors(t *testing.T) {
	tests := []struct {
		name, settings, want string
	}{
		{"rate 0", "      DefaultRouteSettings: {ThrottlingRateLimit: 0, ThrottlingBurstLimit: 10}\n",
			"Resources.Stage.Properties.DefaultRouteSettings.ThrottlingRateLimit: 0 makes AWS refuse every request"},
		{"burst 0", "      RouteSettings:\n        $default: {ThrottlingRateLimit: 1, ThrottlingBurstLimit: 0}\n",
			"Resources.Stage.Properties.RouteSettings.$default.ThrottlingBurstLimit: 0 makes AWS refuse every request"},
		{"burst not whole", "      DefaultRouteSettings: {ThrottlingBurstLimit: 1.5}\n",
			`Resources.Stage.Properties.DefaultRouteSettings.ThrottlingBurstLimit: want a whole number, got "1.5"`},
		{"rate not a number", "      DefaultRouteSettings: {ThrottlingRateLimit: fast}\n",
			`Resources.Stage.Properties.DefaultRouteSettings.ThrottlingRateLimit: want a number, got "fast"`},
		{"negative", "      DefaultRouteSettings: {ThrottlingRateLimit: -1}\n",
			"Resources.Stage.Properties.DefaultRouteSettings.ThrottlingRateLimit: must not be negative"},
		{"unknown setting", "      DefaultRouteSettings: {ThrottlingRate: 5}\n",
			"Resources.Stage.Properties.DefaultRouteSettings.ThrottlingRate: property ThrottlingRate of route settings is not supported"},
		{"route not in the template", "      RouteSettings:\n        chat: {ThrottlingRateLimit: 1, ThrottlingBurstLimit: 1}\n",
			`Resources.Stage.Properties.RouteSettings.chat: the API has no route "chat"`},
		{"settings not a mapping", "      RouteSettings: [1]\n",
			"Resources.Stage.Properties.RouteSettings: want a mapping of route keys to route settings, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := throttled(tt.settings)
			_, err := Load(writeTemplate(t, text), Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load: %v; want an error containing %q\n%s", err, tt.want, numbered(text))
			}
			// The problem names the template line of the setting.
			line := strings.Count(text[:strings.Index(text, "RouteSettings")], "\n") + 1
			if !strings.Contains(err.Error(), "template.yaml:"+strconv.Itoa(line)+": ") {
				t.Errorf("error %v does not name line %d", err, line)
			}
		})
	}
}

func TestMergeRefusesThrottlingBesideATemplate(t *testing.T) {
	r := mustLoad(t, throttled("      DefaultRouteSettings: {ThrottlingRateLimit: 5, ThrottlingBurstLimit: 5}\n"), Options{})
	file, err := config.Parse("wsgate.yaml", []byte("listen: :7000\nthrottling: {rate: 1, burst: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Merge(file, r)
	if err == nil || !strings.Contains(err.Error(), "wsgate.yaml:2: throttling: set by the template") {
		t.Fatalf("Merge: %v; want the file's throttling refused at its line", err)
	}
}
