package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/inspect"
	"github.com/wsgate/wsgate/internal/integration"
	"github.com/wsgate/wsgate/internal/metrics"
	"github.com/wsgate/wsgate/internal/mgmt"
	"github.com/wsgate/wsgate/internal/redact"
	"github.com/wsgate/wsgate/internal/route"
)

// Event types of access log lines: AWS's, and one of wsgate's own for the
// management API.
const (
	eventConnect    = "CONNECT"
	eventMessage    = "MESSAGE"
	eventDisconnect = "DISCONNECT"
	eventManagement = "MANAGEMENT"
)

var _ edge.HandshakeObserver = (*handler)(nil)

// NewAccessLog returns the access log cfg configures, or nil when it is
// off: the one place an access logger is made from a configuration. Its
// output is opened; the caller closes the logger. Problems are located at
// their key's line.
func NewAccessLog(cfg *config.Config, opts Options, m *metrics.Metrics) (*accesslog.Logger, error) {
	ac := cfg.AccessLog
	if !ac.Enabled() {
		return nil, nil
	}
	f, err := accesslog.ParseFormat(ac.Format)
	if err != nil {
		return nil, cfg.Errorf("access_log.format", "%v", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l, err := accesslog.New(accesslog.Config{
		Format:  f,
		Output:  ac.Output,
		Stdout:  opts.Stdout,
		Stderr:  opts.Stderr,
		Dropped: m.AccessLogDropped,
		Logger:  logger.With("component", "accesslog"),
	})
	if err != nil {
		return nil, cfg.Errorf("access_log.output", "%w", err)
	}
	return l, nil
}

// accessLog is the access log in use, nil when there is none.
func (g *Gateway) accessLog() *accesslog.Logger { return g.access.Load() }

// SwapAccessLog makes l (nil: none) the access log of the lines logged from
// now on and returns the one it replaces, which the caller closes once the
// lines being logged to it are done (Close writes what it holds).
func (g *Gateway) SwapAccessLog(l *accesslog.Logger) *accesslog.Logger {
	return g.access.Swap(l)
}

// ReopenAccessLog reopens the access log's file, after logrotate moved it.
// Without an access log, or with one on standard output, it does nothing.
func (g *Gateway) ReopenAccessLog() error { return g.accessLog().Reopen() }

// eventLog is the access log line of one MESSAGE or DISCONNECT event,
// filled in as the event is handled and logged by done. Its methods do
// nothing on a nil *eventLog, which is what the gateway uses without an
// access log.
type eventLog struct {
	l *accesslog.Logger
	e accesslog.Entry
}

// newEventLog starts the line of an event of type eventType on c, nil
// without an access log.
func (g *Gateway) newEventLog(eventType string, c *edge.Conn, sess *session) *eventLog {
	l := g.accessLog()
	if l == nil {
		return nil
	}
	ev := &sess.ev
	return &eventLog{l: l, e: accesslog.Entry{
		EventType:        eventType,
		ConnectionID:     ev.ID,
		Time:             time.Now(),
		ConnectedAt:      ev.ConnectedAt,
		APIID:            g.cfg.APIID,
		Stage:            g.cfg.EventStage(),
		DomainName:       g.domainName(ev.DomainName),
		SourceIP:         ev.SourceIP,
		UserAgent:        ev.UserAgent,
		MessageDirection: "IN",
		Authorizer:       ev.Authorizer,
		ClientCert:       ev.ClientCert,
	}}
}

func (g *Gateway) domainName(host string) string {
	if g.cfg.DomainName != "" {
		return g.cfg.DomainName
	}
	return host
}

// id is the request id of the event, made on first use, for the frames
// sent to the client about it.
func (el *eventLog) id() string {
	if el == nil {
		return awsevent.NewID()
	}
	if el.e.RequestID == "" {
		el.e.RequestID = awsevent.NewID()
	}
	return el.e.RequestID
}

// route records the route selected.
func (el *eventLog) route(key string) {
	if el != nil {
		el.e.RouteKey = key
	}
}

// answer records a refusal or failure: the status and the message the
// client was sent.
func (el *eventLog) answer(status int, message string) {
	if el != nil {
		el.e.Status = status
		el.e.ErrorMessage = message
	}
}

// invalid records a message its route's model refused, with messageID,
// the id of the Bad request body frame.
func (el *eventLog) invalid(messageID, detail string) {
	if el != nil {
		el.e.Status = http.StatusBadRequest
		el.e.ErrorMessage = badRequestBody
		el.e.ValidationError = detail
		el.e.MessageID = messageID
	}
}

// disconnected records the close code and reason of a DISCONNECT.
func (el *eventLog) disconnected(code int, reason string) {
	if el != nil {
		el.e.DisconnectStatusCode, el.e.DisconnectReason = code, reason
		el.e.RouteKey = route.Disconnect
	}
}

// integration records the event ev sent to rt's integration at start, and
// its answer resp or failure err.
func (el *eventLog) integration(rt *Route, ev *events.APIGatewayWebsocketProxyRequest, start time.Time, resp *integration.Response, err error) {
	if el == nil {
		return
	}
	el.e.RequestID = ev.RequestContext.RequestID
	if id, ok := ev.RequestContext.MessageID.(string); ok {
		el.e.MessageID = id
	}
	noteIntegration(&el.e, rt, start, resp, err)
	el.e.Status = el.e.IntegrationStatus
	if el.e.Status == 0 && err != nil {
		el.e.Status = http.StatusInternalServerError
	}
	if err != nil && el.e.EventType == eventMessage {
		// The client was sent the Internal server error frame.
		el.e.ErrorMessage = "Internal server error"
	}
}

// noteIntegration records in e the call of rt's integration that started
// at start and answered resp or failed with err.
func noteIntegration(e *accesslog.Entry, rt *Route, start time.Time, resp *integration.Response, err error) {
	var se *integration.StatusError
	switch {
	case errors.As(err, &se):
		e.IntegrationStatus = se.Status
	case err != nil:
		e.IntegrationError = integrationError(err)
	case resp != nil:
		e.IntegrationStatus = resp.StatusCode
	}
	if _, mock := rt.Integration.(*integration.Mock); !mock {
		e.IntegrationLatency, e.IntegrationTimed = time.Since(start), true
	}
}

// integrationError is err's text with the query string of any URL in it
// left out: an integration's URL may carry a key in its query string.
func integrationError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		u := ue.URL
		if p, perr := url.Parse(u); perr == nil {
			p.RawQuery, p.Fragment, p.User = "", "", nil
			u = p.String()
		}
		return fmt.Sprintf("%s %q: %v", ue.Op, u, ue.Err)
	}
	return err.Error()
}

