package cfntemplate

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A resolved template value is a string (numbers and booleans keep their
// text), a bool (a condition), a []any, a map[string]any, nil (a YAML
// null) or noValue.

// noValueType is the type of noValue.
type noValueType struct{}

// noValue is AWS::NoValue: the property or list item holding it is removed.
var noValue = noValueType{}

// maxDepth bounds the nesting of intrinsic functions and of references
// between resources' names.
const maxDepth = 64

// maxSteps bounds the values one Load evaluates, so that YAML aliases
// cannot make it take exponential time.
const maxSteps = 200000

// intrinsic reports whether n is an intrinsic function call — a short-form
// tag such as !Ref or a one-key mapping such as {"Fn::Sub": …} — and returns
// its full name ("Ref", "Fn::Sub", "Condition") and argument node.
func intrinsic(n *yaml.Node) (name string, arg *yaml.Node, ok bool) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name = n.Tag[1:]
		if name != "Ref" && name != "Condition" {
			name = "Fn::" + name
		}
		a := *n
		a.Tag = ""
		a.Style &^= yaml.TaggedStyle
		if a.Kind == yaml.ScalarNode {
			a.Tag = "!!str"
		}
		return name, &a, true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := resolve(n.Content[0])
		if k.Kind == yaml.ScalarNode && (k.Value == "Ref" || strings.HasPrefix(k.Value, "Fn::")) {
			return k.Value, resolve(n.Content[1]), true
		}
	}
	return "", nil, false
}

// eval resolves the value node n found at the template key path. On a
// problem it records an error and returns ok false.
func (t *template) eval(n *yaml.Node, path string) (v any, ok bool) {
	n = resolve(n)
	if t.steps++; t.steps > maxSteps {
		if t.steps == maxSteps+1 {
			t.errorf(n.Line, path, "the template expands to more than %d values (aliases?)", maxSteps)
		}
		return nil, false
	}
	if t.depth >= maxDepth {
		t.errorf(n.Line, path, "intrinsic functions nested deeper than %d", maxDepth)
		return nil, false
	}
	t.depth++
	defer func() { t.depth-- }()
	if name, arg, is := intrinsic(n); is {
		return t.call(name, arg, n.Line, path)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return nil, true
		}
		return n.Value, true
	case yaml.SequenceNode, yaml.MappingNode:
		return t.evalChildren(n, path, t.eval)
	}
	t.errorf(n.Line, path, "unexpected value")
	return nil, false
}

// evalChildren evaluates with each the items of the sequence or the values
// of the mapping n found at path, leaving out those that evaluate to
// noValue.
func (t *template) evalChildren(n *yaml.Node, path string, each func(*yaml.Node, string) (any, bool)) (any, bool) {
	ok := true
	if n.Kind == yaml.SequenceNode {
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			v, itemOK := each(item, fmt.Sprintf("%s[%d]", path, i))
			ok = ok && itemOK
			if v != noValue {
				out = append(out, v)
			}
		}
		return out, ok
	}
	out := map[string]any{}
	for _, e := range t.entries(n, path) {
		v, itemOK := each(e.val, joinPath(path, e.key.Value))
		ok = ok && itemOK
		if v != noValue {
			out[e.key.Value] = v
		}
	}
	return out, ok
}

