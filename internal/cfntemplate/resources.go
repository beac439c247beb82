package cfntemplate

import (
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// The resource types of API Gateway V2 that wsgate maps.
const (
	typeAPI                 = "AWS::ApiGatewayV2::Api"
	typeRoute               = "AWS::ApiGatewayV2::Route"
	typeRouteResponse       = "AWS::ApiGatewayV2::RouteResponse"
	typeIntegration         = "AWS::ApiGatewayV2::Integration"
	typeIntegrationResponse = "AWS::ApiGatewayV2::IntegrationResponse"
	typeAuthorizer          = "AWS::ApiGatewayV2::Authorizer"
	typeStage               = "AWS::ApiGatewayV2::Stage"
	typeDeployment          = "AWS::ApiGatewayV2::Deployment"
)

// Property tables: a property maps to "" when wsgate uses it or it is
// metadata without effect (names, descriptions, tags), and otherwise to the
// reason it is listed as ignored. A property missing from its table is an
// error.
var (
	apiProps = map[string]string{
		"ProtocolType": "", "RouteSelectionExpression": "", "ApiKeySelectionExpression": "",
		"Name": "", "Description": "", "Tags": "", "Version": "", "DisableSchemaValidation": "",
		"FailOnWarnings":            "",
		"DisableExecuteApiEndpoint": "clients reach wsgate at its own listener",
	}
	routeProps = map[string]string{
		"ApiId": "", "RouteKey": "", "AuthorizationType": "", "AuthorizerId": "", "Target": "",
		"RouteResponseSelectionExpression": "", "ApiKeyRequired": "", "OperationName": "",
		"ModelSelectionExpression": "", "RequestModels": "",
	}
	routeResponseProps = map[string]string{
		"ApiId": "", "RouteId": "", "RouteResponseKey": "",
		"ModelSelectionExpression": "wsgate does not validate responses against models",
		"ResponseModels":           "wsgate does not validate responses against models",
	}
	integrationProps = map[string]string{
		"ApiId": "", "IntegrationType": "", "IntegrationUri": "", "IntegrationMethod": "",
		"TimeoutInMillis": "", "RequestTemplates": "", "TemplateSelectionExpression": "",
		"RequestParameters": "", "PassthroughBehavior": "", "ConnectionType": "", "Description": "",
		"PayloadFormatVersion": "", "IntegrationResponseSelectionExpression": "",
		"CredentialsArn": "wsgate does not assume IAM roles; it invokes the template's functions itself",
	}
	// awsIntegrationProps is the table of AWS integrations, whose
	// CredentialsArn awsIntegration reports.
	awsIntegrationProps = func() map[string]string {
		m := maps.Clone(integrationProps)
		m["CredentialsArn"] = ""
		return m
	}()
	integrationResponseProps = map[string]string{
		"ApiId": "", "IntegrationId": "", "IntegrationResponseKey": "", "ResponseTemplates": "",
		"TemplateSelectionExpression": "", "ResponseParameters": "", "ContentHandlingStrategy": "",
	}
	authorizerProps = map[string]string{
		"ApiId": "", "Name": "", "AuthorizerType": "", "AuthorizerUri": "", "IdentitySource": "",
		"AuthorizerResultTtlInSeconds": "",
		"AuthorizerCredentialsArn":     "wsgate does not assume IAM roles; it invokes the template's functions itself",
	}
	stageProps = map[string]string{
		"ApiId": "", "StageName": "", "StageVariables": "", "AutoDeploy": "", "DeploymentId": "",
		"Description": "", "Tags": "",
		"DefaultRouteSettings": "", "RouteSettings": "",
		"AccessLogSettings":   "wsgate writes its own log (log.format in the -c config)",
		"ClientCertificateId": "client certificates are for HTTP backends of REST APIs",
	}
	deploymentProps = map[string]string{"ApiId": "", "Description": "", "StageName": ""}
)

// ignoredTypes gives the reason for resource types wsgate has nothing to do
// with, by type or by service prefix.
var ignoredTypes = map[string]string{
	"AWS::Lambda::Permission":                       "wsgate invokes the template's functions itself; no permission is needed",
	"AWS::IAM::":                                    "wsgate does not enforce IAM; local functions run with the credentials wsgate gives them",
	"AWS::Logs::":                                   "local functions log to wsgate's log",
	"AWS::ApiGatewayV2::DomainName":                 "custom domains are served by whatever fronts wsgate; events carry the execute-api domain name",
	"AWS::ApiGatewayV2::ApiMapping":                 "custom domains are served by whatever fronts wsgate; events carry the execute-api domain name",
	"AWS::ApiGatewayV2::VpcLink":                    "wsgate reaches backends over its own network",
	"AWS::Lambda::Version":                          "wsgate runs the function's current code",
	"AWS::Lambda::Alias":                            "wsgate runs the function's current code",
	"AWS::Lambda::EventSourceMapping":               "wsgate runs functions for the WebSocket API only",
	"AWS::Lambda::EventInvokeConfig":                "wsgate runs functions for the WebSocket API only",
	"AWS::ApiGateway::Account":                      "it configures the REST API service, not the WebSocket API",
	"AWS::CloudWatch::":                             "wsgate exposes its own metrics",
	"AWS::ApiGatewayV2::ApiGatewayManagedOverrides": "it configures a quick-create HTTP API",
}

func ignoredReason(typ string) string {
	if r, ok := ignoredTypes[typ]; ok {
		return r
	}
	if i := strings.LastIndex(typ, "::"); i > 0 {
		if r, ok := ignoredTypes[typ[:i+2]]; ok {
			return r
		}
	}
	return "wsgate does not create or emulate " + typ + " resources; local functions reach the real service or one you run"
}

// build maps the resources onto the configuration.
func (t *template) build() {
	var apis []*resource
	for _, id := range t.order {
		if r := t.res[id]; r.active && r.typ == typeAPI {
			apis = append(apis, r)
		}
	}
	switch {
	case len(apis) == 0:
		t.errorf(0, "Resources", "the template defines no AWS::ApiGatewayV2::Api")
		return
	case len(apis) > 1:
		t.errorf(apis[1].line, "Resources."+apis[1].id, "a second AWS::ApiGatewayV2::Api (the first is %s); wsgate serves one API per template", apis[0].id)
		return
	}
	b := &builder{t: t, api: apis[0], used: map[string]bool{}, lambdas: map[string]*config.Lambda{},
		routeIDs: map[string]string{}, models: map[string]*resource{}, responses: map[string]*resource{}, intResponses: map[string][]*resource{}}
	b.apiResource()
	for _, id := range t.order {
		r := t.res[id]
		if !r.active {
			t.ignore(Ignored{LogicalID: id, Type: r.typ, Line: r.line, Reason: "its condition " + r.cond + " is false"})
			continue
		}
		switch r.typ {
		case typeAPI:
		case typeStage:
			b.stage(r)
		case typeDeployment:
			b.props(r, deploymentProps)
			b.apiID(r)
		case typeRouteResponse:
			b.routeResponse(r)
		case typeModel:
			b.model(r)
		case typeIntegrationResponse:
			b.props(r, integrationResponseProps)
			if id, ok := b.str(r, "IntegrationId", true); ok {
				b.intResponses[id] = append(b.intResponses[id], r)
			}
		}
	}
	for _, id := range t.order {
		if r := t.res[id]; r.active && r.typ == typeRoute {
			b.route(r)
		}
	}
	b.routeThrottling()
	for _, id := range t.order {
		r := t.res[id]
		if !r.active || b.used[id] {
			continue
		}
		switch {
		case r.typ == typeIntegration:
			t.ignore(Ignored{LogicalID: id, Type: r.typ, Line: r.line, Reason: "no route targets it"})
		case r.typ == typeAuthorizer:
			t.ignore(Ignored{LogicalID: id, Type: r.typ, Line: r.line, Reason: "the $connect route does not use it"})
		case isFunction(r.typ):
			t.ignore(Ignored{LogicalID: id, Type: r.typ, Line: r.line, Reason: "not used by the API"})
		case r.typ == typeIntegrationResponse:
			// Reported with its integration, below.
		case r.typ == typeModel:
			t.ignore(Ignored{LogicalID: id, Type: r.typ, Line: r.line, Reason: "no route's RequestModels names it (with a ModelSelectionExpression)"})
		case r.typ == typeAPI, r.typ == typeStage, r.typ == typeDeployment, r.typ == typeRoute, r.typ == typeRouteResponse:
			// Mapped above.
		default:
			t.ignore(Ignored{LogicalID: id, Type: r.typ, Line: r.line, Reason: ignoredReason(r.typ)})
		}
	}
	pending := map[*resource]string{}
	for id, list := range b.intResponses {
		for _, ir := range list {
			pending[ir] = id
		}
	}
	for _, lid := range t.order {
		ir := t.res[lid]
		id, ok := pending[ir]
		switch {
		case !ok:
		case b.resourceByID(id, typeIntegration) == nil:
			t.errorf(ir.keyLine("IntegrationId"), propPath(ir, "IntegrationId"), "names no integration of the template; write !Ref INTEGRATION")
		default:
			t.ignore(Ignored{LogicalID: ir.id, Type: ir.typ, Line: ir.line, Reason: "no route targets its integration"})
		}
	}
	for _, rr := range b.responses {
		t.errorf(rr.keyLine("RouteId"), propPath(rr, "RouteId"), "names no route of the template; write !Ref ROUTE")
	}
	if len(t.result.Config.Routes) == 0 && len(t.errs) == 0 {
		t.errorf(b.api.line, "Resources."+b.api.id, "the API has no route with an integration (AWS::ApiGatewayV2::Route with a Target)")
	}
}

// builder holds the state of build.
type builder struct {
	t   *template
	api *resource
	// used marks the logical ids that a route or authorizer uses.
	used map[string]bool
	// lambdas holds each function's local configuration by logical id.
	lambdas map[string]*config.Lambda
	// routeIDs maps a route id to its route key, for route responses.
	routeIDs map[string]string
	// models holds the AWS::ApiGatewayV2::Model resources by Name.
	models map[string]*resource
	// responses holds the $default route responses by route id.
	responses map[string]*resource
	// intResponses holds the integration responses by integration id.
	intResponses map[string][]*resource
	stageSeen    *resource
	// stageRoutes is the stage whose RouteSettings, routeSettingsByKey,
	// apply to the routes once they are built.
	stageRoutes        *resource
	routeSettingsByKey map[string]any
}

// propPath is the template path of the property key of r: under Globals
// when r takes it from there.
func propPath(r *resource, key string) string {
	if r.globalKeys[key] {
		return "Globals.Function." + key
	}
	return "Resources." + r.id + ".Properties." + key
}

// props reports the properties of r missing from table and lists those the
// table gives a reason for as ignored.
func (b *builder) props(r *resource, table map[string]string) {
	for _, key := range sortedKeys(r.props) {
		p := r.props[key]
		reason, ok := table[key]
		switch {
		case !ok:
			b.t.errorf(p.key.Line, propPath(r, key), "property %s of %s is not supported", key, r.typ)
		case reason != "":
			b.t.ignore(Ignored{LogicalID: r.id, Type: r.typ, Property: key, Line: p.key.Line, Reason: reason})
		}
	}
}

// value evaluates the property key of r; set is false when it is absent or
// AWS::NoValue.
func (b *builder) value(r *resource, key string) (v any, set, ok bool) {
	p, set := r.props[key]
	if !set {
		return nil, false, true
	}
	v, ok = b.t.eval(p.val, propPath(r, key))
	if v == noValue {
		return nil, false, ok
	}
	return v, ok, ok
}

// str evaluates a string property; required reports its absence.
func (b *builder) str(r *resource, key string, required bool) (string, bool) {
	v, set, ok := b.value(r, key)
	if !ok {
		return "", false
	}
	if !set {
		if required {
			b.t.errorf(r.line, propPath(r, key), "required")
			return "", false
		}
		return "", true
	}
	s, isStr := v.(string)
	if !isStr {
		b.t.errorf(r.props[key].key.Line, propPath(r, key), "want a string, got %s", kind(v))
		return "", false
	}
	return s, true
}

// number evaluates an integer property, def when absent.
func (b *builder) number(r *resource, key string, def int) (int, bool) {
	s, ok := b.str(r, key, false)
	if !ok {
		return 0, false
	}
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		b.t.errorf(r.props[key].key.Line, propPath(r, key), "want a whole number, got %q", s)
		return 0, false
	}
	return n, true
}