// done logs the line; a status not set by then is 200.
func (el *eventLog) done() {
	if el == nil {
		return
	}
	e := &el.e
	if e.Status == 0 {
		e.Status = http.StatusOK
	}
	if e.RequestID == "" {
		e.RequestID = awsevent.NewID()
	}
	if e.ErrorMessage != "" {
		e.ErrorResponseType = responseType(e)
	}
	e.Latency = time.Since(e.Time)
	el.l.Log(e)
}

// beginConnectLog starts the CONNECT line of sess's handshake, which
// HandshakeDone logs.
func (g *Gateway) beginConnectLog(sess *session) {
	if g.accessLog() != nil {
		sess.access = &accesslog.Entry{}
	}
}

// noteAuth records the authentication of sess's handshake by a: the
// identity id, or the refusal err, after the authorizer took latency.
func (sess *session) noteAuth(a *authn, id *auth.Identity, latency time.Duration, err error) {
	e := sess.access
	if e == nil || (a.authorizer == nil && err == nil) {
		return
	}
	e.AuthorizerLatency, e.AuthorizerTimed = latency, latency > 0
	var re *edge.RejectError
	switch {
	case errors.As(err, &re):
		e.AuthorizerStatus, e.AuthorizerError = re.Status, re.Reason
	case err != nil:
		e.AuthorizerStatus, e.AuthorizerError = http.StatusInternalServerError, "authorizer failed"
	case id != nil:
		e.AuthorizerStatus = http.StatusOK
	}
}

// noteConnect records the $connect event ev sent to rt's integration at
// start, and its answer resp or failure err.
func (sess *session) noteConnect(rt *Route, ev *events.APIGatewayWebsocketProxyRequest, start time.Time, resp *integration.Response, err error) {
	if e := sess.access; e != nil {
		e.RequestID = ev.RequestContext.RequestID
		noteIntegration(e, rt, start, resp, err)
	}
}

