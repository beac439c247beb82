package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/route"
)

var _ edge.Handler = (*handler)(nil)

// handler is the gateway's logic for each stage of a connection.
type handler struct{ g *Gateway }

// session is the per-connection state kept in edge.Conn.Session.
type session struct {
	ev awsevent.Conn
}

func (h *handler) Connect(ctx context.Context, c *edge.Conn, r *http.Request) (string, error) {
	g := h.g
	sess := &session{ev: awsevent.Conn{
		ID:          c.ID(),
		ConnectedAt: c.ConnectedAt(),
		SourceIP:    c.SourceIP(),
		UserAgent:   c.UserAgent(),
		DomainName:  r.Host,
	}}
	c.Session = sess
	var sub string
	if rt, ok := g.routes.Get(route.Connect); ok {
		_, port, _ := net.SplitHostPort(g.Addr())
		ev := awsevent.Connect(g.api, &sess.ev, &awsevent.ConnectRequest{
			Header: r.Header, Query: r.URL.Query(), Host: r.Host, Proto: "http", Port: port,
		}, time.Now())
		resp, err := rt.Integration.Invoke(ctx, ev)
		if err != nil {
			g.log.Warn("$connect integration failed", "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID, "err", err)
			return "", err
		}
		if resp.StatusCode < 200 {
			g.log.Warn("$connect integration answered an informational status", "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID, "status", resp.StatusCode)
			return "", fmt.Errorf("$connect integration answered %d", resp.StatusCode)
		}
		if resp.StatusCode > 299 {
			return "", &edge.RejectError{Status: resp.StatusCode, Message: statusMessage(resp.StatusCode)}
		}
		sub = headerValue(resp.Headers, "Sec-WebSocket-Protocol")
	}
	err := g.reg.Register(ctx, registry.Record{
		ConnectionID: c.ID(),
		NodeID:       g.nodeID,
		ConnectedAt:  c.ConnectedAt(),
		SourceIP:     c.SourceIP(),
		UserAgent:    c.UserAgent(),
	})
	if err != nil {
		g.log.Error("registry unavailable at connect", "connectionId", c.ID(), "err", err)
		return "", &edge.RejectError{Status: http.StatusServiceUnavailable, Message: "Service Unavailable"}
	}
	return sub, nil
}

func (h *handler) Message(ctx context.Context, c *edge.Conn, data []byte, binary bool) {
	g := h.g
	sess := c.Session.(*session)
	key := route.Default
	if !binary {
		if k, ok := g.expr.Evaluate(data); ok {
			key = k
		}
	}
	name, rt, ok := g.routes.Select(key)
	if !ok {
		_ = c.Send(awsevent.ForbiddenFrame(c.ID(), awsevent.NewID()))
		return
	}
	ev := awsevent.Message(g.api, &sess.ev, name, data, binary, time.Now())
	resp, err := rt.Integration.Invoke(ctx, ev)
	if err != nil {
		g.log.Warn("integration failed", "route", name, "connectionId", c.ID(), "requestId", ev.RequestContext.RequestID, "err", err)
		_ = c.Send(awsevent.InternalErrorFrame(c.ID(), ev.RequestContext.RequestID))
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
			_ = c.Send(awsevent.InternalErrorFrame(c.ID(), ev.RequestContext.RequestID))
			return
		}
		out = dec
	}
	_ = c.Send(out)
}

func (h *handler) Disconnect(ctx context.Context, c *edge.Conn, code int, reason string) {
	g := h.g
	if err := g.reg.Unregister(context.WithoutCancel(ctx), c.ID()); err != nil {
		g.log.Error("registry unregister failed", "connectionId", c.ID(), "err", err)
	}
	rt, ok := g.routes.Get(route.Disconnect)
	if !ok {
		return
	}
	sess, _ := c.Session.(*session)
	if sess == nil {
		return
	}
	ev := awsevent.Disconnect(g.api, &sess.ev, code, reason, time.Now())
	if _, err := rt.Integration.Invoke(ctx, ev); err != nil {
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