// boolean evaluates a boolean property, false when absent.
func (b *builder) boolean(r *resource, key string) (bool, bool) {
	s, ok := b.str(r, key, false)
	if !ok {
		return false, false
	}
	switch strings.ToLower(s) {
	case "", "false":
		return false, true
	case "true":
		return true, true
	}
	b.t.errorf(r.props[key].key.Line, propPath(r, key), "want true or false, got %q", s)
	return false, false
}

// apiID checks that the ApiId of r is the template's API.
func (b *builder) apiID(r *resource) {
	id, ok := b.str(r, "ApiId", true)
	if ok && id != b.api.ref {
		b.t.errorf(r.keyLine("ApiId"), propPath(r, "ApiId"), "%q is not the template's API; write !Ref %s", id, b.api.id)
	}
}

// line records the template line a config key comes from.
func (b *builder) line(path string, line int) { b.t.result.lines[path] = line }

func (b *builder) apiResource() {
	r, cfg := b.api, b.t.result.Config
	b.props(r, apiProps)
	switch pt, ok := b.str(r, "ProtocolType", true); {
	case !ok:
	case pt == "HTTP":
		b.t.errorf(r.keyLine("ProtocolType"), propPath(r, "ProtocolType"), "HTTP APIs are not supported; wsgate serves WebSocket APIs (ProtocolType: WEBSOCKET)")
	case pt != "WEBSOCKET":
		b.t.errorf(r.keyLine("ProtocolType"), propPath(r, "ProtocolType"), "%q: want WEBSOCKET", pt)
	}
	for _, key := range []string{"Body", "BodyS3Location", "BasePath", "CorsConfiguration", "CredentialsArn", "RouteKey", "Target"} {
		if _, set := r.props[key]; set {
			delete(r.props, key) // reported once, here
			b.t.errorf(r.line, propPath(r, key), "not supported: it belongs to HTTP APIs or OpenAPI import")
		}
	}
	if rse, ok := b.str(r, "RouteSelectionExpression", true); ok && rse != "" {
		cfg.RouteSelectionExpression = rse
		b.line("route_selection_expression", r.keyLine("RouteSelectionExpression"))
	}
	if ake, ok := b.str(r, "ApiKeySelectionExpression", false); ok && ake != "" &&
		ake != "$request.header.x-api-key" && ake != "$context.authorizer.usageIdentifierKey" {
		b.t.errorf(r.keyLine("ApiKeySelectionExpression"), propPath(r, "ApiKeySelectionExpression"),
			"%q: AWS takes only $request.header.x-api-key or $context.authorizer.usageIdentifierKey", ake)
	}
	cfg.APIID = r.ref
	cfg.DomainName = r.ref + ".execute-api." + b.t.opts.Region + ".amazonaws.com"
	b.line("api_id", r.line)
	b.line("domain_name", r.line)
}