// call evaluates the intrinsic function name with the argument node arg.
func (t *template) call(name string, arg *yaml.Node, line int, path string) (any, bool) {
	fn := strings.TrimPrefix(name, "Fn::")
	args := func(min, max int) ([]*yaml.Node, bool) {
		if arg.Kind != yaml.SequenceNode || len(arg.Content) < min || len(arg.Content) > max {
			want := fmt.Sprintf("%d", min)
			if max > min {
				want = fmt.Sprintf("%d to %d", min, max)
			}
			t.errorf(line, path, "%s takes a list of %s arguments, got %s", name, want, describe(arg))
			return nil, false
		}
		return arg.Content, true
	}
	str := func(n *yaml.Node, what string) (string, bool) {
		v, ok := t.eval(n, path)
		if !ok {
			return "", false
		}
		s, isStr := v.(string)
		if !isStr {
			t.errorf(resolve(n).Line, path, "%s: %s must be a string, got %s", name, what, kind(v))
			return "", false
		}
		return s, true
	}
	list := func(n *yaml.Node, what string) ([]any, bool) {
		v, ok := t.eval(n, path)
		if !ok {
			return nil, false
		}
		l, isList := v.([]any)
		if !isList {
			t.errorf(resolve(n).Line, path, "%s: %s must be a list, got %s", name, what, kind(v))
			return nil, false
		}
		return l, true
	}
	switch name {
	case "Ref":
		if arg.Kind != yaml.ScalarNode {
			t.errorf(line, path, "Ref takes the name of a parameter or resource, got %s", describe(arg))
			return nil, false
		}
		return t.ref(arg.Value, line, path)
	case "Condition":
		if arg.Kind != yaml.ScalarNode {
			t.errorf(line, path, "Condition takes the name of a condition")
			return nil, false
		}
		return t.condition(arg.Value, line, path)
	}
	switch fn {
	case "GetAtt":
		var res, attr string
		switch arg.Kind {
		case yaml.ScalarNode:
			var found bool
			res, attr, found = strings.Cut(arg.Value, ".")
			if !found {
				t.errorf(line, path, "Fn::GetAtt takes RESOURCE.ATTRIBUTE, got %q", arg.Value)
				return nil, false
			}
		default:
			a, ok := args(2, 2)
			if !ok {
				return nil, false
			}
			if r := resolve(a[0]); r.Kind == yaml.ScalarNode {
				res = r.Value
			}
			s, ok := str(a[1], "the attribute name")
			if !ok {
				return nil, false
			}
			attr = s
		}
		return t.getAtt(res, attr, line, path)
	case "Sub":
		return t.sub(arg, line, path)
	case "Join":
		a, ok := args(2, 2)
		if !ok {
			return nil, false
		}
		delim, ok1 := str(a[0], "the delimiter")
		items, ok2 := list(a[1], "the second argument")
		if !ok1 || !ok2 {
			return nil, false
		}
		parts := make([]string, 0, len(items))
		for _, it := range items {
			s, isStr := it.(string)
			if !isStr {
				t.errorf(line, path, "Fn::Join: every item must be a string, got %s", kind(it))
				return nil, false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, delim), true
	case "Select":
		a, ok := args(2, 2)
		if !ok {
			return nil, false
		}
		idx, ok1 := str(a[0], "the index")
		items, ok2 := list(a[1], "the second argument")
		if !ok1 || !ok2 {
			return nil, false
		}
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= len(items) {
			t.errorf(line, path, "Fn::Select: index %q is not within the list of %d", idx, len(items))
			return nil, false
		}
		return items[i], true
	case "Split":
		a, ok := args(2, 2)
		if !ok {
			return nil, false
		}
		delim, ok1 := str(a[0], "the delimiter")
		s, ok2 := str(a[1], "the source")
		if !ok1 || !ok2 {
			return nil, false
		}
		if delim == "" {
			t.errorf(line, path, "Fn::Split: the delimiter is empty")
			return nil, false
		}
		var out []any
		for _, p := range strings.Split(s, delim) {
			out = append(out, p)
		}
		return out, true
	case "If":
		a, ok := args(3, 3)
		if !ok {
			return nil, false
		}
		c := resolve(a[0])
		if c.Kind != yaml.ScalarNode {
			t.errorf(line, path, "Fn::If: the first argument must be a condition name")
			return nil, false
		}
		v, ok := t.condition(c.Value, c.Line, path)
		if !ok {
			return nil, false
		}
		if v {
			return t.eval(a[1], path)
		}
		return t.eval(a[2], path)
	case "Equals":
		a, ok := args(2, 2)
		if !ok {
			return nil, false
		}
		x, ok1 := t.eval(a[0], path)
		y, ok2 := t.eval(a[1], path)
		if !ok1 || !ok2 {
			return nil, false
		}
		return fmt.Sprint(x) == fmt.Sprint(y), true
	case "Not", "And", "Or":
		min, max := 2, 10
		if fn == "Not" {
			min, max = 1, 1
		}
		a, ok := args(min, max)
		if !ok {
			return nil, false
		}
		result := fn == "And"
		for _, c := range a {
			b, ok := t.boolean(c, path)
			if !ok {
				return nil, false
			}
			switch fn {
			case "Not":
				result = !b
			case "And":
				result = result && b
			case "Or":
				result = result || b
			}
		}
		return result, true
	case "FindInMap":
		a, ok := args(3, 4)
		if !ok {
			return nil, false
		}
		if len(a) == 4 {
			// CloudFormation takes {DefaultValue: VALUE} there only
			// under the AWS::LanguageExtensions transform, which a
			// template here cannot name.
			t.errorf(line, path, "Fn::FindInMap with a fourth argument (DefaultValue) needs the AWS::LanguageExtensions transform, which is not supported; give three arguments")
			return nil, false
		}
		var keys [3]string
		for i := range keys {
			if keys[i], ok = str(a[i], "a key"); !ok {
				return nil, false
			}
		}
		return t.findInMap(keys, line, path)
	case "Base64":
		s, ok := str(arg, "the argument")
		if !ok {
			return nil, false
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), true
	case "GetAZs":
		s, ok := str(arg, "the region")
		if !ok {
			return nil, false
		}
		if s == "" {
			s = t.opts.Region
		}
		return []any{s + "a", s + "b", s + "c"}, true
	}
	t.errorf(line, path, "%s is not supported", name)
	return nil, false
}

// boolean evaluates a condition operand: a condition function or
// {Condition: NAME}.
func (t *template) boolean(n *yaml.Node, path string) (bool, bool) {
	n = resolve(n)
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 && resolve(n.Content[0]).Value == "Condition" {
		return t.condition(resolve(n.Content[1]).Value, n.Line, path)
	}
	v, ok := t.eval(n, path)
	if !ok {
		return false, false
	}
	b, isBool := v.(bool)
	if !isBool {
		if s, isStr := v.(string); isStr && (s == "true" || s == "false") {
			return s == "true", true
		}
		t.errorf(n.Line, path, "want a condition (Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition), got %s", kind(v))
		return false, false
	}
	return b, true
}

// condition returns the value of the named entry of Conditions.
func (t *template) condition(name string, line int, path string) (bool, bool) {
	c, ok := t.conds[name]
	if !ok {
		t.errorf(line, path, "condition %q is not defined in Conditions", name)
		return false, false
	}
	switch c.state {
	case 1:
		t.errorf(line, path, "condition %q depends on itself", name)
		return false, false
	case 2:
		return c.value, true
	}
	c.state = 1
	v, ok := t.boolean(c.node, "Conditions."+name)
	c.state, c.value = 2, v
	return v, ok
}

func (t *template) findInMap(keys [3]string, line int, path string) (any, bool) {
	if t.mappings == nil {
		t.errorf(line, path, "Fn::FindInMap: the template has no Mappings")
		return nil, false
	}
	n := t.mappings
	for i, k := range keys {
		var next *yaml.Node
		for _, e := range t.entries(n, "Mappings") {
			if e.key.Value == k {
				next = resolve(e.val)
			}
		}
		if next == nil {
			t.errorf(line, path, "Fn::FindInMap: Mappings.%s has no key %q", strings.Join(keys[:i], "."), k)
			return nil, false
		}
		n = next
	}
	return t.eval(n, "Mappings."+strings.Join(keys[:], "."))
}

// sub evaluates Fn::Sub: a string, or a list of a string and a mapping of
// variables.
func (t *template) sub(arg *yaml.Node, line int, path string) (any, bool) {
	var text string
	vars := map[string]any{}
	switch arg.Kind {
	case yaml.ScalarNode:
		text = arg.Value
	case yaml.SequenceNode:
		if len(arg.Content) != 2 || resolve(arg.Content[0]).Kind != yaml.ScalarNode {
			t.errorf(line, path, "Fn::Sub takes a string, or a list of a string and a mapping of variables")
			return nil, false
		}
		text = resolve(arg.Content[0]).Value
		v, ok := t.eval(arg.Content[1], path)
		if !ok {
			return nil, false
		}
		m, isMap := v.(map[string]any)
		if !isMap {
			t.errorf(line, path, "Fn::Sub: the variables must be a mapping")
			return nil, false
		}
		vars = m
	default:
		t.errorf(line, path, "Fn::Sub takes a string, or a list of a string and a mapping of variables")
		return nil, false
	}
	var b strings.Builder
	ok := true
	for {
		i := strings.Index(text, "${")
		if i < 0 {
			b.WriteString(text)
			break
		}
		b.WriteString(text[:i])
		text = text[i+2:]
		if strings.HasPrefix(text, "!") {
			b.WriteString("${")
			text = text[1:]
			continue
		}
		j := strings.IndexByte(text, '}')
		if j < 0 {
			t.errorf(line, path, "Fn::Sub: ${ without a closing }")
			return nil, false
		}
		name := strings.TrimSpace(text[:j])
		text = text[j+1:]
		var v any
		var vok bool
		if val, isVar := vars[name]; isVar {
			v, vok = val, true
		} else if res, attr, dotted := strings.Cut(name, "."); dotted && !strings.Contains(name, "::") {
			v, vok = t.getAtt(res, attr, line, path)
		} else {
			v, vok = t.ref(name, line, path)
		}
		if !vok {
			ok = false
			continue
		}
		s, isStr := v.(string)
		if !isStr {
			t.errorf(line, path, "Fn::Sub: ${%s} is %s, not a string", name, kind(v))
			ok = false
			continue
		}
		b.WriteString(s)
	}
	return b.String(), ok
}

// ref resolves Ref of a parameter, pseudo parameter or resource.
func (t *template) ref(name string, line int, path string) (any, bool) {
	if v, ok := t.params[name]; ok {
		return v, true
	}
	switch name {
	case "AWS::Region":
		return t.opts.Region, true
	case "AWS::AccountId":
		return t.opts.AccountID, true
	case "AWS::StackName":
		return t.opts.StackName, true
	case "AWS::StackId":
		return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/%s", t.opts.Region, t.opts.AccountID, t.opts.StackName, stackUUID(t.opts.StackName)), true
	case "AWS::Partition":
		return "aws", true
	case "AWS::URLSuffix":
		return "amazonaws.com", true
	case "AWS::NoValue":
		return noValue, true
	case "AWS::NotificationARNs":
		return []any{}, true
	}
	r, ok := t.res[name]
	if !ok {
		t.errorf(line, path, "Ref %q names no parameter, pseudo parameter or resource of the template", name)
		return nil, false
	}
	if !r.active {
		t.errorf(line, path, "Ref %q: the resource is not created, its condition %s is false", name, r.cond)
		return nil, false
	}
	id, ok := t.refOf(r, line, path)
	return id, ok
}

// refOf returns what Ref of r gives, computing it once.
func (t *template) refOf(r *resource, line int, path string) (string, bool) {
	if r.ref != "" {
		return r.ref, true
	}
	if t.depth >= maxDepth {
		t.errorf(line, path, "the name of %s depends on itself", r.id)
		return "", false
	}
	name := func(key, def string) (string, bool) {
		p, set := r.props[key]
		if !set {
			return def, true
		}
		v, ok := t.eval(p.val, "Resources."+r.id+".Properties."+key)
		if !ok {
			return "", false
		}
		s, isStr := v.(string)
		if !isStr || s == "" {
			if v == noValue {
				return def, true
			}
			t.errorf(p.key.Line, "Resources."+r.id+".Properties."+key, "must be a string")
			return "", false
		}
		return s, true
	}
	generated := t.opts.StackName + "-" + r.id
	var ref string
	ok := true
	switch {
	case r.typ == "AWS::ApiGatewayV2::Api":
		ref = genID(t.opts.StackName+"/"+r.id, 10)
	case strings.HasPrefix(r.typ, "AWS::ApiGatewayV2::") && r.typ != "AWS::ApiGatewayV2::Stage":
		ref = genID(t.opts.StackName+"/"+r.id, 7)
	case r.typ == "AWS::ApiGatewayV2::Stage":
		ref, ok = name("StageName", "")
	case isFunction(r.typ):
		if len(generated) > 64 {
			generated = generated[:64]
		}
		ref, ok = name("FunctionName", generated)
	case r.typ == "AWS::SQS::Queue":
		var q string
		q, ok = name("QueueName", generated)
		ref = fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", t.opts.Region, t.opts.AccountID, q)
	case r.typ == "AWS::SNS::Topic":
		var n string
		n, ok = name("TopicName", generated)
		ref = fmt.Sprintf("arn:aws:sns:%s:%s:%s", t.opts.Region, t.opts.AccountID, n)
	case r.typ == "AWS::Events::EventBus":
		ref, ok = name("Name", generated)
	default:
		suffix := r.typ[strings.LastIndex(r.typ, ":")+1:]
		ref, ok = name(suffix+"Name", generated)
	}
	if !ok {
		return "", false
	}
	if ref == "" {
		t.errorf(r.line, "Resources."+r.id, "cannot resolve Ref %s", r.id)
		return "", false
	}
	r.ref = ref
	return ref, true
}

// getAtt resolves Fn::GetAtt for the attributes wsgate knows.
func (t *template) getAtt(name, attr string, line int, path string) (any, bool) {
	r, ok := t.res[name]
	if !ok {
		t.errorf(line, path, "Fn::GetAtt %s.%s: the template has no resource %q", name, attr, name)
		return nil, false
	}
	if !r.active {
		t.errorf(line, path, "Fn::GetAtt %s.%s: the resource is not created, its condition %s is false", name, attr, r.cond)
		return nil, false
	}
	ref, ok := t.refOf(r, line, path)
	if !ok {
		return nil, false
	}
	region, account := t.opts.Region, t.opts.AccountID
	switch r.typ + "." + attr {
	case "AWS::Serverless::Function.Arn", "AWS::Lambda::Function.Arn":
		return functionARN(region, account, ref), true
	case "AWS::ApiGatewayV2::Api.ApiEndpoint":
		return fmt.Sprintf("wss://%s.execute-api.%s.amazonaws.com", ref, region), true
	case "AWS::ApiGatewayV2::Api.ApiId", "AWS::ApiGatewayV2::Authorizer.AuthorizerId",
		"AWS::ApiGatewayV2::Integration.IntegrationId", "AWS::ApiGatewayV2::Route.RouteId",
		"AWS::ApiGatewayV2::Deployment.DeploymentId", "AWS::SNS::Topic.TopicArn",
		"AWS::SQS::Queue.QueueUrl", "AWS::Events::EventBus.Name":
		return ref, true
	case "AWS::SQS::Queue.Arn":
		return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", region, account, ref[strings.LastIndexByte(ref, '/')+1:]), true
	case "AWS::SQS::Queue.QueueName":
		return ref[strings.LastIndexByte(ref, '/')+1:], true
	case "AWS::SNS::Topic.TopicName":
		return ref[strings.LastIndexByte(ref, ':')+1:], true
	case "AWS::Events::EventBus.Arn":
		return fmt.Sprintf("arn:aws:events:%s:%s:event-bus/%s", region, account, ref), true
	case "AWS::DynamoDB::Table.Arn":
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", region, account, ref), true
	case "AWS::IAM::Role.Arn":
		return fmt.Sprintf("arn:aws:iam::%s:role/%s", account, ref), true
	case "AWS::Logs::LogGroup.Arn":
		return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", region, account, ref), true
	case "AWS::S3::Bucket.Arn":
		return "arn:aws:s3:::" + ref, true
	}
	t.errorf(line, path, "Fn::GetAtt %s.%s: wsgate cannot resolve the attribute %s of a %s", name, attr, attr, r.typ)
	return nil, false
}

func functionARN(region, account, name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, name)
}

func isFunction(typ string) bool {
	return typ == "AWS::Serverless::Function" || typ == "AWS::Lambda::Function"
}

// genID derives an id of n lower-case letters and digits from seed, the
// shape of API Gateway's ids, the same for the same seed.
func genID(seed string, n int) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return string(b)
}

// stackUUID derives the UUID-shaped tail of AWS::StackId from the stack
// name.
func stackUUID(stack string) string {
	s := fmt.Sprintf("%x", sha256.Sum256([]byte("stack/"+stack)))
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// kind names the kind of a resolved value, for error messages.
func kind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a condition"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case nil:
		return "null"
	case noValueType:
		return "AWS::NoValue"
	}
	return fmt.Sprintf("%T", v)
}
