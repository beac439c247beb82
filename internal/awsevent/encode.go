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
	w := jsonWriter{b: dst, html: escapeHTML, first: true}
	w.b = append(w.b, '{')
	w.optString("resource", ev.Resource)
	w.optString("path", ev.Path)
	w.optString("httpMethod", ev.HTTPMethod)
	w.optStringMap("headers", ev.Headers)
	w.optStringsMap("multiValueHeaders", ev.MultiValueHeaders)
	w.optStringMap("queryStringParameters", ev.QueryStringParameters)
	w.optStringsMap("multiValueQueryStringParameters", ev.MultiValueQueryStringParameters)
	w.optStringMap("pathParameters", ev.PathParameters)
	w.optStringMap("stageVariables", ev.StageVariables)
	w.key("requestContext")
	w.requestContext(&ev.RequestContext)
	w.optString("body", ev.Body)
	w.key("isBase64Encoded")
	w.b = strconv.AppendBool(w.b, ev.IsBase64Encoded)
	w.b = append(w.b, '}')
	return w.b, w.err
}

func (w *jsonWriter) requestContext(rc *events.APIGatewayWebsocketProxyRequestContext) {
	w.b = append(w.b, '{')
	w.first = true
	w.optString("accountId", rc.AccountID)
	w.optString("resourceId", rc.ResourceID)
	w.stringField("stage", rc.Stage)
	w.stringField("requestId", rc.RequestID)
	w.key("identity")
	w.Identity(&rc.Identity)
	w.optString("resourcePath", rc.ResourcePath)
	if rc.Authorizer != nil {
		w.key("authorizer")
		w.Any(rc.Authorizer)
	}
	w.optString("httpMethod", rc.HTTPMethod)
	w.stringField("apiId", rc.APIID)
	w.intField("connectedAt", rc.ConnectedAt)
	w.stringField("connectionId", rc.ConnectionID)
	w.stringField("domainName", rc.DomainName)
	w.optString("error", rc.Error)
	w.stringField("eventType", rc.EventType)
	w.stringField("extendedRequestId", rc.ExtendedRequestID)
	w.optString("integrationLatency", rc.IntegrationLatency)
	w.stringField("messageDirection", rc.MessageDirection)
	if rc.MessageID != nil {
		w.key("messageId")
		w.Any(rc.MessageID)
	}
	w.stringField("requestTime", rc.RequestTime)
	w.intField("requestTimeEpoch", rc.RequestTimeEpoch)
	w.stringField("routeKey", rc.RouteKey)
	w.optString("status", rc.Status)
	if rc.DisconnectStatusCode != 0 {
		w.intField("disconnectStatusCode", rc.DisconnectStatusCode)
	}
	if rc.DisconnectReason != nil {
		w.stringField("disconnectReason", *rc.DisconnectReason)
	}
	w.b = append(w.b, '}')
	w.first = false
}

// Identity writes requestContext.identity as events.APIGatewayRequestIdentity
// encodes.
func (w *jsonWriter) Identity(id *events.APIGatewayRequestIdentity) {
	w.b = append(w.b, '{')
	w.first = true
	w.optString("cognitoIdentityPoolId", id.CognitoIdentityPoolID)
	w.optString("accountId", id.AccountID)
	w.optString("cognitoIdentityId", id.CognitoIdentityID)
	w.optString("caller", id.Caller)
	w.optString("apiKey", id.APIKey)
	w.optString("apiKeyId", id.APIKeyID)
	w.optString("accessKey", id.AccessKey)
	w.stringField("sourceIp", id.SourceIP)
	w.optString("cognitoAuthenticationType", id.CognitoAuthenticationType)
	w.optString("cognitoAuthenticationProvider", id.CognitoAuthenticationProvider)
	w.optString("userArn", id.UserArn)
	w.stringField("userAgent", id.UserAgent)
	w.optString("user", id.User)
	if id.ClientCert != nil {
		w.key("clientCert")
		w.ClientCert(id.ClientCert)
	}
	w.b = append(w.b, '}')
	w.first = false
}