func (b *builder) stage(r *resource) {
	b.props(r, stageProps)
	b.apiID(r)
	if b.stageSeen != nil {
		b.t.errorf(r.line, "Resources."+r.id, "a second stage (the first is %s); wsgate serves one stage", b.stageSeen.id)
		return
	}
	b.stageSeen = r
	cfg := b.t.result.Config
	if name, ok := b.str(r, "StageName", true); ok {
		if name != "$default" {
			cfg.Stage = name
		}
		b.line("stage", r.keyLine("StageName"))
	}
	b.stageThrottling(r)
	v, set, ok := b.value(r, "StageVariables")
	if !ok || !set {
		return
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		b.t.errorf(r.keyLine("StageVariables"), propPath(r, "StageVariables"), "want a mapping of names to strings")
		return
	}
	cfg.StageVariables = map[string]string{}
	for k, val := range m {
		s, isStr := val.(string)
		if !isStr {
			b.t.errorf(r.keyLine("StageVariables"), propPath(r, "StageVariables."+k), "want a string, got %s", kind(val))
			continue
		}
		cfg.StageVariables[k] = s
	}
	b.line("stage_variables", r.keyLine("StageVariables"))
}

func (b *builder) routeResponse(r *resource) {
	b.props(r, routeResponseProps)
	b.apiID(r)
	key, ok := b.str(r, "RouteResponseKey", true)
	if ok && key != "$default" {
		b.t.errorf(r.keyLine("RouteResponseKey"), propPath(r, "RouteResponseKey"), "%q: AWS takes only $default", key)
	}
	if id, ok := b.str(r, "RouteId", true); ok {
		b.responses[id] = r
	}
}

