package cfntemplate

import (
	"encoding/json"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/wsgate/wsgate/internal/config"
)

// An AWS (non-proxy) integration calls an AWS service API with the request
// its VTL request template writes. wsgate runs no VTL; it recognises the
// templates AWS's documentation and tutorials give for WebSocket APIs that
// send each message to SQS (SendMessage), SNS (Publish) or EventBridge
// (PutEvents), and maps them to its sqs, sns and eventbridge integrations
// with payload body and credentials: environment. Anything else is refused,
// naming what was recognised and what was not.

var (
	// serviceURI is arn:PARTITION:apigateway:REGION:SERVICE:path/… or
	// …:action/….
	serviceURI = regexp.MustCompile(`^arn:(aws[a-z-]*):apigateway:([a-z0-9-]+):([a-z0-9.-]+):(path|action)/(.*)$`)
	// sqsPath is the path of an SQS integration URI: ACCOUNT/QUEUE.
	sqsPath = regexp.MustCompile(`^/?([0-9]{12})/([A-Za-z0-9_-]{1,80}(\.fifo)?)$`)
	// bodyExpr is the message, as the templates write it.
	bodyExpr = regexp.MustCompile(`^(\$input\.body|\$\{input\.body\}|\$util\.urlEncode\(\$input\.body\)|\$input\.json\(\s*(?:'\$'|"\$")\s*\))$`)
	// contextVar is a $context variable wsgate has a placeholder for.
	contextVar = regexp.MustCompile(`\$(?:\{context\.([A-Za-z0-9_.]+)\}|context\.([A-Za-z0-9_.]+))`)
	// staticEncode is $util.urlEncode of a literal.
	staticEncode = regexp.MustCompile(`^\$util\.urlEncode\(\s*(?:'([^'$#]*)'|"([^"$#]*)")\s*\)$`)
)

// serviceTypes names the services wsgate maps, by the service of the URI.
var serviceTypes = map[string]config.IntegrationType{
	"sqs":    config.IntegrationSQS,
	"sns":    config.IntegrationSNS,
	"events": config.IntegrationEventBridge,
}

// awsRequest is what an AWS integration's properties say about the request
// it makes.
type awsRequest struct {
	r        *resource
	uriLine  int
	region   string
	service  string
	kind     string // path or action
	rest     string // the URI after path/ or action/
	partSufx string // the partition's DNS suffix
	headers  map[string]string
	query    map[string]string
	template string
	tmplPath string
	tmplLine int
}

// awsIntegration maps an AWS integration used by routeKey.
func (b *builder) awsIntegration(r *resource, routeKey, uri string, responses []*resource) (config.Integration, bool) {
	t := b.t
	var in config.Integration
	uriLine := r.keyLine("IntegrationUri")
	uriPath := propPath(r, "IntegrationUri")
	m := serviceURI.FindStringSubmatch(uri)
	switch {
	case m == nil:
		t.errorf(uriLine, uriPath, "%q is not an AWS service URI such as arn:aws:apigateway:REGION:sqs:path/ACCOUNT/QUEUE", uri)
		return in, false
	case m[3] == "lambda":
		t.errorf(uriLine, uriPath, "not supported: AWS (non-proxy) integrations with Lambda transform requests with VTL templates, which wsgate does not run; use AWS_PROXY for a Lambda function")
		return in, false
	case serviceTypes[m[3]] == "":
		t.errorf(uriLine, uriPath, "not supported: wsgate maps AWS integrations with SQS (sqs:path/ACCOUNT/QUEUE), SNS (sns:action/Publish) and EventBridge (events:action/PutEvents) only, not %s", m[3])
		return in, false
	}
	if meth, ok := b.str(r, "IntegrationMethod", false); ok && meth != "" && meth != "POST" {
		t.errorf(r.keyLine("IntegrationMethod"), propPath(r, "IntegrationMethod"), "%q is not supported; the SQS, SNS and EventBridge APIs take POST", meth)
		return in, false
	}
	req := &awsRequest{r: r, uriLine: uriLine, partSufx: "amazonaws.com", region: m[2], service: m[3], kind: m[4], rest: m[5]}
	if m[1] == "aws-cn" {
		req.partSufx = "amazonaws.com.cn"
	}
	if !b.awsParameters(req) {
		return in, false
	}
	in.Type = serviceTypes[req.service]
	in.Region = req.region
	in.Credentials = config.CredentialsEnvironment
	in.Payload = config.PayloadBody
	var ok bool
	switch in.Type {
	case config.IntegrationSQS:
		ok = b.sqsRequest(req, &in)
	case config.IntegrationSNS:
		ok = b.snsRequest(req, &in)
	default:
		ok = b.putEventsRequest(req, &in)
	}
	if !ok {
		return in, false
	}
	prefix := "routes." + routeKey + ".integration"
	for _, key := range []string{"credentials", "region", "queue_url", "topic_arn", "event_bus", "source", "detail_type"} {
		b.line(prefix+"."+key, r.line)
	}
	b.line(prefix+".message_group_id", req.tmplLine)
	b.line(prefix+".payload", req.tmplLine)
	if p, set := r.props["CredentialsArn"]; set {
		t.ignore(Ignored{LogicalID: r.id, Type: r.typ, Property: "CredentialsArn", Line: p.key.Line,
			Reason: "wsgate does not assume IAM roles; it signs with the credentials of AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"})
	}
	for _, resp := range responses {
		t.ignore(Ignored{LogicalID: resp.id, Type: resp.typ, Line: resp.line,
			Reason: "wsgate answers a route response with its own acknowledgement, {\"status\":\"accepted\",\"requestId\":…,\"messageId\" or \"eventId\":…}, not the service's response through a template"})
	}
	return in, true
}

