package awsevent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Route keys and event types API Gateway writes into requestContext.
const (
	routeConnect    = "$connect"
	routeDisconnect = "$disconnect"
	defaultStage    = "$default"

	eventConnect    = "CONNECT"
	eventMessage    = "MESSAGE"
	eventDisconnect = "DISCONNECT"

	directionIn = "IN"
)

// API is the static part of every event: what the deployed API and stage are
// called. The zero value is usable and yields an empty apiId, stage
// "$default" and each connection's own domain name.
type API struct {
	// APIID is requestContext.apiId.
	APIID string
	// Stage is requestContext.stage. The default, "", is emitted as
	// "$default", the name of a WebSocket API's default stage.
	Stage string
	// StageVariables are the stage's variables, emitted as stageVariables
	// in $connect events. Nil or empty leaves the key out.
	StageVariables map[string]string
	// DomainName is requestContext.domainName and the Host header of
	// $disconnect events. The default, "", uses Conn.DomainName, the Host
	// each client connected with.
	DomainName string
}

func (a API) stage() string {
	if a.Stage == "" {
		return defaultStage
	}
	return a.Stage
}

func (a API) domainName(c *Conn) string {
	if a.DomainName != "" {
		return a.DomainName
	}
	return c.DomainName
}

// Conn is what the gateway knows about a connection for the life of the
// socket. It is fixed at $connect and copied into every event the connection
// produces, so identity and authorizer output reach every route.
//
// Events share the Authorizer map rather than copying it: it must not be
// modified once events have been built from the Conn.
type Conn struct {
	// ID is requestContext.connectionId, normally from NewID.
	ID string
	// ConnectedAt is when the upgrade request arrived; it becomes
	// requestContext.connectedAt in epoch milliseconds.
	ConnectedAt time.Time
	// SourceIP is requestContext.identity.sourceIp, the TCP peer (or the
	// client address a trusted proxy reported), and is appended to
	// X-Forwarded-For on $connect.
	SourceIP string
	// UserAgent is requestContext.identity.userAgent, the upgrade request's
	// User-Agent header.
	UserAgent string
	// DomainName is the Host the client used. It is requestContext.domainName
	// when API.DomainName is "".
	DomainName string
	// Authorizer is requestContext.authorizer: principalId,
	// integrationLatency and the authorizer's context values, already
	// stringified as AWS does. It is nil when no authorizer ran, and the key
	// is then absent from events.
	Authorizer map[string]any
	// ClientCert is requestContext.identity.clientCert, the certificate
	// the client presented with mutual TLS; nil without one, and the key
	// is then absent.
	ClientCert *ClientCert
}

// ConnectRequest is the upgrade request seen at $connect.
type ConnectRequest struct {
	// Header holds the request headers. Keys are emitted as stored, except
	// that Go's canonical forms of the Sec-WebSocket-* headers
	// ("Sec-Websocket-Key") are written the way clients send them
	// ("Sec-WebSocket-Key"). An edge that keeps the client's spelling of
	// other header names gets it reproduced.
	Header http.Header
	// Query is the parsed query string; nil or empty means there was none.
	Query url.Values
	// Host is the Host the client sent (http.Request.Host), emitted as the
	// Host header.
	Host string
	// Proto is the listener's scheme, "http" or "https", emitted as
	// X-Forwarded-Proto unless the request already carries that header.
	// The default, "", adds nothing.
	Proto string
	// Port is the listener's port, emitted as X-Forwarded-Port unless the
	// request already carries that header. The default, "", adds nothing.
	Port string
	// Peer is the socket peer's address, appended to X-Forwarded-For. It
	// differs from the Conn's SourceIP when a trusted proxy reported the
	// client's address; "" means the SourceIP.
	Peer string
}

// Connect returns the event for the $connect route of connection c, made from
// its upgrade request r at time now. It has a fresh request id
// (ev.RequestContext.RequestID, equal to extendedRequestId) for the caller to
// log or put into error frames.
//
// The headers are the upgrade request's, both single-valued (the last value
// of a repeated header, see Headers) and multi-valued, without the hop-by-hop
// Connection and Upgrade headers, which AWS's captured $connect events never
// show. As API Gateway does, the gateway adds X-Forwarded-For (r.Peer, or
// else c.SourceIP, appended to any value the client sent, so the last entry
// is always the real peer), X-Forwarded-Proto and X-Forwarded-Port from r.Proto and r.Port
// when the request lacks them, and an X-Amzn-Trace-Id when the request lacks
// one. The query string appears only when there is one; a single-valued
// parameter holds the last value, as in REST API proxy events.
//
// A nil r is treated as a request with no headers and no query string.
func Connect(api API, c *Conn, r *ConnectRequest, now time.Time) *events.APIGatewayWebsocketProxyRequest {
	if r == nil {
		r = &ConnectRequest{}
	}
	ev := newEvent(api, c, routeConnect, eventConnect, NewID(), now)
	if ev.RequestContext.DomainName == "" {
		ev.RequestContext.DomainName = r.Host
	}
	ev.Headers, ev.MultiValueHeaders = connectHeaders(r, c.SourceIP, now)
	if len(api.StageVariables) > 0 {
		ev.StageVariables = api.StageVariables
	}
	ev.QueryStringParameters, ev.MultiValueQueryStringParameters = Query(r.Query)
	return ev
}