// resourceByID returns the resource of type typ whose id is id.
func (b *builder) resourceByID(id, typ string) *resource {
	r := b.t.res[b.t.ids[id]]
	if r == nil || r.typ != typ || !r.active {
		return nil
	}
	return r
}

func (b *builder) route(r *resource) {
	t := b.t
	b.props(r, routeProps)
	b.apiID(r)
	key, ok := b.str(r, "RouteKey", true)
	if !ok {
		return
	}
	path := "routes." + key
	if _, dup := t.result.Config.Routes[key]; dup {
		t.errorf(r.keyLine("RouteKey"), propPath(r, "RouteKey"), "route key %q is defined twice", key)
		return
	}
	b.line(path, r.line)
	b.routeIDs[r.ref] = key
	route := config.Route{}
	if b.responses[r.ref] != nil {
		delete(b.responses, r.ref)
		route.RouteResponse = true
		b.line(path+".route_response", r.line)
	}
	if rrse, ok := b.str(r, "RouteResponseSelectionExpression", false); ok && rrse != "" && rrse != "$default" {
		t.errorf(r.keyLine("RouteResponseSelectionExpression"), propPath(r, "RouteResponseSelectionExpression"), "%q: AWS takes only $default", rrse)
	}
	b.routeModels(r, key, path, &route)
	if req, ok := b.boolean(r, "ApiKeyRequired"); ok && req {
		t.errorf(r.keyLine("ApiKeyRequired"), propPath(r, "ApiKeyRequired"),
			"not supported: API keys come from API Gateway usage plans, which a template of the API alone does not define; use wsgate's apikey authorizer in a wsgate config instead")
	}
	authType, ok := b.str(r, "AuthorizationType", false)
	if !ok {
		return
	}
	switch authType {
	case "", "NONE":
		if _, set := r.props["AuthorizerId"]; set {
			t.errorf(r.keyLine("AuthorizerId"), propPath(r, "AuthorizerId"), "only with AuthorizationType: CUSTOM")
		}
	case "CUSTOM":
		if key != config.RouteConnect {
			t.errorf(r.keyLine("AuthorizationType"), propPath(r, "AuthorizationType"), "CUSTOM is only allowed on the $connect route, as in AWS")
			break
		}
		b.authorizer(r)
	case "AWS_IAM":
		t.errorf(r.keyLine("AuthorizationType"), propPath(r, "AuthorizationType"), "AWS_IAM is not supported: wsgate does not verify IAM signatures of clients; use a CUSTOM (Lambda REQUEST) authorizer")
	default:
		t.errorf(r.keyLine("AuthorizationType"), propPath(r, "AuthorizationType"), "%q: WebSocket routes take NONE, AWS_IAM or CUSTOM", authType)
	}
	if _, set := r.props["Target"]; !set && (key == config.RouteConnect || key == config.RouteDisconnect) {
		// As in AWS, $connect and $disconnect may have no integration:
		// the connection is accepted once the authorizer allows it.
		if route.RouteResponse {
			t.errorf(r.line, "Resources."+r.id, "a route response needs an integration (Target)")
		}
		return
	}
	target, ok := b.str(r, "Target", true)
	if !ok {
		return
	}
	id, found := strings.CutPrefix(target, "integrations/")
	integ := b.resourceByID(id, typeIntegration)
	if !found || integ == nil {
		t.errorf(r.keyLine("Target"), propPath(r, "Target"), "%q is not integrations/ID of an integration of the template; write !Join ['/', [integrations, !Ref INTEGRATION]]", target)
		return
	}
	b.used[integ.id] = true
	in, ok := b.integration(integ, key)
	if !ok {
		return
	}
	route.Integration = in
	b.line(path+".integration", integ.line)
	if t.result.Config.Routes == nil {
		t.result.Config.Routes = map[string]config.Route{}
	}
	t.result.Config.Routes[key] = route
}