// awsParameters reads RequestParameters (static headers and query string
// values), PassthroughBehavior and TemplateSelectionExpression, and the one
// request template.
func (b *builder) awsParameters(req *awsRequest) bool {
	t, r := b.t, req.r
	ok := true
	req.headers, req.query = map[string]string{}, map[string]string{}
	if v, set, good := b.value(r, "RequestParameters"); !good {
		ok = false
	} else if set {
		m, isMap := v.(map[string]any)
		if !isMap {
			t.errorf(r.keyLine("RequestParameters"), propPath(r, "RequestParameters"), "want a mapping")
			return false
		}
		for _, k := range sortedKeys(m) {
			s, _ := m[k].(string)
			line := subLine(r, "RequestParameters", k)
			static := len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\''
			name, isHeader := strings.CutPrefix(k, "integration.request.header.")
			qname, isQuery := strings.CutPrefix(k, "integration.request.querystring.")
			switch {
			case !static || (!isHeader && !isQuery):
				t.errorf(line, propPath(r, "RequestParameters."+k), "only static headers and query string values ('integration.request.header.NAME' or 'integration.request.querystring.NAME': \"'value'\") are supported")
				ok = false
			case isHeader:
				req.headers[strings.ToLower(name)] = s[1 : len(s)-1]
			default:
				req.query[qname] = s[1 : len(s)-1]
			}
		}
	}
	if pb, good := b.str(r, "PassthroughBehavior", false); good && pb != "" && pb != "NEVER" && pb != "WHEN_NO_MATCH" && pb != "WHEN_NO_TEMPLATES" {
		t.errorf(r.keyLine("PassthroughBehavior"), propPath(r, "PassthroughBehavior"), "%q: want NEVER, WHEN_NO_MATCH or WHEN_NO_TEMPLATES", pb)
		ok = false
	}
	if tse, good := b.str(r, "TemplateSelectionExpression", false); good && tse != "" && tse != "$default" && tse != `\$default` {
		t.errorf(r.keyLine("TemplateSelectionExpression"), propPath(r, "TemplateSelectionExpression"), "%q: template selection is not supported; write one template under $default (TemplateSelectionExpression: \\$default)", tse)
		ok = false
	}
	v, set, good := b.value(r, "RequestTemplates")
	switch {
	case !good:
		return false
	case !set:
		t.errorf(r.keyLine("IntegrationType"), propPath(r, "RequestTemplates"), "required: an AWS integration sends what its request template writes (for SQS, $default: Action=SendMessage&MessageBody=$input.body)")
		return false
	}
	m, isMap := v.(map[string]any)
	key := ""
	for k := range m {
		key = k
	}
	if !isMap || len(m) != 1 || (key != "$default" && key != `\$default`) {
		t.errorf(r.keyLine("RequestTemplates"), propPath(r, "RequestTemplates"), "want one template, under $default")
		return false
	}
	s, isStr := m[key].(string)
	req.tmplPath, req.tmplLine = propPath(r, "RequestTemplates."+key), subLine(r, "RequestTemplates", key)
	if !isStr {
		t.errorf(req.tmplLine, req.tmplPath, "want a string, got %s", kind(m[key]))
		return false
	}
	req.template = strings.TrimSpace(s)
	return ok
}

