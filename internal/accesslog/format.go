package accesslog

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/wsgate/wsgate/internal/suggest"
)

// MaxFormatBytes is AWS's quota on the size of an access log format
// ("Access log template size", 3 KB).
const MaxFormatBytes = 3 << 10

// Presets are the formats the API Gateway console offers for a WebSocket
// stage, by the name a configuration may give instead of a format.
var Presets = map[string]string{
	"clf":  `$context.identity.sourceIp $context.identity.caller $context.identity.user [$context.requestTime] "$context.eventType $context.routeKey $context.connectionId" $context.status $context.requestId`,
	"json": `{"requestId":"$context.requestId", "ip": "$context.identity.sourceIp", "caller":"$context.identity.caller", "user":"$context.identity.user", "requestTime":"$context.requestTime", "eventType":"$context.eventType", "routeKey":"$context.routeKey", "status":"$context.status", "connectionId":"$context.connectionId"}`,
	"xml":  `<request id="$context.requestId"> <ip>$context.identity.sourceIp</ip> <caller>$context.identity.caller</caller> <user>$context.identity.user</user> <requestTime>$context.requestTime</requestTime> <eventType>$context.eventType</eventType> <routeKey>$context.routeKey</routeKey> <status>$context.status</status> <connectionId>$context.connectionId</connectionId> </request>`,
	"csv":  `$context.identity.sourceIp,$context.identity.caller,$context.identity.user,$context.requestTime,$context.eventType,$context.routeKey,$context.connectionId,$context.status,$context.requestId`,
}

// Entry is what one line is made of. A zero field prints "-", as AWS
// prints a variable that has no value, except where noted.
type Entry struct {
	// EventType is CONNECT, MESSAGE, DISCONNECT, or MANAGEMENT for a
	// management API call.
	EventType string
	// RequestID is the request id of the event the line is about (the
	// x-amzn-RequestId of a management call).
	RequestID    string
	ConnectionID string
	// RouteKey is the route selected; for a management call, its
	// operation (PostToConnection, …).
	RouteKey  string
	MessageID string
	// Status is the status answered: the handshake's (200 for an accepted
	// one, as AWS logs it), a message's, or a management call's.
	Status int
	// Time is when the request arrived: requestTime and requestTimeEpoch.
	Time        time.Time
	ConnectedAt time.Time
	APIID       string
	Stage       string
	DomainName  string
	SourceIP    string
	UserAgent   string
	// MessageDirection is "IN" for the events of clients.
	MessageDirection string
	// Caller is identity.caller: for a management call, who it
	// authenticated as (never the credential itself).
	Caller string
	// HTTPMethod, Path (without query string) and Protocol are the HTTP
	// request's, for handshakes and management calls.
	HTTPMethod string
	Path       string
	Protocol   string
	// Latency is responseLatency: from the request's arrival to its
	// answer. It prints even when zero.
	Latency time.Duration

	// IntegrationStatus is the status the integration answered.
	IntegrationStatus int
	// IntegrationLatency is printed when IntegrationTimed: AWS suppresses
	// it where no integration was called, and for mock integrations.
	IntegrationLatency time.Duration
	IntegrationTimed   bool
	// IntegrationError is the error of an integration that did not answer.
	IntegrationError string

	// Authorizer is the connection's requestContext.authorizer:
	// principalId and the authorizer's context, stringified.
	Authorizer map[string]any
	// AuthorizerStatus is the authorizer's decision as a status (200, 401,
	// 403, 500); zero when no authorizer ran.
	AuthorizerStatus  int
	AuthorizerLatency time.Duration
	AuthorizerTimed   bool
	// AuthorizerError says why the authorizer refused.
	AuthorizerError string

	// ErrorMessage is the message the client was answered with when the
	// request failed ("Unauthorized", "Forbidden", "Internal server
	// error", …), and ErrorResponseType AWS's gateway response type of it.
	ErrorMessage      string
	ErrorResponseType string

	// DisconnectStatusCode and DisconnectReason are those of a
	// DISCONNECT event.
	DisconnectStatusCode int
	DisconnectReason     string

	// ClientCert is the certificate the client presented with mutual
	// TLS, as events carry it in requestContext.identity.clientCert.
	ClientCert *events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert
}

// escaping is how variable values are written into a line, so that no
// value can break the line's syntax or start a new line.
type escaping int

const (
	// escapeText writes `"` and `\` with a backslash, and control
	// characters as \xHH, as Apache does in its access log.
	escapeText escaping = iota
	// escapeJSON writes values as the inside of a JSON string.
	escapeJSON
	// escapeXML writes values as XML character data.
	escapeXML
)