// Query returns the queryStringParameters (the last value of a repeated
// parameter, as AWS has it) and multiValueQueryStringParameters (every
// value, in order) of an event made from q, or nil maps when q is empty, so
// that the keys are left out. The slices returned never alias q's.
func Query(q url.Values) (map[string]string, map[string][]string) {
	if len(q) == 0 {
		return nil, nil
	}
	single := make(map[string]string, len(q))
	multi := make(map[string][]string, len(q))
	for k, vs := range q {
		if len(vs) == 0 {
			continue
		}
		single[k] = vs[len(vs)-1]
		multi[k] = append([]string(nil), vs...)
	}
	return single, multi
}

// Message returns the event for a message on connection c selected to
// routeKey (a custom key or "$default"), received at time now. It has a fresh
// request id (ev.RequestContext.RequestID) and its own message id, and no
// headers or query string: AWS sends those only on $connect.
//
// body is the payload as received. When isBase64 is true the payload is
// binary: Message encodes it with standard base64 and sets isBase64Encoded.
// Otherwise body must be the UTF-8 text of a text frame.
func Message(api API, c *Conn, routeKey string, body []byte, isBase64 bool, now time.Time) *events.APIGatewayWebsocketProxyRequest {
	requestID, messageID := newIDPair()
	ev := newEvent(api, c, routeKey, eventMessage, requestID, now)
	ev.RequestContext.MessageID = messageID
	if isBase64 {
		ev.Body = base64.StdEncoding.EncodeToString(body)
	} else {
		ev.Body = string(body)
	}
	ev.IsBase64Encoded = isBase64
	return ev
}

// Disconnect returns the event for the $disconnect route of connection c,
// closed at time now with close code code and reason. It has a fresh request
// id (ev.RequestContext.RequestID).
//
// Like AWS it carries the synthetic headers Host (the domain name),
// x-api-key, X-Forwarded-For and x-restapi, the last three empty, and
// disconnectReason even when it is "". A code of 0 is left out, because the
// aws-lambda-go field omits zero; pass the code the close handshake carried,
// or 1005 or 1006 when there was none.
func Disconnect(api API, c *Conn, code int, reason string, now time.Time) *events.APIGatewayWebsocketProxyRequest {
	ev := newEvent(api, c, routeDisconnect, eventDisconnect, NewID(), now)
	host := ev.RequestContext.DomainName
	ev.Headers = map[string]string{
		"Host":            host,
		"x-api-key":       "",
		"X-Forwarded-For": "",
		"x-restapi":       "",
	}
	ev.MultiValueHeaders = map[string][]string{
		"Host":            {host},
		"x-api-key":       {""},
		"X-Forwarded-For": {""},
		"x-restapi":       {""},
	}
	ev.RequestContext.DisconnectStatusCode = int64(code)
	ev.RequestContext.DisconnectReason = &reason
	return ev
}

// Marshal encodes ev, an event the gateway sends to a backend, as JSON.
// Unlike json.Marshal it does not rewrite <, > and & in bodies and headers as
// \u003c, \u003e and \u0026, so the JSON reads as the client sent it; both
// forms decode to the same event.
func Marshal(ev any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// newEvent fills the requestContext fields every event type shares; id is
// its request id.
func newEvent(api API, c *Conn, routeKey, eventType, id string, now time.Time) *events.APIGatewayWebsocketProxyRequest {
	ev := &events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			RouteKey:          routeKey,
			EventType:         eventType,
			MessageDirection:  directionIn,
			RequestID:         id,
			ExtendedRequestID: id,
			RequestTime:       RequestTime(now),
			RequestTimeEpoch:  now.UnixMilli(),
			ConnectedAt:       c.ConnectedAt.UnixMilli(),
			Stage:             api.stage(),
			DomainName:        api.domainName(c),
			ConnectionID:      c.ID,
			APIID:             api.APIID,
			Identity: events.APIGatewayRequestIdentity{
				SourceIP:   c.SourceIP,
				UserAgent:  c.UserAgent,
				ClientCert: c.ClientCert,
			},
		},
	}
	// A nil map stored in the interface would marshal as "authorizer":null.
	if c.Authorizer != nil {
		ev.RequestContext.Authorizer = c.Authorizer
	}
	return ev
}

