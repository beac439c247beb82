package awsevent

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// AppendJSON appends the JSON of ev to dst and returns the extended slice.
// The bytes are exactly those of json.Marshal(ev) when escapeHTML is true,
// and those of Marshal(ev) when it is false: the same members in the same
// order, omitempty honoured, map keys sorted, strings escaped alike. It
// writes the event without reflection; only requestContext.authorizer and
// requestContext.messageId values other than strings, booleans, integers
// and maps of them go through encoding/json. The error is encoding/json's
// for such a value it cannot encode.
func AppendJSON(dst []byte, ev *events.APIGatewayWebsocketProxyRequest, escapeHTML bool) ([]byte, error) {
	w := JSONWriter{b: dst, html: escapeHTML, first: true}
	w.b = append(w.b, '{')
	w.OptStringMember("resource", ev.Resource)
	w.OptStringMember("path", ev.Path)
	w.OptStringMember("httpMethod", ev.HTTPMethod)
	w.OptStringMapMember("headers", ev.Headers)
	w.OptStringsMapMember("multiValueHeaders", ev.MultiValueHeaders)
	w.OptStringMapMember("queryStringParameters", ev.QueryStringParameters)
	w.OptStringsMapMember("multiValueQueryStringParameters", ev.MultiValueQueryStringParameters)
	w.OptStringMapMember("pathParameters", ev.PathParameters)
	w.OptStringMapMember("stageVariables", ev.StageVariables)
	w.Key("requestContext")
	w.requestContext(&ev.RequestContext)
	w.OptStringMember("body", ev.Body)
	w.Key("isBase64Encoded")
	w.b = strconv.AppendBool(w.b, ev.IsBase64Encoded)
	w.b = append(w.b, '}')
	return w.b, w.err
}

func (w *JSONWriter) requestContext(rc *events.APIGatewayWebsocketProxyRequestContext) {
	w.b = append(w.b, '{')
	w.first = true
	w.OptStringMember("accountId", rc.AccountID)
	w.OptStringMember("resourceId", rc.ResourceID)
	w.StringMember("stage", rc.Stage)
	w.StringMember("requestId", rc.RequestID)
	w.Key("identity")
	w.Identity(&rc.Identity)
	w.OptStringMember("resourcePath", rc.ResourcePath)
	if rc.Authorizer != nil {
		w.Key("authorizer")
		w.Any(rc.Authorizer)
	}
	w.OptStringMember("httpMethod", rc.HTTPMethod)
	w.StringMember("apiId", rc.APIID)
	w.IntMember("connectedAt", rc.ConnectedAt)
	w.StringMember("connectionId", rc.ConnectionID)
	w.StringMember("domainName", rc.DomainName)
	w.OptStringMember("error", rc.Error)
	w.StringMember("eventType", rc.EventType)
	w.StringMember("extendedRequestId", rc.ExtendedRequestID)
	w.OptStringMember("integrationLatency", rc.IntegrationLatency)
	w.StringMember("messageDirection", rc.MessageDirection)
	if rc.MessageID != nil {
		w.Key("messageId")
		w.Any(rc.MessageID)
	}
	w.StringMember("requestTime", rc.RequestTime)
	w.IntMember("requestTimeEpoch", rc.RequestTimeEpoch)
	w.StringMember("routeKey", rc.RouteKey)
	w.OptStringMember("status", rc.Status)
	if rc.DisconnectStatusCode != 0 {
		w.IntMember("disconnectStatusCode", rc.DisconnectStatusCode)
	}
	if rc.DisconnectReason != nil {
		w.StringMember("disconnectReason", *rc.DisconnectReason)
	}
	w.b = append(w.b, '}')
	w.first = false
}

// Identity writes requestContext.identity as events.APIGatewayRequestIdentity
// encodes.
func (w *JSONWriter) Identity(id *events.APIGatewayRequestIdentity) {
	w.b = append(w.b, '{')
	w.first = true
	w.OptStringMember("cognitoIdentityPoolId", id.CognitoIdentityPoolID)
	w.OptStringMember("accountId", id.AccountID)
	w.OptStringMember("cognitoIdentityId", id.CognitoIdentityID)
	w.OptStringMember("caller", id.Caller)
	w.OptStringMember("apiKey", id.APIKey)
	w.OptStringMember("apiKeyId", id.APIKeyID)
	w.OptStringMember("accessKey", id.AccessKey)
	w.StringMember("sourceIp", id.SourceIP)
	w.OptStringMember("cognitoAuthenticationType", id.CognitoAuthenticationType)
	w.OptStringMember("cognitoAuthenticationProvider", id.CognitoAuthenticationProvider)
	w.OptStringMember("userArn", id.UserArn)
	w.StringMember("userAgent", id.UserAgent)
	w.OptStringMember("user", id.User)
	if id.ClientCert != nil {
		w.Key("clientCert")
		w.ClientCert(id.ClientCert)
	}
	w.b = append(w.b, '}')
	w.first = false
}

// ClientCert writes a clientCert object.
func (w *JSONWriter) ClientCert(c *ClientCert) {
	w.b = append(w.b, '{')
	w.first = true
	w.StringMember("clientCertPem", c.ClientCertPem)
	w.StringMember("issuerDN", c.IssuerDN)
	w.StringMember("serialNumber", c.SerialNumber)
	w.StringMember("subjectDN", c.SubjectDN)
	w.Key("validity")
	w.b = append(w.b, '{')
	w.first = true
	w.StringMember("notAfter", c.Validity.NotAfter)
	w.StringMember("notBefore", c.Validity.NotBefore)
	w.b = append(w.b, "}}"...)
	w.first = false
}