// ClientCert writes a clientCert object.
func (w *jsonWriter) ClientCert(c *ClientCert) {
	w.b = append(w.b, '{')
	w.first = true
	w.stringField("clientCertPem", c.ClientCertPem)
	w.stringField("issuerDN", c.IssuerDN)
	w.stringField("serialNumber", c.SerialNumber)
	w.stringField("subjectDN", c.SubjectDN)
	w.key("validity")
	w.b = append(w.b, '{')
	w.first = true
	w.stringField("notAfter", c.Validity.NotAfter)
	w.stringField("notBefore", c.Validity.NotBefore)
	w.b = append(w.b, "}}"...)
	w.first = false
}

// jsonWriter appends JSON to b the way encoding/json writes it. Object
// members are written with key, which puts the comma before every member
// but the first of its object; the writers of nested objects reset first.
// Member names are written as given: they must need no escaping.
type jsonWriter struct {
	b     []byte
	html  bool // escape <, > and & as json.Marshal does
	first bool // no member written yet in the innermost object
	err   error
}

// newJSONWriter returns a writer appending to dst, positioned as if it had
// just opened an object.
func newJSONWriter(dst []byte, escapeHTML bool) *jsonWriter {
	return &jsonWriter{b: dst, html: escapeHTML, first: true}
}

func (w *jsonWriter) key(name string) {
	if w.first {
		w.first = false
	} else {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"', ':')
}

func (w *jsonWriter) stringField(name, v string) {
	w.key(name)
	w.b = appendJSONString(w.b, v, w.html)
}

func (w *jsonWriter) optString(name, v string) {
	if v != "" {
		w.stringField(name, v)
	}
}

func (w *jsonWriter) intField(name string, v int64) {
	w.key(name)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jsonWriter) optStringMap(name string, m map[string]string) {
	if len(m) > 0 {
		w.key(name)
		w.StringMap(m)
	}
}

func (w *jsonWriter) optStringsMap(name string, m map[string][]string) {
	if len(m) > 0 {
		w.key(name)
		w.StringsMap(m)
	}
}

// sortedMapKeys returns the keys of m in encoding/json's order, in buf when it
// is large enough.
func sortedMapKeys[V any](buf []string, m map[string]V) []string {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// StringMap writes m as an object with sorted keys; nil is null.
func (w *jsonWriter) StringMap(m map[string]string) {
	if m == nil {
		w.b = append(w.b, "null"...)
		return
	}
	var buf [16]string
	w.b = append(w.b, '{')
	for i, k := range sortedMapKeys(buf[:], m) {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, k, w.html)
		w.b = append(w.b, ':')
		w.b = appendJSONString(w.b, m[k], w.html)
	}
	w.b = append(w.b, '}')
}

// StringsMap writes m as an object of arrays with sorted keys; nil is
// null, and so is a nil slice.
func (w *jsonWriter) StringsMap(m map[string][]string) {
	if m == nil {
		w.b = append(w.b, "null"...)
		return
	}
	var buf [16]string
	w.b = append(w.b, '{')
	for i, k := range sortedMapKeys(buf[:], m) {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, k, w.html)
		w.b = append(w.b, ':')
		vs := m[k]
		if vs == nil {
			w.b = append(w.b, "null"...)
			continue
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
	w.b = append(w.b, '}')
}

// Any writes v: strings, booleans, integers, nil and maps of string to
// those directly, anything else through encoding/json.
func (w *jsonWriter) Any(v any) {
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
	case map[string]string:
		w.StringMap(v)
	case map[string]any:
		if v == nil {
			w.b = append(w.b, "null"...)
			return
		}
		var buf [16]string
		w.b = append(w.b, '{')
		for i, k := range sortedMapKeys(buf[:], v) {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendJSONString(w.b, k, w.html)
			w.b = append(w.b, ':')
			w.Any(v[k])
		}
		w.b = append(w.b, '}')
	default:
		w.reflect(v)
	}
}

// reflect writes v with encoding/json.
func (w *jsonWriter) reflect(v any) {
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

func (w *jsonWriter) fail(err error) {
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
