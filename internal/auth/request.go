package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/integration"
)

// MaxAuthorizerResponseBytes is the largest authorizer response accepted:
// AWS's 8 KB quota on an authorizer result.
const MaxAuthorizerResponseBytes = 8192

// invokeAction is the IAM action a policy must allow for $connect.
const invokeAction = "execute-api:Invoke"

// API names the deployed API and stage the methodArn is built from.
type API struct {
	// APIID is the api-id of the methodArn and requestContext.apiId.
	APIID string
	// Stage is the stage-name of the methodArn and requestContext.stage.
	// The default, "", is "$default", a WebSocket API's default stage.
	Stage string
}

func (a API) stage() string {
	if a.Stage == "" {
		return "$default"
	}
	return a.Stage
}

// RequestAuthorizer is a custom authorizer called over HTTP in the format of
// an AWS Lambda REQUEST authorizer: it POSTs the event API Gateway sends a
// WebSocket API's authorizer function (methodArn, headers, query string,
// stage variables and a requestContext with the connection id) and reads the
// answer a Lambda authorizer returns, {principalId, policyDocument, context,
// usageIdentifierKey}.
//
// The answer is mapped as API Gateway maps it:
//
//   - HTTP 401, or a body that is "Unauthorized" (plain, as the JSON string
//     "Unauthorized", or an object whose message or errorMessage is
//     "Unauthorized", the last being how Lambda reports a function that
//     failed with that error): 401 Unauthorized.
//   - A policy that allows execute-api:Invoke on the methodArn, with no
//     statement denying it: the connection is accepted with the returned
//     principalId, context and usageIdentifierKey.
//   - A Deny on the methodArn (which wins over any Allow), or no statement
//     allowing it: 403 Forbidden.
//   - No principalId (absent, null or ""): 403 Forbidden, as serverless-offline
//     answers; AWS documents principalId as required without naming the
//     status.
//   - Any other HTTP status, a body over MaxAuthorizerResponseBytes, a body
//     that is not a JSON object, a Lambda function error, a context value
//     that is not a string, number or boolean, a malformed policy statement,
//     a timeout and a transport error: 500, with the reason in the Denial for
//     the log.
//
// The whole response is validated before the policy is evaluated, so a
// malformed answer is a 500 whatever its policy says. Policy statements use
// IAM semantics: Action and Resource (or NotAction and NotResource) are a
// string or a list, Effect is Allow or Deny in any case, actions match
// case-insensitively and resources case-sensitively, both with the * and ?
// wildcards. A statement with a Condition is a 500: wsgate does not evaluate
// IAM conditions and refuses to guess.
//
// A RequestAuthorizer is safe for concurrent use.
type RequestAuthorizer struct {
	url       string
	timeout   time.Duration
	headers   map[string]string
	methodArn string
	api       API
	fast      *integration.FastClient
	invoker   integration.Invoker // set for a lambda authorizer, instead of url
}

var (
	_ Authorizer = (*RequestAuthorizer)(nil)
	_ Closer     = (*RequestAuthorizer)(nil)
)

// NewRequest returns the authorizer cfg describes for api. Zero fields of cfg
// take the defaults config fills in: Timeout 10s, Region "us-east-1",
// AccountID "000000000000". cfg.URL is called through fast, normally the
// gateway's integration.NewFastClient(); nil means a FastClient of its own.
func NewRequest(cfg config.RequestAuth, api API, fast *integration.FastClient) *RequestAuthorizer {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "000000000000"
	}
	if fast == nil {
		fast = integration.NewFastClient()
	}
	headers := make(map[string]string, len(cfg.Headers))
	for k, v := range cfg.Headers {
		headers[k] = v
	}
	return &RequestAuthorizer{
		url:       cfg.URL,
		timeout:   cfg.Timeout,
		headers:   headers,
		methodArn: "arn:aws:execute-api:" + cfg.Region + ":" + cfg.AccountID + ":" + api.APIID + "/" + api.stage() + "/$connect",
		api:       api,
		fast:      fast,
	}
}

