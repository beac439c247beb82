package cfntemplate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wsgate/wsgate/internal/config"
)

// rateNode is a throttling setting as a flow mapping {rate: R, burst: B}.
func rateNode(r config.RateLimit) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	add(n, "rate", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: strconv.FormatFloat(r.Rate, 'g', -1, 64)})
	add(n, "burst", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(r.Burst)})
	return n
}

// YAML returns a complete wsgate configuration file equivalent to the
// template: a comment header naming the template and listing what it
// ignored, then the keys the template owns; every other key keeps its
// default. config.Parse accepts it, and serve runs it as it runs the
// template from the same current directory, to which local paths are
// written relative.
func (r *Result) YAML() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# wsgate configuration equivalent to the CloudFormation template %s\n", r.Template)
	fmt.Fprintf(&b, "# (stack %s, region %s, account %s). Every key not written here keeps its default.\n", r.StackName, r.Region, r.AccountID)
	if len(r.Ignored) > 0 {
		b.WriteString("#\n# Ignored, with no effect in wsgate:\n")
		for _, i := range r.Ignored {
			fmt.Fprintf(&b, "#   %s\n", strings.ReplaceAll(i.String(), "\n", " "))
		}
	}
	b.WriteString("\n")
	c := r.Config
	root := &yaml.Node{Kind: yaml.MappingNode}
	add(root, "stage", str(c.Stage))
	add(root, "api_id", str(c.APIID))
	add(root, "domain_name", str(c.DomainName))
	add(root, "route_selection_expression", str(c.RouteSelectionExpression))
	if len(c.StageVariables) > 0 {
		add(root, "stage_variables", strMap(c.StageVariables))
	}
	if c.Authorizer.Type != "" && c.Authorizer.Type != config.AuthNone {
		a := &yaml.Node{Kind: yaml.MappingNode}
		add(a, "type", str(string(c.Authorizer.Type)))
		if len(c.Authorizer.IdentitySources) > 0 {
			seq := &yaml.Node{Kind: yaml.SequenceNode}
			for _, s := range c.Authorizer.IdentitySources {
				seq.Content = append(seq.Content, str(s))
			}
			add(a, "identity_sources", seq)
		}
		if c.Authorizer.CacheTTL > 0 {
			add(a, "cache_ttl", str(duration(c.Authorizer.CacheTTL)))
		}
		add(a, "lambda", lambdaNode(c.Authorizer.Lambda))
		add(root, "authorizer", a)
	}
	if c.Throttling.Enabled() {
		add(root, "throttling", rateNode(c.Throttling))
	}
	routes := &yaml.Node{Kind: yaml.MappingNode}
	for _, key := range routeOrder(c.Routes) {
		route := c.Routes[key]
		rn := &yaml.Node{Kind: yaml.MappingNode}
		add(rn, "integration", integrationNode(route.Integration))
		if route.RouteResponse {
			add(rn, "route_response", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		}
		if route.Throttling.Enabled() {
			add(rn, "throttling", rateNode(route.Throttling))
		}
		if len(route.Models) > 0 {
			add(rn, "model_selection_expression", str(route.ModelSelectionExpression))
			models := &yaml.Node{Kind: yaml.MappingNode}
			for _, name := range slices.Sorted(maps.Keys(route.Models)) {
				add(models, name, schemaNode(route.Models[name].Doc))
			}
			add(rn, "models", models)
		}
		add(routes, key, rn)
	}
	add(root, "routes", routes)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		// Encoding nodes built above from strings cannot fail.
		panic(err)
	}
	enc.Close()
	return b.Bytes()
}

// schemaNode writes the schema doc as JSON, in YAML's flow style: JSON
// text is YAML, and numbers stay numbers.
func schemaNode(doc any) *yaml.Node {
	data, err := json.Marshal(doc)
	var n yaml.Node
	if err == nil {
		err = yaml.Unmarshal(data, &n)
	}
	if err != nil || len(n.Content) != 1 {
		// A schema decoded from the template always encodes.
		panic(fmt.Sprintf("schema does not encode: %v", err))
	}
	return n.Content[0]
}

// routeOrder lists $connect, $disconnect and $default first, then the
// custom keys in order.
func routeOrder(routes map[string]config.Route) []string {
	var keys []string
	for _, k := range []string{config.RouteConnect, config.RouteDisconnect, config.RouteDefault} {
		if _, ok := routes[k]; ok {
			keys = append(keys, k)
		}
	}
	var custom []string
	for k := range routes {
		if !strings.HasPrefix(k, "$") {
			custom = append(custom, k)
		}
	}
	slices.Sort(custom)
	return append(keys, custom...)
}

func integrationNode(in config.Integration) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	add(n, "type", str(string(in.Type)))
	if in.URL != "" {
		add(n, "url", str(in.URL))
	}
	if in.Payload != "" {
		add(n, "payload", str(string(in.Payload)))
	}
	if len(in.Headers) > 0 {
		add(n, "headers", strMap(in.Headers))
	}
	if in.Timeout > 0 {
		add(n, "timeout", str(duration(in.Timeout)))
	}
	if in.Type == config.IntegrationMock {
		if in.StatusCode != 0 {
			add(n, "status_code", num(in.StatusCode))
		}
		if in.Body != nil {
			add(n, "body", str(*in.Body))
		}
	}
	if in.Type == config.IntegrationLambda {
		add(n, "lambda", lambdaNode(in.Lambda))
	}
	for _, kv := range []struct{ key, val string }{
		{"region", in.Region}, {"credentials", in.Credentials}, {"queue_url", in.QueueURL}, {"topic_arn", in.TopicARN},
		{"message_group_id", in.MessageGroupID}, {"event_bus", in.EventBus}, {"source", in.Source}, {"detail_type", in.DetailType},
	} {
		if kv.val != "" {
			add(n, kv.key, str(kv.val))
		}
	}
	return n
}

func lambdaNode(l config.Lambda) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	if l.Command != "" {
		add(n, "command", str(localPath(l.Command)))
	}
	if l.Build != "" {
		add(n, "build", str(localPath(l.Build)))
	}
	if l.FunctionName != "" {
		add(n, "function_name", str(l.FunctionName))
	}
	if l.Name != "" {
		add(n, "name", str(l.Name))
	}
	if l.Region != "" {
		add(n, "region", str(l.Region))
	}
	if l.Timeout > 0 {
		add(n, "timeout", str(duration(l.Timeout)))
	}
	if l.MemorySize > 0 {
		add(n, "memory_size", num(l.MemorySize))
	}
	if len(l.Env) > 0 {
		add(n, "env", strMap(l.Env))
	}
	return n
}

// localPath writes an absolute path relative to the current directory, or
// leaves it absolute when it has no relative form (another volume).
func localPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	rel, err := filepath.Rel(wd, p)
	if err != nil {
		return p
	}
	if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return rel
	}
	return "." + string(filepath.Separator) + rel
}

// duration formats d without trailing zero units ("3s", "1m30s").
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}

func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func num(n int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(n)}
}

func strMap(m map[string]string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range sortedKeys(m) {
		add(n, k, str(m[k]))
	}
	return n
}