// subLine returns the line of the key sub in the mapping of the property
// key of r, or the property's line when it is not written as a mapping.
func subLine(r *resource, key, sub string) int {
	p, ok := r.props[key]
	if !ok {
		return r.line
	}
	if p.val.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(p.val.Content); i += 2 {
			if p.val.Content[i].Value == sub {
				return p.val.Content[i].Line
			}
		}
	}
	return p.key.Line
}

// formField is one key=value of a form-encoded request template.
type formField struct{ key, raw string }

// formFields parses the form request template of an SQS or SNS
// integration and adds the static query string values, which AWS sends
// the same way; it reports a missing Content-Type header, without which
// the service would not read the form.
func (b *builder) formFields(req *awsRequest, api string) (map[string]string, bool) {
	t := b.t
	if ct := req.headers["content-type"]; !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		t.errorf(subLine(req.r, "RequestParameters", "integration.request.header.Content-Type"), propPath(req.r, "RequestParameters"),
			"want integration.request.header.Content-Type: \"'application/x-www-form-urlencoded'\", as %s reads the form the request template writes only with it", api)
		return nil, false
	}
	for h := range req.headers {
		if h != "content-type" {
			t.errorf(subLine(req.r, "RequestParameters", "integration.request.header."+h), propPath(req.r, "RequestParameters.integration.request.header."+h), "not supported on an %s integration: wsgate sets the headers of the call itself", api)
			return nil, false
		}
	}
	fields := map[string]string{}
	for k, v := range req.query {
		fields[k] = url.QueryEscape(v)
	}
	for _, part := range strings.Split(req.template, "&") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, found := strings.Cut(part, "=")
		if !found || k == "" || strings.ContainsAny(k, "$#") {
			t.errorf(req.tmplLine, req.tmplPath, "%q is not NAME=VALUE: wsgate recognises a form of %s parameters, such as Action=SendMessage&MessageBody=$input.body, and runs no other VTL", part, api)
			return nil, false
		}
		if _, dup := fields[k]; dup {
			t.errorf(req.tmplLine, req.tmplPath, "%s is given twice", k)
			return nil, false
		}
		fields[k] = v
	}
	return fields, true
}

// static decodes a static form value: literal text, URL-encoded, or
// $util.urlEncode of a quoted literal.
func static(raw string) (string, bool) {
	if m := staticEncode.FindStringSubmatch(raw); m != nil {
		return m[1] + m[2], true
	}
	if strings.ContainsAny(raw, "$#") {
		return "", false
	}
	s, err := url.QueryUnescape(raw)
	return s, err == nil
}

// groupTemplate turns a MessageGroupId value into a message_group_id: a
// static value, or $context.connectionId, $context.routeKey,
// $context.authorizer.principalId and $context.authorizer.KEY between
// static text.
func groupTemplate(raw string) (string, bool) {
	if s, ok := static(raw); ok {
		return escapeBraces(s), true
	}
	var out strings.Builder
	last := 0
	for _, loc := range contextVar.FindAllStringSubmatchIndex(raw, -1) {
		lit, ok := static(raw[last:loc[0]])
		if !ok {
			return "", false
		}
		out.WriteString(escapeBraces(lit))
		name := ""
		if loc[2] >= 0 {
			name = raw[loc[2]:loc[3]]
		} else {
			name = raw[loc[4]:loc[5]]
		}
		switch {
		case name == "connectionId" || name == "routeKey":
			out.WriteString("{" + name + "}")
		case name == "authorizer.principalId":
			out.WriteString("{principalId}")
		case strings.HasPrefix(name, "authorizer.") && !strings.Contains(name[len("authorizer."):], "."):
			out.WriteString("{" + name + "}")
		default:
			return "", false
		}
		last = loc[1]
	}
	lit, ok := static(raw[last:])
	if !ok {
		return "", false
	}
	out.WriteString(escapeBraces(lit))
	return out.String(), true
}