// NewLambdaRequest returns a REQUEST authorizer that is a Lambda function
// reached through invoker, such as a program run by an
// integration.LocalRuntime or the Lambda Invoke API. cfg gives the timeout,
// region and account id, with NewRequest's defaults; its URL and Headers are
// not used. The answer is mapped as NewRequest's is; a function error whose
// errorMessage is "Unauthorized" is a 401 and any other function error a
// 500. Close closes invoker when it is an io.Closer.
func NewLambdaRequest(cfg config.RequestAuth, api API, invoker integration.Invoker) *RequestAuthorizer {
	cfg.URL, cfg.Headers = "", nil
	a := NewRequest(cfg, api, nil)
	a.fast = nil
	a.invoker = invoker
	return a
}

// Close releases the invoker of a lambda authorizer.
func (a *RequestAuthorizer) Close() error {
	if c, ok := a.invoker.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// MethodArn returns the ARN the policy must allow:
// arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect. Like AWS's
// WebSocket methodArn it has no HTTP verb.
func (a *RequestAuthorizer) MethodArn() string { return a.methodArn }

// Authorize implements Authorizer. It returns a *Denial for every refusal and
// failure; the Denial's Reason never holds a header value or the URL, which
// may carry credentials.
func (a *RequestAuthorizer) Authorize(ctx context.Context, req *Request) (*Identity, error) {
	payload, err := a.event(req, time.Now()).appendJSON(nil)
	if err != nil {
		return nil, Failed(fmt.Sprintf("encode authorizer event: %v", err))
	}
	callCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if a.invoker != nil {
		return a.invoke(ctx, callCtx, payload)
	}
	status, body, err := a.post(ctx, callCtx, payload)
	if err != nil {
		return nil, err
	}
	if status == http.StatusUnauthorized {
		return nil, Unauthorized("authorizer answered HTTP 401")
	}
	if len(body) > MaxAuthorizerResponseBytes {
		return nil, Failed(fmt.Sprintf("authorizer response larger than %d bytes", MaxAuthorizerResponseBytes))
	}
	if isUnauthorized(body) {
		return nil, Unauthorized("authorizer answered Unauthorized")
	}
	if status < 200 || status > 299 {
		return nil, Failed(fmt.Sprintf("authorizer answered HTTP %d", status))
	}
	return a.decide(body)
}

// post sends the event payload to the authorizer's URL and returns the
// answer's status and body (the body cut at one byte over
// MaxAuthorizerResponseBytes); a failed call is a Denial.
func (a *RequestAuthorizer) post(ctx, callCtx context.Context, payload []byte) (int, []byte, error) {
	resp, err := a.fast.Post(callCtx, a.url, 0, "application/json", payload, func(set func(k, v string)) {
		for k, v := range a.headers {
			set(k, v)
		}
	})
	if err != nil {
		return 0, nil, a.callFailed(ctx, callCtx, "authorizer unreachable", err)
	}
	defer resp.Release()
	body := resp.Body()
	if len(body) > MaxAuthorizerResponseBytes+1 {
		body = body[:MaxAuthorizerResponseBytes+1]
	}
	return resp.StatusCode(), bytes.Clone(body), nil
}

// invoke calls a lambda authorizer.
func (a *RequestAuthorizer) invoke(ctx, callCtx context.Context, payload []byte) (*Identity, error) {
	body, err := a.invoker.Invoke(callCtx, payload)
	var fe *integration.FunctionError
	switch {
	case errors.As(err, &fe) && fe.Message == "Unauthorized":
		return nil, Unauthorized("authorizer function failed with Unauthorized")
	case errors.As(err, &fe):
		return nil, Failed(fmt.Sprintf("authorizer function failed (errorType %q)", fe.Type))
	case err != nil:
		return nil, a.callFailed(ctx, callCtx, "invoking authorizer", err)
	case len(body) > MaxAuthorizerResponseBytes:
		return nil, Failed(fmt.Sprintf("authorizer response larger than %d bytes", MaxAuthorizerResponseBytes))
	case isUnauthorized(body):
		return nil, Unauthorized("authorizer answered Unauthorized")
	}
	return a.decide(body)
}

// callFailed turns a transport error into a 500 that says why: our timeout,
// the caller giving up, or the error itself without the URL.
func (a *RequestAuthorizer) callFailed(parent, call context.Context, what string, err error) error {
	switch {
	case parent.Err() != nil:
		return Failed(fmt.Sprintf("authorizer call abandoned: %v", parent.Err()))
	case errors.Is(call.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return Failed(fmt.Sprintf("authorizer did not answer within %v", a.timeout))
	}
	return Failed(fmt.Sprintf("%s: %v", what, redactURL(err)))
}

// redactURL drops the URL from a *url.Error: it may hold credentials.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// decide evaluates a 2xx authorizer response body.
func (a *RequestAuthorizer) decide(body []byte) (*Identity, error) {
	out, err := parseOutput(body)
	if err != nil {
		return nil, Failed(err.Error())
	}
	if out.principalID == "" {
		return nil, Forbidden("authorizer response has no principalId")
	}
	if err := out.policy.allows(a.methodArn); err != nil {
		return nil, err
	}
	return &Identity{
		PrincipalID:        out.principalID,
		Context:            out.context,
		UsageIdentifierKey: out.usageIdentifierKey,
	}, nil
}

// isUnauthorized reports whether body is one of the ways an authorizer says
// "Unauthorized": the bare word, the JSON string, or a JSON object whose
// message (API Gateway's error shape) or errorMessage (Lambda's) is that
// word. As in AWS, the match is exact and case-sensitive.
func isUnauthorized(body []byte) bool {
	const word = "Unauthorized"
	body = bytes.TrimSpace(body)
	if string(body) == word {
		return true
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	switch v := v.(type) {
	case string:
		return v == word
	case map[string]any:
		return v["message"] == word || v["errorMessage"] == word
	}
	return false
}

// output is a validated authorizer response.
type output struct {
	principalID        string
	context            map[string]any
	usageIdentifierKey string
	policy             policyDocument
}

// rawOutput is the authorizer response as sent, before validation.
type rawOutput struct {
	PrincipalID        json.RawMessage `json:"principalId"`
	PolicyDocument     *policyDocument `json:"policyDocument"`
	Context            json.RawMessage `json:"context"`
	UsageIdentifierKey json.RawMessage `json:"usageIdentifierKey"`
	ErrorMessage       json.RawMessage `json:"errorMessage"`
	ErrorType          json.RawMessage `json:"errorType"`
}

// parseOutput decodes and validates an authorizer response. Its errors are
// reasons for a 500.
func parseOutput(body []byte) (*output, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("authorizer response is not a JSON object")
	}
	var raw rawOutput
	if err := decodeJSON(trimmed, &raw); err != nil {
		return nil, fmt.Errorf("malformed authorizer response: %v", err)
	}
	if raw.ErrorMessage != nil {
		var typ string
		_ = json.Unmarshal(raw.ErrorType, &typ)
		return nil, fmt.Errorf("authorizer function failed (errorType %q)", typ)
	}
	out := &output{}
	if !isNull(raw.PrincipalID) {
		if err := json.Unmarshal(raw.PrincipalID, &out.principalID); err != nil {
			return nil, errors.New("principalId is not a string")
		}
	}
	if !isNull(raw.UsageIdentifierKey) {
		if err := json.Unmarshal(raw.UsageIdentifierKey, &out.usageIdentifierKey); err != nil {
			return nil, errors.New("usageIdentifierKey is not a string")
		}
	}
	if !isNull(raw.Context) {
		ctx, err := parseContext(raw.Context)
		if err != nil {
			return nil, err
		}
		out.context = ctx
	}
	if raw.PolicyDocument != nil {
		if err := raw.PolicyDocument.validate(); err != nil {
			return nil, err
		}
		out.policy = *raw.PolicyDocument
	}
	return out, nil
}

// parseContext decodes the context map, whose values may only be strings,
// numbers (kept as json.Number) and booleans.
func parseContext(raw json.RawMessage) (map[string]any, error) {
	var ctx map[string]any
	if err := decodeJSON(raw, &ctx); err != nil {
		return nil, errors.New("context is not a JSON object")
	}
	for k, v := range ctx {
		switch v.(type) {
		case string, json.Number, bool:
		default:
			return nil, fmt.Errorf("context value %q is not a string, number or boolean", k)
		}
	}
	return ctx, nil
}

// decodeJSON decodes exactly one JSON value from data into v, keeping
// numbers as json.Number.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// policyDocument is the IAM policy an authorizer returns. Statement may be
// one statement or a list.
type policyDocument struct {
	Version   string     `json:"Version"`
	Statement statements `json:"Statement"`
}

type statements []statement

func (s *statements) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		var one statement
		if err := json.Unmarshal(data, &one); err != nil {
			return err
		}
		*s = statements{one}
		return nil
	}
	if isNull(data) {
		*s = nil
		return nil
	}
	return json.Unmarshal(data, (*[]statement)(s))
}