// Format is a parsed access log format. It is safe for concurrent use.
type Format struct {
	text  string
	parts []part
	esc   escaping
}

// part is a literal or, when get is set, a variable.
type part struct {
	lit string
	get getter
}

// getter appends the value of a variable for e to dst, escaped by esc, or
// "-" when it has none.
type getter func(dst []byte, e *Entry, esc escaping) []byte

// String returns the format's text, a preset's expanded.
func (f *Format) String() string { return f.text }

// ParseFormat parses s, a preset name (clf, json, xml, csv) or a format of
// $context variables. A format must be one line of at most MaxFormatBytes,
// and name only variables AWS documents for WebSocket access logs (see
// Variables) or $context.authorizer.KEY. A format that starts with "{" is
// JSON: values are escaped as JSON string content, and the format must be
// valid JSON once its variables are replaced; one that starts with "<" is
// XML, whose values are escaped as XML.
func ParseFormat(s string) (*Format, error) {
	if p, ok := Presets[s]; ok {
		s = p
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, fmt.Errorf("the format is empty; give a preset (clf, json, xml, csv) or a format of $context variables")
	case len(s) > MaxFormatBytes:
		return nil, fmt.Errorf("the format is %d bytes; AWS allows at most %d", len(s), MaxFormatBytes)
	case strings.ContainsAny(s, "\r\n"):
		return nil, fmt.Errorf("the format must be one line (a YAML folded scalar, >-, joins lines with spaces)")
	case !utf8.ValidString(s):
		return nil, fmt.Errorf("the format is not valid UTF-8")
	}
	f := &Format{text: s}
	switch s[0] {
	case '{':
		f.esc = escapeJSON
	case '<':
		f.esc = escapeXML
	}
	const prefix = "$context."
	rest := s
	for {
		i := strings.Index(rest, prefix)
		if i < 0 {
			break
		}
		if i > 0 {
			f.parts = append(f.parts, part{lit: rest[:i]})
		}
		name := variableName(rest[i+len(prefix):])
		if name == "" {
			return nil, fmt.Errorf("%q at byte %d names no variable", prefix, len(s)-len(rest)+i)
		}
		get, ok := lookup(name)
		if !ok {
			return nil, unknownVariable(name)
		}
		f.parts = append(f.parts, part{get: get})
		rest = rest[i+len(prefix)+len(name):]
	}
	if rest != "" {
		f.parts = append(f.parts, part{lit: rest})
	}
	if f.esc == escapeJSON {
		line := f.Append(nil, &Entry{})
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, fmt.Errorf("the format starts with \"{\" but is not JSON once its variables are replaced (by \"-\" when they have no value, so put each inside a JSON string): %v", err)
		}
	}
	return f, nil
}