// escapeBraces writes literal braces of s as wsgate placeholders' {{ and }}.
func escapeBraces(s string) string {
	return strings.NewReplacer("{", "{{", "}", "}}").Replace(s)
}

// formMapping reads the fields of an SQS or SNS form: action must be the
// operation, body the message; group and the deduplication id are
// optional; Version is accepted. It refuses every other field, listing
// what it recognised.
func (b *builder) formMapping(req *awsRequest, in *config.Integration, fields map[string]string, api, action, body string, others map[string]bool) bool {
	t := b.t
	var recognised []string
	for _, k := range sortedKeys(fields) {
		raw := fields[k]
		v, isStatic := static(raw)
		switch {
		case k == "Action" && isStatic && v == action, k == "Version" && isStatic:
		case k == "Action":
			t.errorf(req.tmplLine, req.tmplPath, "Action=%s: this integration maps only %s", raw, action)
			return false
		case k == body && bodyExpr.MatchString(raw):
		case k == body:
			t.errorf(req.tmplLine, req.tmplPath, "%s=%s: wsgate sends the client's message; write %s=$input.body, $util.urlEncode($input.body) or $input.json('$')", k, raw, k)
			return false
		case k == "MessageGroupId":
			g, ok := groupTemplate(raw)
			if !ok {
				t.errorf(req.tmplLine, req.tmplPath, "MessageGroupId=%s: want a static value, or $context.connectionId, $context.routeKey or $context.authorizer.KEY between static text", raw)
				return false
			}
			in.MessageGroupID = g
		case k == "MessageDeduplicationId" && (raw == "$context.requestId" || raw == "${context.requestId}"):
			// wsgate's deduplication id on a FIFO queue or topic is the
			// request id; on a standard one there is none.
		case k == "MessageDeduplicationId":
			t.errorf(req.tmplLine, req.tmplPath, "MessageDeduplicationId=%s: wsgate deduplicates by $context.requestId only", raw)
			return false
		case others[k]:
		default:
			t.errorf(req.tmplLine, req.tmplPath, "%s=%s is not supported (recognised: %s); wsgate maps Action=%s with %s, MessageGroupId, MessageDeduplicationId=$context.requestId and Version",
				k, raw, strings.Join(recognised, ", "), action, body)
			return false
		}
		recognised = append(recognised, k)
	}
	if _, ok := fields[body]; !ok {
		t.errorf(req.tmplLine, req.tmplPath, "no %s: write %s=$input.body", body, body)
		return false
	}
	if _, ok := fields["Action"]; !ok && req.kind == "path" {
		t.errorf(req.tmplLine, req.tmplPath, "no Action: write Action=%s", action)
		return false
	}
	return true
}

func (b *builder) sqsRequest(req *awsRequest, in *config.Integration) bool {
	t := b.t
	m := sqsPath.FindStringSubmatch(req.rest)
	if req.kind != "path" || m == nil {
		t.errorf(req.uriLine, propPath(req.r, "IntegrationUri"), "want arn:aws:apigateway:REGION:sqs:path/ACCOUNT/QUEUE, the queue's path, not %s/%s", req.kind, req.rest)
		return false
	}
	fields, ok := b.formFields(req, "SQS")
	if !ok || !b.formMapping(req, in, fields, "SQS", "SendMessage", "MessageBody", nil) {
		return false
	}
	in.QueueURL = "https://sqs." + req.region + "." + req.partSufx + "/" + m[1] + "/" + m[2]
	if m[3] != "" && in.MessageGroupID == "" {
		t.errorf(req.tmplLine, req.tmplPath, "the FIFO queue %s needs MessageGroupId in the request template, e.g. MessageGroupId=$context.connectionId", m[2])
		return false
	}
	return true
}