// statement is one IAM policy statement. A nil list means the element is
// absent; an empty, non-nil list was written as [].
type statement struct {
	Effect      string          `json:"Effect"`
	Action      stringList      `json:"Action"`
	NotAction   stringList      `json:"NotAction"`
	Resource    stringList      `json:"Resource"`
	NotResource stringList      `json:"NotResource"`
	Condition   json.RawMessage `json:"Condition"`
}

// stringList is an IAM element written as a string or a list of strings.
type stringList []string

func (l *stringList) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if isNull(data) {
		*l = nil
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*l = stringList{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return errors.New("want a string or a list of strings")
	}
	if list == nil {
		list = []string{}
	}
	*l = list
	return nil
}

// validate rejects statements that cannot be evaluated: an unknown Effect,
// a missing or doubled Action or Resource element, or a Condition.
func (p *policyDocument) validate() error {
	for i, st := range p.Statement {
		n := i + 1
		if !strings.EqualFold(st.Effect, "Allow") && !strings.EqualFold(st.Effect, "Deny") {
			return fmt.Errorf("policy statement %d: Effect %q is neither Allow nor Deny", n, st.Effect)
		}
		if (st.Action == nil) == (st.NotAction == nil) {
			return fmt.Errorf("policy statement %d: want exactly one of Action and NotAction", n)
		}
		if (st.Resource == nil) == (st.NotResource == nil) {
			return fmt.Errorf("policy statement %d: want exactly one of Resource and NotResource", n)
		}
		if !isNull(st.Condition) {
			return fmt.Errorf("policy statement %d has a Condition, which wsgate does not evaluate", n)
		}
	}
	return nil
}

