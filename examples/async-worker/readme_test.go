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
// lines there name the route's stream.
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
	redis := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(section)
	if nats == nil || redis == nil {
		t.Fatal("the section lacks the nats config (cat > async.yaml) or the redis route (a yaml block)")
	}
	natsCfg := parseValid(t, nats[1])
	// The redis route replaces the nats one in async.yaml.
	redisCfg := parseValid(t, strings.Replace(nats[1], nats[1][:strings.Index(nats[1], "management:")], redis[1], 1))

	for _, c := range []struct {
		cfg  *config.Config
		want string
	}{
		{natsCfg, "go run ./examples/async-worker -broker nats -stream " + natsCfg.Routes["$default"].Integration.Stream},
		{redisCfg, "go run ./examples/async-worker -broker redis -stream " + redisCfg.Routes["$default"].Integration.Stream},
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