func (b *builder) authorizer(route *resource) {
	t := b.t
	id, ok := b.str(route, "AuthorizerId", true)
	if !ok {
		return
	}
	r := b.resourceByID(id, typeAuthorizer)
	if r == nil {
		t.errorf(route.keyLine("AuthorizerId"), propPath(route, "AuthorizerId"), "%q is not the id of an authorizer of the template; write !Ref AUTHORIZER", id)
		return
	}
	b.used[r.id] = true
	b.props(r, authorizerProps)
	b.apiID(r)
	a := config.Authorizer{Type: config.AuthLambda}
	switch typ, ok := b.str(r, "AuthorizerType", true); {
	case !ok:
		return
	case typ != "REQUEST":
		t.errorf(r.keyLine("AuthorizerType"), propPath(r, "AuthorizerType"), "%q is not supported: WebSocket APIs take REQUEST authorizers", typ)
		return
	}
	uri, ok := b.str(r, "AuthorizerUri", true)
	if !ok {
		return
	}
	fn := b.functionFromURI(uri, r, "AuthorizerUri")
	if fn == nil {
		return
	}
	l, ok := b.function(fn)
	if !ok {
		return
	}
	a.Lambda = *l
	if v, set, ok := b.value(r, "IdentitySource"); ok && set {
		switch v := v.(type) {
		case string:
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					a.IdentitySources = append(a.IdentitySources, s)
				}
			}
		case []any:
			for _, s := range v {
				str, isStr := s.(string)
				if !isStr {
					t.errorf(r.keyLine("IdentitySource"), propPath(r, "IdentitySource"), "want strings, got %s", kind(s))
					continue
				}
				a.IdentitySources = append(a.IdentitySources, str)
			}
		default:
			t.errorf(r.keyLine("IdentitySource"), propPath(r, "IdentitySource"), "want a list or a comma-separated string")
		}
		b.line("authorizer.identity_sources", r.keyLine("IdentitySource"))
	}
	ttl, ok := b.number(r, "AuthorizerResultTtlInSeconds", 0)
	if ok && (ttl < 0 || ttl > 3600) {
		t.errorf(r.keyLine("AuthorizerResultTtlInSeconds"), propPath(r, "AuthorizerResultTtlInSeconds"), "must be from 0 to 3600, got %d", ttl)
	}
	a.CacheTTL = time.Duration(ttl) * time.Second
	b.line("authorizer", r.line)
	b.line("authorizer.lambda", fn.line)
	t.result.Config.Authorizer = a
}