// allows returns nil when the policy allows execute-api:Invoke on arn and
// no statement denies it, and a 403 denial otherwise.
func (p *policyDocument) allows(arn string) error {
	allowed := false
	for _, st := range p.Statement {
		if !st.applies(arn) {
			continue
		}
		if strings.EqualFold(st.Effect, "Deny") {
			return Forbidden(fmt.Sprintf("policy denies %s on %s", invokeAction, arn))
		}
		allowed = true
	}
	if !allowed {
		return Forbidden(fmt.Sprintf("no policy statement allows %s on %s", invokeAction, arn))
	}
	return nil
}

// applies reports whether st covers execute-api:Invoke on arn. IAM action
// names are case-insensitive; resources are not.
func (st statement) applies(arn string) bool {
	action := strings.ToLower(invokeAction)
	matchAction := func(p string) bool { return MatchResource(strings.ToLower(p), action) }
	matchResource := func(p string) bool { return MatchResource(p, arn) }
	if st.Action != nil && !anyOf(st.Action, matchAction) {
		return false
	}
	if st.NotAction != nil && anyOf(st.NotAction, matchAction) {
		return false
	}
	if st.Resource != nil && !anyOf(st.Resource, matchResource) {
		return false
	}
	if st.NotResource != nil && anyOf(st.NotResource, matchResource) {
		return false
	}
	return true
}

