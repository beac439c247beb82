package cfntemplate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/wsgate/wsgate/internal/config"
)

// Options are the values a deployment gives a template.
type Options struct {
	// Parameters override the defaults of the template's Parameters, by
	// name. Naming a parameter the template does not declare is an error.
	Parameters map[string]string

	// Region is AWS::Region and the region of the ARNs, endpoints and local
	// functions. Default "us-east-1".
	Region string

	// AccountID is AWS::AccountId. Default "000000000000", the account
	// wsgate uses everywhere else.
	AccountID string

	// StackName is AWS::StackName; it seeds the API id and names functions
	// that set no FunctionName. Default: the base name of the template's
	// directory, keeping only A-Z, a-z, 0-9 and "-".
	StackName string
}

// Result is the wsgate configuration a template describes.
type Result struct {
	// Config holds the keys the template owns — stage, api_id,
	// domain_name, route_selection_expression, stage_variables, authorizer,
	// routes and throttling — and nothing else; its defaults are not
	// filled.
	Config *config.Config

	// Ignored lists the resources, and the properties of supported
	// resources, that have no effect in wsgate, each with the reason.
	Ignored []Ignored

	// Template is the template's path as given to Load.
	Template string

	// Region, AccountID and StackName are the values the template was
	// resolved with.
	Region, AccountID, StackName string

	// lines maps a dotted config key path to the template line it comes
	// from, so that problems found in the merged configuration point at the
	// template.
	lines map[string]int
}

// Ignored is a resource, or a property of a supported resource, that wsgate
// does not act on.
type Ignored struct {
	// LogicalID and Type name the resource.
	LogicalID string
	Type      string
	// Property is the property path under Properties, or "" when the whole
	// resource is ignored.
	Property string
	// Line is the template line of the resource or property.
	Line int
	// Reason says why it has no effect.
	Reason string
}

// String formats i as "LogicalID (Type)[.Property]: Reason".
func (i Ignored) String() string {
	s := i.LogicalID + " (" + i.Type + ")"
	if i.Property != "" {
		s += " " + i.Property
	}
	return s + ": " + i.Reason
}

// maxTemplateBytes is CloudFormation's own limit on a template read from
// S3, far above any WebSocket API's.
const maxTemplateBytes = 1 << 20

// Load reads the template at path and returns the configuration it
// describes. Every problem is returned at once, joined with errors.Join,
// each a *config.Error naming path, the line and the template key path.
func Load(path string, opts Options) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading template: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse is Load for a template already read; path names it in errors and
// relative code directories are resolved against its directory.
func Parse(path string, data []byte, opts Options) (*Result, error) {
	if len(data) > maxTemplateBytes {
		return nil, &config.Error{File: path, Msg: fmt.Sprintf("template larger than %d bytes", maxTemplateBytes)}
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccountID == "" {
		opts.AccountID = "000000000000"
	}
	if opts.StackName == "" {
		opts.StackName = defaultStackName(path)
	}
	t := &template{
		file: path, dir: filepath.Dir(path), opts: opts,
		params: map[string]any{}, conds: map[string]*condition{},
		res: map[string]*resource{}, ids: map[string]string{},
		result: &Result{Config: &config.Config{}, Template: path, Region: opts.Region,
			AccountID: opts.AccountID, StackName: opts.StackName, lines: map[string]int{}},
	}
	if !regionPattern.MatchString(opts.Region) {
		t.errorf(0, "", "region %q is not an AWS region name such as us-east-1", opts.Region)
	}
	if !regexp.MustCompile(`^[0-9]{12}$`).MatchString(opts.AccountID) {
		t.errorf(0, "", "account id %q must be 12 digits", opts.AccountID)
	}
	if !stackNamePattern.MatchString(opts.StackName) {
		t.errorf(0, "", "stack name %q must start with a letter and hold only A-Z, a-z, 0-9 and -, at most 128 characters", opts.StackName)
	}
	if len(t.errs) > 0 {
		return nil, t.join()
	}
	root, err := parseDocument(path, data)
	if err != nil {
		return nil, err
	}
	t.load(root)
	if len(t.errs) > 0 {
		return nil, t.join()
	}
	// The configuration the template describes must be valid on its own;
	// its problems are reported at the template's lines.
	if _, err := Merge(nil, t.result); err != nil {
		return nil, err
	}
	return t.result, nil
}

var (
	regionPattern    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)
	stackNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)
)

