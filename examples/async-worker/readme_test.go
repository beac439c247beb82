package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

// TestREADMEConfigs checks that the configurations the repository's README
// gives for running this worker are valid, and that the worker's command
// lines there name the route's stream, or its exchange and routing key.
func TestREADMEConfigs(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "\n### Async replies through a worker\n")
	if start < 0 {
		t.Fatal(`README.md has no section "Async replies through a worker"`)
	}
	section := readme[start+1:]
	section = section[:strings.Index(section, "\n## ")]

	nats := regexp.MustCompile("(?s)cat > async.yaml <<'YAML'\n(.*?)\nYAML\n").FindStringSubmatch(section)
	routes := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(section, -1)
	if nats == nil || len(routes) != 2 {
		t.Fatal("the section lacks the nats config (cat > async.yaml) or the redis and amqp routes (two yaml blocks)")
	}
	natsCfg := parseValid(t, nats[1])
	// The redis and amqp routes replace the nats one in async.yaml.
	natsRoutes := nats[1][:strings.Index(nats[1], "management:")]
	redisCfg := parseValid(t, strings.Replace(nats[1], natsRoutes, routes[0][1], 1))
	amqpCfg := parseValid(t, strings.Replace(nats[1], natsRoutes, routes[1][1], 1))
	amqpRoute := amqpCfg.Routes["$default"].Integration
	// The worker declares a durable topic exchange, as the route must.
	if amqpRoute.Type != "amqp" || !amqpRoute.Declare || amqpRoute.ExchangeType != "" && amqpRoute.ExchangeType != "topic" {
		t.Errorf("the amqp route %+v does not declare a topic exchange", amqpRoute)
	}

	for _, c := range []struct {
		cfg  *config.Config
		want string
	}{
		{natsCfg, "go run ./examples/async-worker -broker nats -stream " + natsCfg.Routes["$default"].Integration.Stream},
		{redisCfg, "go run ./examples/async-worker -broker redis -stream " + redisCfg.Routes["$default"].Integration.Stream},
		{amqpCfg, "./async-worker -broker amqp -queue work -declare -exchange " + amqpRoute.Exchange + " -routing-key " + amqpRoute.RoutingKey},
	} {
		if !strings.Contains(section, c.want) {
			t.Errorf("the section does not run %q", c.want)
		}
	}
}

func parseValid(t *testing.T, yamlText string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("README.md", []byte(yamlText))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("README config:\n%s\n%v", yamlText, err)
	}
	return cfg
}