var (
	invocationsURI = regexp.MustCompile(`^arn:aws[a-z-]*:apigateway:[a-z0-9-]+:lambda:path/2015-03-31/functions/(.+)/invocations$`)
	functionARNRE  = regexp.MustCompile(`^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:([A-Za-z0-9_-]+)(:[A-Za-z0-9_$-]+)?$`)
)

// functionFromURI finds the template's function that an integration or
// authorizer URI invokes.
func (b *builder) functionFromURI(uri string, r *resource, key string) *resource {
	arn := uri
	if m := invocationsURI.FindStringSubmatch(uri); m != nil {
		arn = m[1]
	}
	m := functionARNRE.FindStringSubmatch(arn)
	if m == nil {
		b.t.errorf(r.props[key].key.Line, propPath(r, key), "%q is not a Lambda function ARN or arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations", uri)
		return nil
	}
	for _, id := range b.t.order {
		fn := b.t.res[id]
		if !fn.active || !isFunction(fn.typ) {
			continue
		}
		if name, ok := b.t.refOf(fn, fn.line, "Resources."+id); ok && name == m[1] {
			b.used[id] = true
			return fn
		}
	}
	b.t.errorf(r.props[key].key.Line, propPath(r, key), "function %q is not defined in the template; wsgate runs only the template's own functions", m[1])
	return nil
}