// HandshakeDone logs the CONNECT line of an upgrade request answered with
// status, and records a refused one in the inspector's log. An accepted
// handshake is logged with status 200, as AWS logs it.
func (h *handler) HandshakeDone(r *http.Request, c *edge.Conn, status int, reason string, start time.Time) {
	g := h.g
	if status >= 400 {
		g.noteRefused(r, c, status, reason, start)
	}
	l := g.accessLog()
	if l == nil {
		return
	}
	e := accesslog.Entry{
		EventType:        eventConnect,
		RouteKey:         route.Connect,
		Status:           status,
		Time:             start,
		APIID:            g.cfg.APIID,
		Stage:            g.cfg.EventStage(),
		DomainName:       g.domainName(r.Host),
		UserAgent:        r.UserAgent(),
		MessageDirection: "IN",
		HTTPMethod:       r.Method,
		Path:             r.URL.EscapedPath(),
		Protocol:         r.Proto,
	}
	if addr, ok := edge.PeerAddr(r); ok {
		// Behind a trusted proxy, the client it forwarded for.
		e.SourceIP = g.proxies.Load().Resolve(addr, r.Header).Addr.String()
	}
	if c != nil {
		e.ConnectionID, e.ConnectedAt, e.SourceIP = c.ID(), c.ConnectedAt(), c.SourceIP()
		if sess, ok := c.Session.(*session); ok {
			if sess.access != nil {
				a := sess.access
				e.RequestID = a.RequestID
				e.IntegrationStatus, e.IntegrationLatency, e.IntegrationTimed, e.IntegrationError =
					a.IntegrationStatus, a.IntegrationLatency, a.IntegrationTimed, a.IntegrationError
				e.AuthorizerStatus, e.AuthorizerLatency, e.AuthorizerTimed, e.AuthorizerError =
					a.AuthorizerStatus, a.AuthorizerLatency, a.AuthorizerTimed, a.AuthorizerError
				sess.access = nil
			}
			e.Authorizer, e.ClientCert = sess.ev.Authorizer, sess.ev.ClientCert
		}
	}
	switch {
	case status == http.StatusSwitchingProtocols:
		e.Status = http.StatusOK
	case status >= 400:
		e.ErrorMessage = http.StatusText(status)
		e.ErrorResponseType = responseType(&e)
	}
	if e.RequestID == "" {
		e.RequestID = awsevent.NewID()
	}
	e.Latency = time.Since(start)
	l.Log(&e)
}

// logManagementCall logs the MANAGEMENT line of a management API call.
func (g *Gateway) logManagementCall(call *mgmt.Call) {
	l := g.accessLog()
	if l == nil {
		return
	}
	e := accesslog.Entry{
		EventType:  eventManagement,
		RequestID:  call.RequestID,
		RouteKey:   call.Operation,
		Status:     call.Status,
		Time:       call.Start,
		APIID:      g.cfg.APIID,
		Stage:      g.cfg.EventStage(),
		DomainName: g.cfg.DomainName,
		SourceIP:   call.SourceIP,
		UserAgent:  call.UserAgent,
		Caller:     call.Caller,
		HTTPMethod: call.Method,
		Path:       call.Path,
		Protocol:   call.Protocol,
		Latency:    call.Latency,
	}
	if call.Status >= 400 {
		e.ErrorMessage = http.StatusText(call.Status)
		e.ErrorResponseType = responseType(&e)
	}
	l.Log(&e)
}

// responseType is AWS's gateway response type of the error e answered.
func responseType(e *accesslog.Entry) string {
	s := e.Status
	switch {
	case e.AuthorizerStatus == s && s == http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case e.AuthorizerStatus == s && s == http.StatusForbidden:
		return "ACCESS_DENIED"
	case e.AuthorizerStatus == s && s >= 500:
		return "AUTHORIZER_FAILURE"
	case s == http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case s == http.StatusBadRequest && e.ErrorMessage == badRequestBody:
		return "BAD_REQUEST_BODY"
	case s == http.StatusTooManyRequests:
		return "THROTTLED"
	case s == http.StatusRequestEntityTooLarge:
		return "REQUEST_TOO_LARGE"
	case s == http.StatusNotFound:
		return "RESOURCE_NOT_FOUND"
	case s == http.StatusGatewayTimeout:
		return "INTEGRATION_TIMEOUT"
	case e.IntegrationError != "" || s == http.StatusBadGateway:
		return "INTEGRATION_FAILURE"
	case s >= 500:
		return "DEFAULT_5XX"
	case s >= 400:
		return "DEFAULT_4XX"
	}
	return ""
}

// noteRefused records, in the inspector's log, the upgrade request r
// refused with status for reason (the session's own reason when it has
// one).
func (g *Gateway) noteRefused(r *http.Request, c *edge.Conn, status int, reason string, start time.Time) {
	e := inspect.Entry{Time: start, Status: status, Reason: reason, UserAgent: r.UserAgent(), Path: r.URL.Path}
	if c != nil {
		e.SourceIP = c.SourceIP()
		if sess, ok := c.Session.(*session); ok && sess.refusal != "" {
			e.Reason = sess.refusal
		}
	} else if addr, ok := edge.PeerAddr(r); ok {
		e.SourceIP = g.proxies.Load().Resolve(addr, r.Header).Addr.String()
	}
	if e.Reason == "" {
		e.Reason = http.StatusText(status)
	}
	e.Reason = string(redact.Text([]byte(e.Reason)))
	g.inspectLog.Add(inspect.KindRefused, e)
}