func (b *builder) snsRequest(req *awsRequest, in *config.Integration) bool {
	t := b.t
	if !(req.kind == "action" && req.rest == "Publish") && !(req.kind == "path" && strings.Trim(req.rest, "/") == "") {
		t.errorf(req.uriLine, propPath(req.r, "IntegrationUri"), "want arn:aws:apigateway:REGION:sns:action/Publish (or sns:path// with Action=Publish), not %s/%s", req.kind, req.rest)
		return false
	}
	fields, ok := b.formFields(req, "SNS")
	if !ok || !b.formMapping(req, in, fields, "SNS", "Publish", "Message", map[string]bool{"TopicArn": true}) {
		return false
	}
	arn, isStatic := static(fields["TopicArn"])
	if !isStatic || arn == "" {
		t.errorf(req.tmplLine, req.tmplPath, "want a static TopicArn in the request template or in integration.request.querystring.TopicArn")
		return false
	}
	in.TopicARN = arn
	return true
}

// putEventsBody is the PutEvents request the template writes.
type putEventsBody struct {
	Entries []map[string]any `json:"Entries"`
}

// bodyMark stands for the client's message in a PutEvents template while it
// is decoded as JSON.
const bodyMark = "\x00"

var detailExpr = regexp.MustCompile(`"(?:\$util\.escapeJavaScript\(\$input\.body\)|\$input\.body|\$\{input\.body\})"`)

func (b *builder) putEventsRequest(req *awsRequest, in *config.Integration) bool {
	t := b.t
	target := req.headers["x-amz-target"]
	switch {
	case req.kind == "action" && req.rest == "PutEvents" && (target == "" || target == "AWSEvents.PutEvents"):
	case req.kind == "path" && strings.Trim(req.rest, "/") == "" && target == "AWSEvents.PutEvents":
	default:
		t.errorf(req.uriLine, propPath(req.r, "IntegrationUri"), "want arn:aws:apigateway:REGION:events:action/PutEvents, or events:path// with integration.request.header.X-Amz-Target: \"'AWSEvents.PutEvents'\"")
		return false
	}
	for h, v := range req.headers {
		if h == "x-amz-target" || h == "content-type" && strings.HasPrefix(v, "application/x-amz-json-1.1") {
			continue
		}
		t.errorf(subLine(req.r, "RequestParameters", "integration.request.header."+h), propPath(req.r, "RequestParameters"), "header %s: %q is not supported on an EventBridge integration (wsgate sends application/x-amz-json-1.1 itself)", h, v)
		return false
	}
	if len(req.query) > 0 {
		t.errorf(req.r.keyLine("RequestParameters"), propPath(req.r, "RequestParameters"), "query string values are not supported on an EventBridge integration")
		return false
	}
	marked := detailExpr.ReplaceAllString(req.template, `"\u0000"`)
	var body putEventsBody
	dec := json.NewDecoder(strings.NewReader(marked))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || len(body.Entries) != 1 {
		t.errorf(req.tmplLine, req.tmplPath, "not a PutEvents request wsgate recognises: want {\"Entries\": [{\"Source\": …, \"DetailType\": …, \"Detail\": \"$util.escapeJavaScript($input.body)\", \"EventBusName\": …}]} with one entry and static values, and no other VTL")
		return false
	}
	var recognised []string
	e := body.Entries[0]
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, isStr := e[k].(string)
		switch {
		case k == "Detail" && s == bodyMark:
		case k == "Detail":
			t.errorf(req.tmplLine, req.tmplPath, "Detail: wsgate sends the client's message as the detail; write \"Detail\": \"$util.escapeJavaScript($input.body)\"")
			return false
		case (k == "Source" || k == "DetailType" || k == "EventBusName") && isStr && !strings.ContainsAny(s, "$#\x00"):
			switch k {
			case "Source":
				in.Source = s
			case "DetailType":
				in.DetailType = escapeBraces(s)
			default:
				in.EventBus = s
			}
		case k == "Source" || k == "DetailType" || k == "EventBusName":
			t.errorf(req.tmplLine, req.tmplPath, "%s: only a static string is supported", k)
			return false
		default:
			t.errorf(req.tmplLine, req.tmplPath, "%s is not supported (recognised: %s); wsgate maps Source, DetailType, EventBusName and Detail", k, strings.Join(recognised, ", "))
			return false
		}
		recognised = append(recognised, k)
	}
	for _, k := range []string{"Detail", "Source", "DetailType"} {
		if _, ok := e[k]; !ok {
			t.errorf(req.tmplLine, req.tmplPath, "the entry has no %s", k)
			return false
		}
	}
	return true
}