func anyOf(list []string, match func(string) bool) bool {
	for _, s := range list {
		if match(s) {
			return true
		}
	}
	return false
}

// MatchResource reports whether an IAM Resource pattern matches arn. "*"
// matches any run of characters, including none and including "/" and ":",
// and "?" matches exactly one character (a Unicode code point); every other
// character matches itself, case-sensitively. So
// "arn:aws:execute-api:us-east-1:000000000000:local/*" matches every route
// of every stage of API local, and "…/prod/*/*" does not match
// "…/prod/$connect", which has one segment after the stage.
//
// IAM's documentation confines a "*" that is not the last character of an
// ARN segment to that segment; like common IAM policy evaluators,
// MatchResource does not, which only matters for patterns that put text
// after a "*" within the colon-separated part of the ARN.
func MatchResource(pattern, arn string) bool {
	// Greedy matching with backtracking to the last "*": each "*" only ever
	// grows, so the work is O(len(pattern) × len(arn)) at worst.
	p, s := 0, 0
	star, starS := -1, 0
	for s < len(arn) {
		if p < len(pattern) {
			switch c := pattern[p]; {
			case c == '*':
				star, starS = p, s
				p++
				continue
			case c == '?':
				_, n := utf8.DecodeRuneInString(arn[s:])
				p++
				s += n
				continue
			case c == arn[s]:
				p++
				s++
				continue
			}
		}
		if star < 0 {
			return false
		}
		// Let the last "*" swallow one more character and retry after it.
		_, n := utf8.DecodeRuneInString(arn[starS:])
		starS += n
		p, s = star+1, starS
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// requestEvent is the input of a WebSocket REQUEST authorizer, with the keys
// of AWS's example in "Creating a Lambda REQUEST authorizer function".
// events.APIGatewayCustomAuthorizerRequestTypeRequest models the REST API
// input instead: it has no connectionId, eventType, routeKey and the like,
// and would add REST-only keys (resource, path, httpMethod, pathParameters).
// This shape decodes into that struct all the same.
type requestEvent struct {
	Type                            string              `json:"type"`
	MethodArn                       string              `json:"methodArn"`
	Headers                         map[string]string   `json:"headers"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters,omitempty"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters,omitempty"`
	StageVariables                  map[string]string   `json:"stageVariables"`
	RequestContext                  requestEventContext `json:"requestContext"`
}

type requestEventContext struct {
	RouteKey          string               `json:"routeKey"`
	EventType         string               `json:"eventType"`
	ExtendedRequestID string               `json:"extendedRequestId"`
	RequestTime       string               `json:"requestTime"`
	MessageDirection  string               `json:"messageDirection"`
	Stage             string               `json:"stage"`
	ConnectedAt       int64                `json:"connectedAt"`
	RequestTimeEpoch  int64                `json:"requestTimeEpoch"`
	Identity          requestEventIdentity `json:"identity"`
	RequestID         string               `json:"requestId"`
	DomainName        string               `json:"domainName"`
	ConnectionID      string               `json:"connectionId"`
	APIID             string               `json:"apiId"`
}

type requestEventIdentity struct {
	SourceIP   string               `json:"sourceIp"`
	ClientCert *awsevent.ClientCert `json:"clientCert,omitempty"`
}

// appendJSON appends the JSON of ev to dst: byte for byte what
// awsevent.Marshal writes, without reflection.
func (ev *requestEvent) appendJSON(dst []byte) ([]byte, error) {
	w := awsevent.NewJSONWriter(dst, false)
	w.Begin()
	w.StringMember("type", ev.Type)
	w.StringMember("methodArn", ev.MethodArn)
	w.Key("headers")
	w.StringMap(ev.Headers)
	w.Key("multiValueHeaders")
	w.StringsMap(ev.MultiValueHeaders)
	w.OptStringMapMember("queryStringParameters", ev.QueryStringParameters)
	w.OptStringsMapMember("multiValueQueryStringParameters", ev.MultiValueQueryStringParameters)
	w.Key("stageVariables")
	w.StringMap(ev.StageVariables)
	w.Key("requestContext")
	rc := &ev.RequestContext
	w.Begin()
	w.StringMember("routeKey", rc.RouteKey)
	w.StringMember("eventType", rc.EventType)
	w.StringMember("extendedRequestId", rc.ExtendedRequestID)
	w.StringMember("requestTime", rc.RequestTime)
	w.StringMember("messageDirection", rc.MessageDirection)
	w.StringMember("stage", rc.Stage)
	w.IntMember("connectedAt", rc.ConnectedAt)
	w.IntMember("requestTimeEpoch", rc.RequestTimeEpoch)
	w.Key("identity")
	w.Begin()
	w.StringMember("sourceIp", rc.Identity.SourceIP)
	if rc.Identity.ClientCert != nil {
		w.Key("clientCert")
		w.ClientCert(rc.Identity.ClientCert)
	}
	w.End()
	w.StringMember("requestId", rc.RequestID)
	w.StringMember("domainName", rc.DomainName)
	w.StringMember("connectionId", rc.ConnectionID)
	w.StringMember("apiId", rc.APIID)
	w.End()
	w.End()
	return w.Bytes()
}

// event builds the authorizer input for req at time now.
//
// The headers are the upgrade request's as the client sent them, including
// Connection and Upgrade, which AWS shows in the authorizer input, plus what
// API Gateway adds: Host (req.Host), content-length "0", X-Forwarded-For
// (the socket's peer, req.Peer or else req.SourceIP, appended to any value
// sent) and an X-Amzn-Trace-Id when the
// request has none. The query string appears only when there is one. A
// repeated header or query parameter has its last value in headers and
// queryStringParameters and all of them in the multi-valued maps, as in the
// $connect event (awsevent.Headers); several Cookie lines are joined with
// "; ". So the value an identity source has (Source.Value) is the one
// headers and queryStringParameters show.
func (a *RequestAuthorizer) event(req *Request, now time.Time) *requestEvent {
	connectedAt := req.Time
	if connectedAt.IsZero() {
		connectedAt = now
	}
	id := awsevent.NewID()
	peer := req.Peer
	if peer == "" {
		peer = req.SourceIP
	}
	single, multi := awsevent.Headers(req.Header, awsevent.HeaderOptions{Host: req.Host, SourceIP: peer, HopByHop: true, ContentLength: true}, now)
	ev := &requestEvent{
		Type:              "REQUEST",
		MethodArn:         a.methodArn,
		Headers:           single,
		MultiValueHeaders: multi,
		StageVariables:    make(map[string]string, len(req.StageVariables)),
		RequestContext: requestEventContext{
			RouteKey:          "$connect",
			EventType:         "CONNECT",
			ExtendedRequestID: id,
			RequestTime:       awsevent.RequestTime(now),
			MessageDirection:  "IN",
			Stage:             a.api.stage(),
			ConnectedAt:       connectedAt.UnixMilli(),
			RequestTimeEpoch:  now.UnixMilli(),
			Identity:          requestEventIdentity{SourceIP: req.SourceIP, ClientCert: req.ClientCert},
			RequestID:         id,
			DomainName:        req.Host,
			ConnectionID:      req.ConnectionID,
			APIID:             a.api.APIID,
		},
	}
	for k, v := range req.StageVariables {
		ev.StageVariables[k] = v
	}
	ev.QueryStringParameters, ev.MultiValueQueryStringParameters = awsevent.Query(req.Query)
	return ev
}