// defaultStackName is the base name of the directory holding path, keeping
// only the characters a stack name may hold.
func defaultStackName(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	var b strings.Builder
	for _, r := range filepath.Base(filepath.Dir(abs)) {
		if r < 128 && (r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	s := strings.TrimLeft(b.String(), "-0123456789")
	if s == "" {
		return "stack"
	}
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// parseDocument parses data, YAML or JSON, into the root mapping of its only
// document.
func parseDocument(path string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &config.Error{File: path, Msg: "the template is empty"}
		}
		return nil, syntaxError(path, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(path, err)
		}
		return nil, &config.Error{File: path, Line: next.Line, Msg: "a second YAML document starts here; a template is a single document"}
	}
	if len(doc.Content) == 0 {
		return nil, &config.Error{File: path, Msg: "the template is empty"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &config.Error{File: path, Line: root.Line, Msg: "a template must be a mapping with a Resources section"}
	}
	return root, nil
}

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(path string, err error) error {
	msg := err.Error()
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		return &config.Error{File: path, Line: line, Msg: m[2]}
	}
	return &config.Error{File: path, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// template is the state of one Load.
type template struct {
	file string
	dir  string
	opts Options
	errs []*config.Error

	params   map[string]any
	mappings *yaml.Node
	conds    map[string]*condition
	globals  *yaml.Node // Globals.Function
	res      map[string]*resource
	order    []string // logical ids in template order
	// ids maps a physical id (an API, integration, authorizer or route id)
	// to the logical id of its resource.
	ids map[string]string

	result *Result
	// depth bounds the nesting of intrinsic functions, steps the values
	// evaluated.
	depth, steps int
}

// resource is one entry of Resources.
type resource struct {
	id    string
	typ   string
	line  int
	node  *yaml.Node
	props map[string]prop
	// cond is the name of the resource's Condition, or "".
	cond     string
	condLine int
	// ref is what !Ref of the resource gives.
	ref string
	// active is false when the resource's condition is false.
	active bool
	// globalKeys marks the properties a function takes from Globals.
	globalKeys map[string]bool
}

// prop is one property of a resource.
type prop struct {
	key *yaml.Node
	val *yaml.Node
}

// condition is one entry of Conditions, evaluated once when first used.
type condition struct {
	node  *yaml.Node
	state int // 0 not evaluated, 1 evaluating, 2 done
	value bool
}

func (t *template) errorf(line int, path, format string, args ...any) {
	t.errs = append(t.errs, &config.Error{File: t.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// join orders the problems by line and joins them.
func (t *template) join() error {
	slices.SortStableFunc(t.errs, func(a, b *config.Error) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = 1 << 30
		}
		if lb == 0 {
			lb = 1 << 30
		}
		return la - lb
	})
	seen := map[string]bool{}
	var list []error
	for _, e := range t.errs {
		if s := e.Error(); !seen[s] {
			seen[s] = true
			list = append(list, e)
		}
	}
	return errors.Join(list...)
}

// entries returns the keys and values of the mapping n in order, reporting
// keys that are not strings and duplicates.
func (t *template) entries(n *yaml.Node, path string) []prop {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []prop
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode {
			t.errorf(n.Content[i].Line, path, "a key must be a string")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			t.errorf(k.Line, joinPath(path, k.Value), "duplicate key (first set at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, prop{k, n.Content[i+1]})
	}
	return out
}

// load reads the sections of the template root.
func (t *template) load(root *yaml.Node) {
	sections := map[string]prop{}
	for _, e := range t.entries(root, "") {
		switch e.key.Value {
		case "AWSTemplateFormatVersion", "Description", "Metadata", "Outputs", "Rules":
			// Outputs, Rules and metadata describe a deployment, not the API.
		case "Transform":
			t.transform(e)
		case "Parameters", "Mappings", "Conditions", "Globals", "Resources":
			sections[e.key.Value] = e
		default:
			t.errorf(e.key.Line, e.key.Value, "unknown template section %q", e.key.Value)
		}
	}
	t.parameters(sections["Parameters"])
	if m, ok := sections["Mappings"]; ok {
		if resolve(m.val).Kind != yaml.MappingNode {
			t.errorf(m.key.Line, "Mappings", "must be a mapping")
		} else {
			t.mappings = resolve(m.val)
		}
	}
	if c, ok := sections["Conditions"]; ok {
		for _, e := range t.entries(c.val, "Conditions") {
			t.conds[e.key.Value] = &condition{node: e.val}
		}
	}
	t.readGlobals(sections["Globals"])
	r, ok := sections["Resources"]
	if !ok {
		t.errorf(0, "Resources", "the template has no Resources section")
		return
	}
	t.readResources(r)
	if len(t.errs) > 0 {
		return
	}
	t.build()
}

func (t *template) transform(e prop) {
	v := resolve(e.val)
	var names []*yaml.Node
	switch v.Kind {
	case yaml.ScalarNode:
		names = []*yaml.Node{v}
	case yaml.SequenceNode:
		names = v.Content
	}
	if len(names) == 0 {
		t.errorf(e.key.Line, "Transform", "must be AWS::Serverless-2016-10-31")
	}
	for _, n := range names {
		if n = resolve(n); n.Kind != yaml.ScalarNode || n.Value != "AWS::Serverless-2016-10-31" {
			t.errorf(n.Line, "Transform", "transform %s is not supported; only AWS::Serverless-2016-10-31 (SAM) is", describe(n))
		}
	}
}

// parameters resolves each declared parameter from the overrides or its
// Default.
func (t *template) parameters(sec prop) {
	declared := map[string]bool{}
	for _, e := range t.entries(sec.val, "Parameters") {
		name := e.key.Value
		path := "Parameters." + name
		declared[name] = true
		var typ, def string
		hasDefault := false
		var allowed []string
		allowedLine := 0
		noEcho := false
		for _, f := range t.entries(e.val, path) {
			fv := resolve(f.val)
			switch f.key.Value {
			case "Type":
				typ = fv.Value
			case "Default":
				if fv.Kind == yaml.SequenceNode {
					var items []string
					for _, it := range fv.Content {
						items = append(items, resolve(it).Value)
					}
					def = strings.Join(items, ",")
				} else if fv.Kind == yaml.ScalarNode {
					def = fv.Value
				}
				hasDefault = true
			case "AllowedValues":
				allowedLine = f.key.Line
				if fv.Kind != yaml.SequenceNode {
					t.errorf(f.key.Line, path+".AllowedValues", "must be a list")
				}
				for _, it := range fv.Content {
					allowed = append(allowed, resolve(it).Value)
				}
			case "NoEcho":
				noEcho = fv.Kind == yaml.ScalarNode && strings.EqualFold(fv.Value, "true")
			case "Description", "ConstraintDescription", "AllowedPattern", "MinLength", "MaxLength", "MinValue", "MaxValue":
			default:
				t.errorf(f.key.Line, path+"."+f.key.Value, "unknown parameter attribute %q", f.key.Value)
			}
		}
		value, given := t.opts.Parameters[name]
		if !given {
			value = def
		}
		if !given && !hasDefault {
			t.errorf(e.key.Line, path, "has no Default and no value was given; pass -parameter %s=VALUE", name)
			continue
		}
		// The value of a NoEcho parameter is a secret: it is not repeated.
		shown := fmt.Sprintf("value %q", value)
		if noEcho {
			shown = "the value (NoEcho)"
		}
		if allowed != nil && !slices.Contains(allowed, value) {
			t.errorf(allowedLine, path+".AllowedValues", "%s is not one of %s", shown, strings.Join(allowed, ", "))
			continue
		}
		switch typ {
		case "String":
			t.params[name] = value
		case "Number":
			if !numberPattern.MatchString(value) {
				t.errorf(e.key.Line, path, "%s is not a number", shown)
				continue
			}
			t.params[name] = value
		case "CommaDelimitedList", "List<Number>":
			list := []any{}
			for _, s := range strings.Split(value, ",") {
				list = append(list, strings.TrimSpace(s))
			}
			t.params[name] = list
		case "":
			t.errorf(e.key.Line, path, "has no Type")
		default:
			t.errorf(e.key.Line, path+".Type", "parameter type %q is not supported; use String, Number or CommaDelimitedList", typ)
		}
	}
	for _, name := range sortedKeys(t.opts.Parameters) {
		if !declared[name] {
			t.errorf(sec.line(), "Parameters", "-parameter %s names no parameter of the template", name)
		}
	}
}

var numberPattern = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// readGlobals keeps Globals.Function; the other sections configure resource
// types wsgate does not run.
func (t *template) readGlobals(sec prop) {
	for _, e := range t.entries(sec.val, "Globals") {
		switch e.key.Value {
		case "Function":
			t.globals = resolve(e.val)
			for _, f := range t.entries(e.val, "Globals.Function") {
				switch reason, ok := functionProps[f.key.Value]; {
				case !ok:
					t.errorf(f.key.Line, "Globals.Function."+f.key.Value, "property %q is not supported", f.key.Value)
				case reason != "":
					t.ignore(Ignored{LogicalID: "Globals", Type: "Globals.Function", Property: f.key.Value, Line: f.key.Line, Reason: reason})
				}
			}
		case "Api", "HttpApi", "SimpleTable", "LayerVersion", "StateMachine":
			t.ignore(Ignored{LogicalID: "Globals", Type: "Globals." + e.key.Value, Line: e.key.Line,
				Reason: "it configures SAM resources wsgate does not run"})
		default:
			t.errorf(e.key.Line, "Globals."+e.key.Value, "unknown Globals section %q", e.key.Value)
		}
	}
}

// readResources records every resource, its Condition and the ids !Ref
// gives for it.
func (t *template) readResources(sec prop) {
	for _, e := range t.entries(sec.val, "Resources") {
		id := e.key.Value
		path := "Resources." + id
		if !logicalIDPattern.MatchString(id) {
			t.errorf(e.key.Line, path, "a logical id must be 1 to 255 letters and digits")
			continue
		}
		r := &resource{id: id, line: e.key.Line, node: resolve(e.val), props: map[string]prop{}, active: true}
		if r.node.Kind != yaml.MappingNode {
			t.errorf(e.key.Line, path, "a resource must be a mapping with a Type")
			continue
		}
		for _, f := range t.entries(r.node, path) {
			switch f.key.Value {
			case "Type":
				r.typ = resolve(f.val).Value
			case "Properties":
				for _, p := range t.entries(f.val, path+".Properties") {
					r.props[p.key.Value] = p
				}
			case "Condition":
				if c := resolve(f.val); c.Kind != yaml.ScalarNode || c.Value == "" || c.ShortTag() == "!!null" ||
					strings.HasPrefix(c.Tag, "!") && !strings.HasPrefix(c.Tag, "!!") {
					t.errorf(f.key.Line, path+".Condition", "must be the name of a condition of Conditions, got %s", describe(c))
					continue
				}
				r.cond, r.condLine = resolve(f.val).Value, f.key.Line
			case "DependsOn", "Metadata", "DeletionPolicy", "UpdateReplacePolicy", "CreationPolicy", "UpdatePolicy":
			default:
				t.errorf(f.key.Line, path+"."+f.key.Value, "unknown resource attribute %q", f.key.Value)
			}
		}
		if r.typ == "" {
			t.errorf(e.key.Line, path+".Type", "the resource has no Type")
			continue
		}
		t.res[id] = r
		t.order = append(t.order, id)
	}
	for _, id := range t.order {
		r := t.res[id]
		if r.cond != "" {
			v, ok := t.condition(r.cond, r.condLine, "Resources."+id+".Condition")
			r.active = ok && v
		}
		if strings.HasPrefix(r.typ, "AWS::ApiGatewayV2::") && r.typ != typeStage {
			ref, _ := t.refOf(r, r.line, "Resources."+id)
			t.ids[ref] = id
		}
	}
}

var logicalIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,255}$`)

// line returns the line of p's key, or 0 for an absent section.
func (p prop) line() int {
	if p.key == nil {
		return 0
	}
	return p.key.Line
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == 100 {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
		}
		n = n.Alias
	}
	if n == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return n
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return fmt.Sprintf("%q", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (t *template) ignore(i Ignored) {
	t.result.Ignored = append(t.result.Ignored, i)
}