// integration maps an Integration resource used by the route key.
func (b *builder) integration(r *resource, routeKey string) (config.Integration, bool) {
	t := b.t
	var in config.Integration
	typ, ok := b.str(r, "IntegrationType", true)
	if typ == "AWS" {
		b.props(r, awsIntegrationProps)
	} else {
		b.props(r, integrationProps)
	}
	b.apiID(r)
	if !ok {
		return in, false
	}
	ms, ok := b.number(r, "TimeoutInMillis", 0)
	if !ok {
		return in, false
	}
	in.Timeout = time.Duration(ms) * time.Millisecond
	b.line("routes."+routeKey+".integration.timeout", r.keyLine("TimeoutInMillis"))
	if ct, ok := b.str(r, "ConnectionType", false); ok && ct != "" && ct != "INTERNET" {
		t.errorf(r.keyLine("ConnectionType"), propPath(r, "ConnectionType"), "%q is not supported; wsgate reaches backends over its own network (INTERNET)", ct)
	}
	if pfv, ok := b.str(r, "PayloadFormatVersion", false); ok && pfv != "" && pfv != "1.0" {
		t.errorf(r.keyLine("PayloadFormatVersion"), propPath(r, "PayloadFormatVersion"), "%q: WebSocket APIs take only 1.0", pfv)
	}
	uri, ok := b.str(r, "IntegrationUri", typ != "MOCK")
	if !ok {
		return in, false
	}
	responses := b.intResponses[r.ref]
	delete(b.intResponses, r.ref)
	switch typ {
	case "AWS_PROXY":
		b.noTemplates(r, typ)
		b.proxyResponses(responses, typ)
		fn := b.functionFromURI(uri, r, "IntegrationUri")
		if fn == nil {
			return in, false
		}
		l, ok := b.function(fn)
		if !ok {
			return in, false
		}
		in.Type = config.IntegrationLambda
		in.Lambda = *l
		b.line("routes."+routeKey+".integration.lambda", fn.line)
	case "HTTP_PROXY", "HTTP":
		b.noTemplates(r, typ)
		if typ == "HTTP_PROXY" {
			b.proxyResponses(responses, typ)
		} else {
			for _, resp := range responses {
				if _, set := resp.props["ResponseTemplates"]; set {
					t.errorf(resp.keyLine("ResponseTemplates"), propPath(resp, "ResponseTemplates"), "VTL response templates are not supported; the backend's response passes through")
				}
			}
		}
		if m, ok := b.str(r, "IntegrationMethod", false); ok && m != "" && m != "POST" {
			t.errorf(r.keyLine("IntegrationMethod"), propPath(r, "IntegrationMethod"), "%q is not supported; wsgate POSTs each message", m)
		}
		if !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://") {
			t.errorf(r.keyLine("IntegrationUri"), propPath(r, "IntegrationUri"), "%q must be an http:// or https:// URL", uri)
			return in, false
		}
		in.Type, in.URL, in.Payload = config.IntegrationHTTP, uri, config.PayloadBody
		in.Headers = b.headers(r)
	case "MOCK":
		in.Type = config.IntegrationMock
		in.StatusCode = b.mockStatus(r)
		body := b.mockBody(responses)
		in.Body = &body
	case "AWS":
		aws, ok := b.awsIntegration(r, routeKey, uri, responses)
		if !ok {
			return in, false
		}
		aws.Timeout = in.Timeout
		in = aws
	default:
		t.errorf(r.keyLine("IntegrationType"), propPath(r, "IntegrationType"), "%q: want AWS_PROXY, HTTP_PROXY, HTTP, MOCK or AWS", typ)
		return in, false
	}
	return in, true
}

// noTemplates reports the VTL keys on an integration that has no use for
// them.
func (b *builder) noTemplates(r *resource, typ string) {
	for _, key := range []string{"RequestTemplates", "TemplateSelectionExpression"} {
		if p, set := r.props[key]; set {
			b.t.errorf(p.key.Line, propPath(r, key), "VTL templates are not supported (on %s they do nothing in AWS either)", typ)
		}
	}
	if p, set := r.props["PassthroughBehavior"]; set && typ != "HTTP" {
		b.t.errorf(p.key.Line, propPath(r, "PassthroughBehavior"), "not supported on %s", typ)
	}
}