// JSONWriter appends JSON to a buffer the way encoding/json writes it, for
// encoders of event types that write their members in struct order. Begin
// and End open and close an object; each member starts with Key (or is
// written by a *Member method), which puts the comma before every member
// but the first of its object. Member names are written as given: they must
// need no escaping. Values are escaped as json.Marshal escapes them, and
// with escapeHTML false as Marshal does.
type JSONWriter struct {
	b     []byte
	html  bool // escape <, > and & as json.Marshal does
	first bool // no member written yet in the innermost object
	err   error
}

// NewJSONWriter returns a writer appending to dst.
func NewJSONWriter(dst []byte, escapeHTML bool) *JSONWriter {
	return &JSONWriter{b: dst, html: escapeHTML}
}

// Begin opens an object.
func (w *JSONWriter) Begin() {
	w.b = append(w.b, '{')
	w.first = true
}

// End closes the innermost object.
func (w *JSONWriter) End() {
	w.b = append(w.b, '}')
	w.first = false
}

// Bytes returns the JSON written, and the first error of a value
// encoding/json could not encode.
func (w *JSONWriter) Bytes() ([]byte, error) { return w.b, w.err }

// Key starts a member named name.
func (w *JSONWriter) Key(name string) {
	if w.first {
		w.first = false
	} else {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"', ':')
}

// StringMember writes a string member.
func (w *JSONWriter) StringMember(name, v string) {
	w.Key(name)
	w.b = appendJSONString(w.b, v, w.html)
}

// OptStringMember writes a string member unless v is empty (omitempty).
func (w *JSONWriter) OptStringMember(name, v string) {
	if v != "" {
		w.StringMember(name, v)
	}
}

// IntMember writes an integer member.
func (w *JSONWriter) IntMember(name string, v int64) {
	w.Key(name)
	w.b = strconv.AppendInt(w.b, v, 10)
}

// OptStringMapMember writes a map member unless m is empty (omitempty).
func (w *JSONWriter) OptStringMapMember(name string, m map[string]string) {
	if len(m) > 0 {
		w.Key(name)
		w.StringMap(m)
	}
}

// OptStringsMapMember writes a map member unless m is empty (omitempty).
func (w *JSONWriter) OptStringsMapMember(name string, m map[string][]string) {
	if len(m) > 0 {
		w.Key(name)
		w.StringsMap(m)
	}
}

// sortedMapKeys returns the keys of m in encoding/json's order, in buf when it
// is large enough; it returns nil for a nil map and a non-nil slice for any
// other.
func sortedMapKeys[V any](buf []string, m map[string]V) []string {
	if m == nil {
		return nil
	}
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sortedObject writes m, a map[string]string, map[string][]string or
// map[string]any, as an object with keys in encoding/json's order; a nil
// map is null, a nil []string value is null, and map[string]any values are
// written as Any writes them.
func (w *JSONWriter) sortedObject(m any) {
	var buf [16]string
	var keys []string
	switch m := m.(type) {
	case map[string]string:
		keys = sortedMapKeys(buf[:], m)
	case map[string][]string:
		keys = sortedMapKeys(buf[:], m)
	case map[string]any:
		keys = sortedMapKeys(buf[:], m)
	}
	if keys == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '{')
	for i, k := range keys {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, k, w.html)
		w.b = append(w.b, ':')
		switch m := m.(type) {
		case map[string]string:
			w.b = appendJSONString(w.b, m[k], w.html)
		case map[string][]string:
			w.stringsValue(m[k])
		case map[string]any:
			w.Any(m[k])
		}
	}
	w.b = append(w.b, '}')
}

// StringMap writes m as an object with sorted keys; nil is null.
func (w *JSONWriter) StringMap(m map[string]string) {
	w.sortedObject(m)
}

// StringsMap writes m as an object of arrays with sorted keys; nil is
// null, and so is a nil slice.
func (w *JSONWriter) StringsMap(m map[string][]string) {
	w.sortedObject(m)
}

// stringsValue writes vs as an array of strings; nil is null.
func (w *JSONWriter) stringsValue(vs []string) {
	if vs == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '[')
	for j, v := range vs {
		if j > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, v, w.html)
	}
	w.b = append(w.b, ']')
}

// Any writes v: strings, booleans, integers, nil and maps of string to
// those directly, anything else through encoding/json.
func (w *JSONWriter) Any(v any) {
	switch v := v.(type) {
	case nil:
		w.b = append(w.b, "null"...)
	case string:
		w.b = appendJSONString(w.b, v, w.html)
	case bool:
		w.b = strconv.AppendBool(w.b, v)
	case int:
		w.b = strconv.AppendInt(w.b, int64(v), 10)
	case int64:
		w.b = strconv.AppendInt(w.b, v, 10)
	case map[string]string, map[string]any:
		w.sortedObject(v)
	default:
		w.reflect(v)
	}
}

// reflect writes v with encoding/json.
func (w *JSONWriter) reflect(v any) {
	if w.html {
		b, err := json.Marshal(v)
		if err != nil {
			w.fail(err)
			return
		}
		w.b = append(w.b, b...)
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		w.fail(err)
		return
	}
	w.b = append(w.b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}

func (w *JSONWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
	// Keep the output well-formed; the caller discards it.
	w.b = append(w.b, "null"...)
}

const jsonHex = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as encoding/json writes
// it: ", \ and control characters escaped (\b \f \n \r \t by name, the
// others as \u00XX), invalid UTF-8 replaced by \ufffd, U+2028 and U+2029
// escaped, and, with html, <, > and & as \u003c, \u003e and \u0026.
func appendJSONString(dst []byte, s string, html bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && (!html || (b != '<' && b != '>' && b != '&')) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', jsonHex[b>>4], jsonHex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', jsonHex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