// headerSpelling maps Go's canonical form of header names whose usual
// spelling differs from it to that spelling, which is what AWS forwards.
var headerSpelling = map[string]string{
	"Sec-Websocket-Key":        "Sec-WebSocket-Key",
	"Sec-Websocket-Version":    "Sec-WebSocket-Version",
	"Sec-Websocket-Extensions": "Sec-WebSocket-Extensions",
	"Sec-Websocket-Protocol":   "Sec-WebSocket-Protocol",
}

// connectHeaders builds the headers and multiValueHeaders of a CONNECT
// event. The slices it returns never alias r.Header's.
func connectHeaders(r *ConnectRequest, sourceIP string, now time.Time) (map[string]string, map[string][]string) {
	if r.Peer != "" {
		sourceIP = r.Peer
	}
	return Headers(r.Header, HeaderOptions{Host: r.Host, SourceIP: sourceIP, Proto: r.Proto, Port: r.Port}, now)
}

// HeaderOptions says what Headers adds to a request's headers, as API
// Gateway adds it.
type HeaderOptions struct {
	// Host replaces the Host header when set.
	Host string
	// SourceIP is appended to X-Forwarded-For (so the last entry is always
	// the real peer).
	SourceIP string
	// Proto and Port become X-Forwarded-Proto and X-Forwarded-Port unless
	// the request carries them.
	Proto, Port string
	// HopByHop keeps Connection and Upgrade, which the authorizer event
	// shows and the $connect event does not.
	HopByHop bool
	// ContentLength adds "content-length: 0" when missing, as the
	// authorizer event shows.
	ContentLength bool
}

// Headers returns the single-valued (the last value of a repeated header;
// several Cookie lines joined with "; ") and multi-valued (every value, in
// order) header maps of an event made from h: Go's canonical
// Sec-Websocket-* names spelled as clients send them, plus what o asks for
// and an X-Amzn-Trace-Id when h has none. The slices returned never alias
// h's.
func Headers(h http.Header, o HeaderOptions, now time.Time) (map[string]string, map[string][]string) {
	multi := make(map[string][]string, len(h)+6)
	host := o.Host
	for k, vs := range h {
		switch {
		case strings.EqualFold(k, "Host"):
			if host == "" && len(vs) > 0 {
				host = vs[0]
			}
			continue
		case !o.HopByHop && (strings.EqualFold(k, "Connection") || strings.EqualFold(k, "Upgrade")):
			continue
		}
		name := k
		if s, ok := headerSpelling[k]; ok {
			name = s
		}
		multi[name] = append(multi[name], vs...)
	}
	if host != "" {
		multi["Host"] = []string{host}
	}
	if _, ok := findHeader(multi, "Content-Length"); !ok && o.ContentLength {
		multi["content-length"] = []string{"0"}
	}
	if o.SourceIP != "" {
		if k, ok := findHeader(multi, "X-Forwarded-For"); ok && len(multi[k]) > 0 {
			vs := multi[k]
			if last := vs[len(vs)-1]; last == "" {
				vs[len(vs)-1] = o.SourceIP
			} else {
				vs[len(vs)-1] = last + ", " + o.SourceIP
			}
		} else {
			multi["X-Forwarded-For"] = []string{o.SourceIP}
		}
	}
	if _, ok := findHeader(multi, "X-Forwarded-Port"); !ok && o.Port != "" {
		multi["X-Forwarded-Port"] = []string{o.Port}
	}
	if _, ok := findHeader(multi, "X-Forwarded-Proto"); !ok && o.Proto != "" {
		multi["X-Forwarded-Proto"] = []string{o.Proto}
	}
	if _, ok := findHeader(multi, "X-Amzn-Trace-Id"); !ok {
		multi["X-Amzn-Trace-Id"] = []string{traceID(now)}
	}

	single := make(map[string]string, len(multi))
	for k, vs := range multi {
		single[k] = HeaderValue(k, vs)
	}
	return single, multi
}

// HeaderValue is the value of header name in an event's single-valued
// headers map when the request had the lines vs: the last, as API Gateway
// puts the last value of a repeated parameter in the single-valued maps of
// its version 1.0 events. Cookie lines are the exception: they are one list
// (RFC 6265 allows a client one Cookie line; RFC 9113 joins HTTP/2's several
// with "; "), so they are joined and headers.Cookie holds every cookie.
func HeaderValue(name string, vs []string) string {
	switch {
	case len(vs) == 0:
		return ""
	case strings.EqualFold(name, "Cookie"):
		return strings.Join(vs, "; ")
	}
	return vs[len(vs)-1]
}

// findHeader returns the key of h that equals name ignoring case.
func findHeader(h map[string][]string, name string) (string, bool) {
	if _, ok := h[name]; ok {
		return name, true
	}
	for k := range h {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}