func (b *builder) proxyResponses(responses []*resource, typ string) {
	for _, resp := range responses {
		b.t.ignore(Ignored{LogicalID: resp.id, Type: resp.typ, Line: resp.line,
			Reason: typ + " integrations pass the backend's response through; AWS does not use integration responses for them"})
	}
}

// headers maps the static header values of RequestParameters.
func (b *builder) headers(r *resource) map[string]string {
	v, set, ok := b.value(r, "RequestParameters")
	if !ok || !set {
		return nil
	}
	line := r.keyLine("RequestParameters")
	m, isMap := v.(map[string]any)
	if !isMap {
		b.t.errorf(line, propPath(r, "RequestParameters"), "want a mapping")
		return nil
	}
	out := map[string]string{}
	for _, k := range sortedKeys(m) {
		s, _ := m[k].(string)
		name, isHeader := strings.CutPrefix(k, "integration.request.header.")
		if !isHeader || len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
			b.t.errorf(line, propPath(r, "RequestParameters."+k), "only static headers ('integration.request.header.NAME': \"'value'\") are supported")
			continue
		}
		out[name] = s[1 : len(s)-1]
	}
	return out
}

var mockStatusTemplate = regexp.MustCompile(`^\s*\{\s*"statusCode"\s*:\s*([0-9]{3})\s*\}\s*$`)

// mockStatus reads a MOCK integration's request template, which AWS uses
// only to pick the status code.
func (b *builder) mockStatus(r *resource) int {
	if p, set := r.props["TemplateSelectionExpression"]; set {
		if s, _ := b.str(r, "TemplateSelectionExpression", false); s != "\\$default" && s != "$default" {
			b.t.errorf(p.key.Line, propPath(r, "TemplateSelectionExpression"), "template selection is not supported; use one template under $default")
		}
	}
	v, set, ok := b.value(r, "RequestTemplates")
	if !ok || !set {
		return 200
	}
	line := r.keyLine("RequestTemplates")
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		b.t.errorf(line, propPath(r, "RequestTemplates"), "want one template, {\"statusCode\": CODE}")
		return 200
	}
	for k, tv := range m {
		s, _ := tv.(string)
		sm := mockStatusTemplate.FindStringSubmatch(s)
		if sm == nil {
			b.t.errorf(line, propPath(r, "RequestTemplates."+k), "only {\"statusCode\": CODE} is supported on MOCK integrations; VTL is not run")
			return 200
		}
		n, _ := strconv.Atoi(sm[1])
		return n
	}
	return 200
}

// mockBody reads the $default integration response of a MOCK integration:
// a static response template is the body.
func (b *builder) mockBody(responses []*resource) string {
	body := ""
	for _, resp := range responses {
		key, _ := b.str(resp, "IntegrationResponseKey", true)
		if key != "$default" {
			b.t.errorf(resp.keyLine("IntegrationResponseKey"), propPath(resp, "IntegrationResponseKey"), "%q: only the $default integration response is supported", key)
			continue
		}
		for _, k := range []string{"ResponseParameters", "ContentHandlingStrategy"} {
			if p, set := resp.props[k]; set {
				b.t.errorf(p.key.Line, propPath(resp, k), "not supported")
			}
		}
		v, set, ok := b.value(resp, "ResponseTemplates")
		if !ok || !set {
			continue
		}
		line := resp.keyLine("ResponseTemplates")
		m, isMap := v.(map[string]any)
		if !isMap || len(m) != 1 {
			b.t.errorf(line, propPath(resp, "ResponseTemplates"), "want one static template")
			continue
		}
		for k, tv := range m {
			s, _ := tv.(string)
			if strings.ContainsAny(s, "$#") {
				b.t.errorf(line, propPath(resp, "ResponseTemplates."+k), "VTL is not run; only a static body without $ or # is supported")
				continue
			}
			body = s
		}
	}
	return body
}

// keyLine returns the line of the property key of r, or of r when the
// property is absent.
func (r *resource) keyLine(key string) int {
	if p, ok := r.props[key]; ok {
		return p.key.Line
	}
	return r.line
}
