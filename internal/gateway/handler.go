package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/redact"
	"github.com/wsgate/wsgate/internal/route"
	"github.com/wsgate/wsgate/internal/wsproto"
)

var _ edge.Handler = (*handler)(nil)

// handler is the gateway's logic for each stage of a connection.
type handler struct{ g *Gateway }

// session is the per-connection state kept in edge.Conn.Session.
type session struct {
	ev        awsevent.Conn
	principal string
	expires   bool // the credential expires and may be refreshed
	// limiter is the connection's limits.messages_per_second bucket,
	// created on its first message.
	limiter *rate.Limiter
	// opened ends the connection's place among the cluster node's opening
	// connections (close_oldest); nil when it has none.
	opened func()
	// evicted is set when the connection was closed for its user's limit
	// before its handshake completed: the close is pending, and a token
	// refresh must not postpone it.
	evicted atomic.Bool
	// access is the handshake's access log line while it is handled; nil
	// without an access log and once the handshake is answered.
	access *accesslog.Entry
	// refusal, when set, is why the handshake was refused for the
	// inspector's log, in place of the edge's reason.
	refusal string
}

func (h *handler) Connect(ctx context.Context, c *edge.Conn, r *http.Request) (string, error) {
	g := h.g
	gen := g.acquire()
	defer gen.release()
	now := time.Now()
	sess := &session{ev: awsevent.Conn{
		ID:          c.ID(),
		ConnectedAt: c.ConnectedAt(),
		SourceIP:    c.SourceIP(),
		UserAgent:   c.UserAgent(),
		DomainName:  r.Host,
	}}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		sess.ev.ClientCert = awsevent.NewClientCert(r.TLS.PeerCertificates[0])
	}
	c.Session = sess
	g.beginConnectLog(sess)
	if err := g.throttleHandshake(c); err != nil {
		return "", err
	}
	offered := wsproto.ParseSubprotocols(r.Header)
	sub, rej := gen.auth.negotiate(offered)
	if rej != nil {
		g.metrics.ClientError(route.Connect)
		g.log.Info("connection refused", "connectionId", c.ID(), "status", rej.Status, "reason", "no acceptable subprotocol")
		return "", rej
	}
	peer, scheme := g.clientOf(r)
	areq := &auth.Request{
		ConnectionID:   c.ID(),
		Header:         r.Header,
		Query:          r.URL.Query(),
		Host:           r.Host,
		Subprotocols:   offered,
		SourceIP:       c.SourceIP(),
		Peer:           peer,
		UserAgent:      c.UserAgent(),
		StageVariables: gen.cfg.StageVariables,
		Time:           now,
		ClientCert:     sess.ev.ClientCert,
	}
	id, latency, byAuthorizer, err := gen.auth.authenticate(ctx, areq, r)
	sess.noteAuth(gen.auth, id, latency, err)
	if err != nil {
		var re *edge.RejectError
		if errors.As(err, &re) {
			if byAuthorizer {
				sess.refusal = authorizerRefusal(re)
			}
			g.log.Info("connection refused", "connectionId", c.ID(), "status", re.Status, "reason", re.Reason)
			if re.Status < 500 {
				g.metrics.ClientError(route.Connect)
			}
		}
		return "", err
	}
	if id != nil {
		sess.principal = id.PrincipalID
		sess.ev.Authorizer = authorizerContext(id, latency)
	}
	slot, err := h.reserveUserSlot(ctx, c, sess.principal)
	if err != nil {
		var re *edge.RejectError
		if errors.As(err, &re) && re.Status < 500 {
			g.metrics.ClientError(route.Connect)
		}
		return "", err
	}
	if slot != nil {
		// Released however the handshake ends: once the connection is
		// registered it counts as such.
		defer h.releaseUserSlot(ctx, c, slot)
	}
	if ok, why := g.node.Ready(); !ok {
		g.log.Warn("connection refused: the cluster engine is unreachable", "connectionId", c.ID(), "status", http.StatusServiceUnavailable, "reason", why)
		return "", &edge.RejectError{Status: http.StatusServiceUnavailable, Message: "Service Unavailable", Reason: "cluster engine unreachable"}
	}
	connected := false
	g.metrics.Connect()
	if rt, ok := gen.routes.Get(route.Connect); ok {
		_, port, _ := net.SplitHostPort(g.Addr())
		ev := awsevent.Connect(gen.api, &sess.ev, &awsevent.ConnectRequest{
			Header: r.Header, Query: r.URL.Query(), Host: r.Host, Proto: scheme, Port: port, Peer: peer,
		}, now)
		start := time.Now()
		resp, err := rt.Integration.Invoke(ctx, ev)
		g.observeIntegration(route.Connect, rt, start, resp, err)
		sess.noteConnect(rt, ev, start, resp, err)
		if err != nil {
			g.log.Warn("$connect integration failed", "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID, "err", err)
			sess.refusal = "$connect integration failed: " + string(redact.Text([]byte(integrationError(err))))
			return "", err
		}
		if resp.StatusCode < 200 {
			g.log.Warn("$connect integration answered an informational status", "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID, "status", resp.StatusCode)
			return "", fmt.Errorf("$connect integration answered %d", resp.StatusCode)
		}
		if resp.StatusCode > 299 {
			return "", &edge.RejectError{Status: resp.StatusCode, Message: statusMessage(resp.StatusCode),
				Reason: fmt.Sprintf("$connect integration answered %d", resp.StatusCode)}
		}
		// As in AWS, the integration may choose the subprotocol; with
		// configured subprotocols the gateway's choice stands. A choice
		// the client did not offer fails the integration before the
		// connection counts anywhere; the value may hold the client's
		// token, so it is not logged.
		if sub == "" {
			sub = headerValue(resp.Headers, "Sec-WebSocket-Protocol")
			if sub != "" && !wsproto.Offered(offered, sub) {
				g.log.Warn("$connect integration chose a subprotocol the client did not offer", "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID)
				h.disconnectEvent(ctx, gen, c, sess, closeInternal, "subprotocol not offered")
				return "", errors.New("$connect integration chose a subprotocol the client did not offer")
			}
		}
		connected = true
	}
	if rej := h.keepUserSlot(ctx, c, slot); rej != nil {
		if connected {
			// The backend accepted a $connect for a connection that will
			// never open: it gets the matching $disconnect.
			code, why := closeInternal, "registry unavailable"
			if rej.Status == http.StatusTooManyRequests {
				code, why = closeUserLimit, closeUserLimitReason
			}
			h.disconnectEvent(ctx, gen, c, sess, code, why)
		}
		return "", rej
	}
	// The expiry is set before anyone can close the connection for its
	// user's limit, which it must not undo.
	if id != nil && !id.ExpiresAt.IsZero() {
		sess.startExpiry(c, id.ExpiresAt)
	}
	admitted := false
	if h.closesOldest(sess.principal) {
		sess.opened = g.node.Opening(openingConn{c, sess})
		defer func() {
			if !admitted {
				sess.opened()
			}
		}()
	}
	if err := g.node.Register(ctx, g.record(c, sess)); err != nil {
		g.log.Error("registry unavailable at connect", "connectionId", c.ID(), "err", err)
		if connected {
			// As above.
			h.disconnectEvent(ctx, gen, c, sess, closeInternal, "registry unavailable")
		}
		return "", &edge.RejectError{Status: http.StatusServiceUnavailable, Message: "Service Unavailable", Reason: "registry unavailable"}
	}
	h.closeOverUserLimit(ctx, c, sess.principal)
	admitted = true
	return sub, nil
}

// reason extracts the loggable reason of a refusal.
func reason(err error) string {
	var d *auth.Denial
	if errors.As(err, &d) {
		return d.Reason
	}
	return err.Error()
}

func (h *handler) Message(ctx context.Context, c *edge.Conn, data []byte, binary bool) {
	g := h.g
	gen := g.acquire()
	defer gen.release()
	sess := c.Session.(*session)
	el := g.newEventLog(eventMessage, c, sess)
	defer el.done()
	if !sess.allowMessage(gen.cfg.Limits.MessagesPerSecond) {
		// The route is not evaluated for a throttled message.
		g.metrics.Message(route.Default)
		g.metrics.ClientError(route.Default)
		el.answer(http.StatusTooManyRequests, "Limit Exceeded")
		_ = c.Reply(awsevent.LimitExceededFrame(c.ID(), el.id()))
		return
	}
	key := route.Default
	if !binary {
		if k, ok := gen.expr.Evaluate(data); ok {
			key = k
		}
	}
	if gen.auth.jwt != nil && key == gen.auth.refreshRoute {
		g.metrics.Message(route.Default)
		el.route(key)
		h.refresh(ctx, gen, c, sess, data, el)
		return
	}
	name, rt, ok := gen.routes.Select(key)
	if !ok {
		name = route.Default
	}
	g.metrics.Message(name)
	if ok {
		el.route(name)
	}
	if ok && g.throttleMessage(c, name, el) {
		return
	}
	if !ok || (len(rt.Require) > 0 && !allowed(rt.Require, sess.ev.Authorizer)) {
		g.metrics.ClientError(name)
		el.answer(http.StatusForbidden, "Forbidden")
		_ = c.Reply(awsevent.ForbiddenFrame(c.ID(), el.id()))
		return
	}
	if inv := rt.validate(data, binary); inv != nil {
		// As in AWS, the gateway answers; the integration never sees the
		// message.
		g.metrics.ClientError(name)
		g.metrics.Invalid(name)
		messageID := awsevent.NewID()
		el.invalid(messageID, inv.Detail)
		g.log.Debug("message refused by its route's model", "route", name, "connectionId", c.ID(), "model", inv.Model, "reason", inv.Detail)
		_ = c.Reply(awsevent.BadRequestBodyFrame(c.ID(), messageID))
		return
	}
	if rt.Builtin != "" {
		h.builtin(ctx, gen, c, sess, rt, data, el)
		return
	}
	ev := awsevent.Message(gen.api, &sess.ev, name, data, binary, time.Now())
	start := time.Now()
	resp, err := rt.Integration.Invoke(ctx, ev)
	g.observeIntegration(name, rt, start, resp, err)
	el.integration(rt, ev, start, resp, err)
	if err != nil {
		g.log.Warn("integration failed", "route", name, "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID, "err", err)
		_ = c.Reply(awsevent.InternalErrorFrame(c.ID(), ev.RequestContext.RequestID))
		return
	}
	if !rt.RouteResponse || resp.Body == "" {
		return
	}
	out := []byte(resp.Body)
	if resp.IsBase64Encoded {
		dec, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			g.log.Warn("integration returned invalid base64 body", "route", name, "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID)
			el.answer(http.StatusInternalServerError, "Internal server error")
			_ = c.Reply(awsevent.InternalErrorFrame(c.ID(), ev.RequestContext.RequestID))
			return
		}
		out = dec
	}
	if limit := gen.cfg.Limits.MaxMessageBytes; len(out) > limit {
		// A message the client could not send either: the outbound queue
		// is sized for limits.max_message_bytes, and a larger reply would
		// close a client that reads promptly as a slow consumer.
		g.log.Warn("integration returned a body over limits.max_message_bytes", "route", name, "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID, "bytes", len(out), "limit", limit)
		el.answer(http.StatusInternalServerError, "Internal server error")
		_ = c.Reply(awsevent.InternalErrorFrame(c.ID(), ev.RequestContext.RequestID))
		return
	}
	_ = c.Reply(out)
}

// refresh handles the built-in token refresh route: a fresh token for the
// same principal moves the connection's expiry.
func (h *handler) refresh(ctx context.Context, gen *generation, c *edge.Conn, sess *session, data []byte, el *eventLog) {
	g := h.g
	var body struct {
		Token string `json:"token"`
	}
	requestID := el.id()
	if err := json.Unmarshal(data, &body); err != nil || body.Token == "" {
		el.answer(http.StatusForbidden, "Forbidden")
		_ = c.Reply(awsevent.ForbiddenFrame(c.ID(), requestID))
		return
	}
	id, err := gen.auth.jwt.Verify(ctx, body.Token)
	switch {
	case err != nil:
		g.log.Info("token refresh refused", "connectionId", c.ID(), "reason", reason(err))
	case id.PrincipalID != sess.principal:
		g.log.Info("token refresh refused", "connectionId", c.ID(), "reason", "token is for another principal")
		err = errors.New("other principal")
	case !sess.expires || id.ExpiresAt.IsZero():
		g.log.Info("token refresh refused", "connectionId", c.ID(), "reason", "connection or token has no expiry")
		err = errors.New("no expiry")
	case sess.evicted.Load():
		g.log.Info("token refresh refused", "connectionId", c.ID(), "reason", "connection is closing for its user's limit")
		err = errors.New("evicted")
	}
	if err != nil {
		el.answer(http.StatusForbidden, "Forbidden")
		_ = c.Reply(awsevent.ForbiddenFrame(c.ID(), requestID))
		return
	}
	sess.extend(c, id.ExpiresAt)
	reply, _ := json.Marshal(struct {
		Action    string `json:"action"`
		ExpiresAt string `json:"expiresAt"`
	}{gen.auth.refreshRoute, id.ExpiresAt.UTC().Format(time.RFC3339)})
	_ = c.Reply(reply)
}

func (h *handler) Disconnect(ctx context.Context, c *edge.Conn, code int, reason string) {
	g := h.g
	g.metrics.Disconnect(code)
	g.tails.Drop(c.ID())
	g.node.Unregister(context.WithoutCancel(ctx), c.ID())
	sess, _ := c.Session.(*session)
	if sess == nil {
		return
	}
	if sess.opened != nil {
		sess.opened()
	}
	gen := g.acquire()
	defer gen.release()
	h.disconnectEvent(ctx, gen, c, sess, code, reason)
}

// closeInternal is the $disconnect code of a connection the gateway could
// not complete after its $connect integration accepted it.
const closeInternal = 1011

// disconnectEvent delivers c's $disconnect event through gen, when the
// route exists.
func (h *handler) disconnectEvent(ctx context.Context, gen *generation, c *edge.Conn, sess *session, code int, reason string) {
	g := h.g
	el := g.newEventLog(eventDisconnect, c, sess)
	el.disconnected(code, reason)
	defer el.done()
	rt, ok := gen.routes.Get(route.Disconnect)
	if !ok {
		return
	}
	ev := awsevent.Disconnect(gen.api, &sess.ev, code, reason, time.Now())
	start := time.Now()
	resp, err := rt.Integration.Invoke(ctx, ev)
	g.observeIntegration(route.Disconnect, rt, start, resp, err)
	el.integration(rt, ev, start, resp, err)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			g.log.Warn("$disconnect not delivered before shutdown", "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID)
			return
		}
		g.log.Warn("$disconnect integration failed", "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID, "err", err)
	}
}

func headerValue(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func statusMessage(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Rejected"
}

// proto is the scheme the client reached the gateway's listener with.
func proto(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// authorizerRefusal is the inspector's reason for a handshake the
// authorizer (or its cache) refused with re.
func authorizerRefusal(re *edge.RejectError) string {
	why := re.Reason
	if why == "" {
		why = re.Message
	}
	why = string(redact.Text([]byte(why)))
	if re.Status >= 500 {
		return "authorizer failed: " + why
	}
	return "authorizer denied: " + why
}