// variableName returns the variable name at the start of s: segments of
// letters, digits and "_" joined by dots. A dot not followed by such a
// character ends the name and is not part of it.
func variableName(s string) string {
	n := 0
	for n < len(s) {
		m := n
		for m < len(s) && isNameByte(s[m]) {
			m++
		}
		if m == n {
			break
		}
		n = m
		if n+1 < len(s) && s[n] == '.' && isNameByte(s[n+1]) {
			n++
			continue
		}
		break
	}
	return s[:n]
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// unknownVariable is the error for $context.name, suggesting the nearest
// known variable.
func unknownVariable(name string) error {
	if best := suggest.Nearest(name, Variables(), 4); best != "" {
		return fmt.Errorf("unknown variable $context.%s (did you mean $context.%s?)", name, best)
	}
	return fmt.Errorf("unknown variable $context.%s; see docs/access-logs.md for the variables", name)
}

// Append appends the line for e, without a newline, to dst.
func (f *Format) Append(dst []byte, e *Entry) []byte {
	for _, p := range f.parts {
		if p.get == nil {
			dst = append(dst, p.lit...)
			continue
		}
		dst = p.get(dst, e, f.esc)
	}
	return dst
}

// Variables returns the names, without "$context.", of the variables a
// format may use besides authorizer.KEY, sorted.
func Variables() []string {
	names := make([]string, 0, len(variables))
	for k := range variables {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// lookup returns the getter of the variable name.
func lookup(name string) (getter, bool) {
	if g, ok := variables[name]; ok {
		return g, true
	}
	key, ok := strings.CutPrefix(name, "authorizer.")
	if !ok || strings.Contains(key, ".") {
		return nil, false
	}
	return func(dst []byte, e *Entry, esc escaping) []byte {
		v, ok := e.Authorizer[key]
		if !ok {
			return append(dst, '-')
		}
		return appendString(dst, stringValue(v), esc)
	}, true
}

func stringValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	}
	return fmt.Sprint(v)
}

type clientCert = events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert

// cert is the getter of a field of the client's certificate.
func cert(f func(c *clientCert) string) getter {
	return func(dst []byte, e *Entry, esc escaping) []byte {
		if e.ClientCert == nil {
			return append(dst, '-')
		}
		return appendString(dst, f(e.ClientCert), esc)
	}
}

// none is the getter of a variable AWS documents that wsgate never has a
// value for (IAM, Cognito, WAF and API key identities).
func none(dst []byte, _ *Entry, _ escaping) []byte { return append(dst, '-') }

func str(f func(e *Entry) string) getter {
	return func(dst []byte, e *Entry, esc escaping) []byte { return appendString(dst, f(e), esc) }
}

func num(f func(e *Entry) int) getter {
	return func(dst []byte, e *Entry, _ escaping) []byte {
		n := f(e)
		if n == 0 {
			return append(dst, '-')
		}
		return strconv.AppendInt(dst, int64(n), 10)
	}
}

func millis(f func(e *Entry) (time.Duration, bool)) getter {
	return func(dst []byte, e *Entry, _ escaping) []byte {
		d, ok := f(e)
		if !ok {
			return append(dst, '-')
		}
		return strconv.AppendInt(dst, d.Milliseconds(), 10)
	}
}

func epochMillis(f func(e *Entry) time.Time) getter {
	return func(dst []byte, e *Entry, _ escaping) []byte {
		t := f(e)
		if t.IsZero() {
			return append(dst, '-')
		}
		return strconv.AppendInt(dst, t.UnixMilli(), 10)
	}
}

// clfLayout is Common Log Format as API Gateway writes $context.requestTime.
const clfLayout = "02/Jan/2006:15:04:05 -0700"

func requestID(e *Entry) string { return e.RequestID }

func authorizerLatency(e *Entry) (time.Duration, bool) {
	return e.AuthorizerLatency, e.AuthorizerTimed
}

func integrationLatency(e *Entry) (time.Duration, bool) {
	return e.IntegrationLatency, e.IntegrationTimed
}

func integrationStatus(e *Entry) int { return e.IntegrationStatus }

func authorizerStatus(e *Entry) int { return e.AuthorizerStatus }

func authorizerError(e *Entry) string { return e.AuthorizerError }

func principalID(e *Entry) string {
	if v, ok := e.Authorizer["principalId"]; ok {
		return stringValue(v)
	}
	return ""
}

// variables are the variables of AWS's WebSocket access logs, by name
// without "$context.", and a few of AWS's REST API variables that
// handshakes and management calls have (httpMethod, path, protocol,
// responseLatency), and the disconnect fields of the $disconnect event.
var variables = map[string]getter{
	"apiId":             str(func(e *Entry) string { return e.APIID }),
	"connectedAt":       epochMillis(func(e *Entry) time.Time { return e.ConnectedAt }),
	"connectionId":      str(func(e *Entry) string { return e.ConnectionID }),
	"domainName":        str(func(e *Entry) string { return e.DomainName }),
	"eventType":         str(func(e *Entry) string { return e.EventType }),
	"extendedRequestId": str(requestID),
	"requestId":         str(requestID),
	"messageId":         str(func(e *Entry) string { return e.MessageID }),
	"messageDirection":  str(func(e *Entry) string { return e.MessageDirection }),
	"routeKey":          str(func(e *Entry) string { return e.RouteKey }),
	"stage":             str(func(e *Entry) string { return e.Stage }),
	"status":            num(func(e *Entry) int { return e.Status }),
	"requestTime": func(dst []byte, e *Entry, _ escaping) []byte {
		if e.Time.IsZero() {
			return append(dst, '-')
		}
		return e.Time.UTC().AppendFormat(dst, clfLayout)
	},
	"requestTimeEpoch":     epochMillis(func(e *Entry) time.Time { return e.Time }),
	"disconnectStatusCode": num(func(e *Entry) int { return e.DisconnectStatusCode }),
	"disconnectReason":     str(func(e *Entry) string { return e.DisconnectReason }),

	"httpMethod": str(func(e *Entry) string { return e.HTTPMethod }),
	"path":       str(func(e *Entry) string { return e.Path }),
	"protocol":   str(func(e *Entry) string { return e.Protocol }),
	"responseLatency": func(dst []byte, e *Entry, _ escaping) []byte {
		return strconv.AppendInt(dst, e.Latency.Milliseconds(), 10)
	},

	"identity.sourceIp":  str(func(e *Entry) string { return e.SourceIP }),
	"identity.userAgent": str(func(e *Entry) string { return e.UserAgent }),
	"identity.caller":    str(func(e *Entry) string { return e.Caller }),

	"identity.clientCert.clientCertPem":      cert(func(c *clientCert) string { return c.ClientCertPem }),
	"identity.clientCert.subjectDN":          cert(func(c *clientCert) string { return c.SubjectDN }),
	"identity.clientCert.issuerDN":           cert(func(c *clientCert) string { return c.IssuerDN }),
	"identity.clientCert.serialNumber":       cert(func(c *clientCert) string { return c.SerialNumber }),
	"identity.clientCert.validity.notBefore": cert(func(c *clientCert) string { return c.Validity.NotBefore }),
	"identity.clientCert.validity.notAfter":  cert(func(c *clientCert) string { return c.Validity.NotAfter }),
	"identity.accountId":                     none,
	"identity.apiKey":                        none,
	"identity.apiKeyId":                      none,
	"identity.cognitoAuthenticationProvider": none,
	"identity.cognitoAuthenticationType":     none,
	"identity.cognitoIdentityId":             none,
	"identity.cognitoIdentityPoolId":         none,
	"identity.principalOrgId":                none,
	"identity.user":                          none,
	"identity.userArn":                       none,

	"integrationLatency":            millis(integrationLatency),
	"integration.latency":           millis(integrationLatency),
	"integrationStatus":             num(integrationStatus),
	"integration.status":            num(integrationStatus),
	"integration.integrationStatus": num(integrationStatus),
	"integration.error":             str(func(e *Entry) string { return e.IntegrationError }),
	"integrationErrorMessage":       str(func(e *Entry) string { return e.IntegrationError }),
	"integration.requestId":         none,
	"awsEndpointRequestId":          none,
	"error.message":                 str(func(e *Entry) string { return e.ErrorMessage }),
	"error.responseType":            str(func(e *Entry) string { return e.ErrorResponseType }),
	"error.validationErrorString":   none,
	"authorizer.principalId":        str(principalID),
	"authorizer.error":              str(authorizerError),
	"authorizer.status":             num(authorizerStatus),
	"authorizer.latency":            millis(authorizerLatency),
	"authorizer.integrationStatus":  num(authorizerStatus),
	"authorizer.integrationLatency": millis(authorizerLatency),
	"authorizer.requestId":          none,
	"authorize.error":               str(authorizerError),
	"authorize.status":              num(authorizerStatus),
	"authorize.latency":             millis(authorizerLatency),
	"authenticate.error":            none,
	"authenticate.latency":          none,
	"authenticate.status":           none,
	"waf.error":                     none,
	"waf.latency":                   none,
	"waf.status":                    none,
	"error.messageString":           messageString,
}

// messageString is $context.error.messageString: error.message in double
// quotes, "-" unquoted when there is none.
func messageString(dst []byte, e *Entry, esc escaping) []byte {
	if e.ErrorMessage == "" {
		return append(dst, '-')
	}
	q := byte('"')
	if esc == escapeJSON {
		// Inside a JSON string the quotes are escaped too.
		dst = append(dst, '\\')
	}
	dst = append(dst, q)
	dst = appendString(dst, e.ErrorMessage, esc)
	if esc == escapeJSON {
		dst = append(dst, '\\')
	}
	return append(dst, q)
}

// appendString appends s escaped by esc, or "-" when s is empty.
func appendString(dst []byte, s string, esc escaping) []byte {
	if s == "" {
		return append(dst, '-')
	}
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c < 0x20 || c == 0x7f:
				if esc == escapeJSON {
					dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				} else {
					dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
				}
			case c == '"' && esc == escapeXML:
				dst = append(dst, "&quot;"...)
			case c == '&' && esc == escapeXML:
				dst = append(dst, "&amp;"...)
			case c == '<' && esc == escapeXML:
				dst = append(dst, "&lt;"...)
			case c == '>' && esc == escapeXML:
				dst = append(dst, "&gt;"...)
			case c == '\'' && esc == escapeXML:
				dst = append(dst, "&apos;"...)
			case (c == '"' || c == '\\') && esc != escapeXML:
				dst = append(dst, '\\', c)
			default:
				dst = append(dst, c)
			}
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, "\ufffd"...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}
