package gateway

import (
	"net/http"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/route"
	"github.com/wsgate/wsgate/internal/throttle"
)

// newThrottle builds the route throttling of cfg. It is a function of the
// configuration alone so that a new configuration can swap in a new one
// (Gateway.throttle).
func newThrottle(cfg *config.Config) *throttle.Throttle { return throttle.New(cfg) }

// throttleHandshake refuses a handshake over the $connect bucket with 429,
// before the authorizer or the $connect integration runs; nil otherwise.
func (g *Gateway) throttleHandshake(c *edge.Conn) error {
	if g.throttle.Load().Allow(route.Connect) {
		return nil
	}
	g.metrics.Throttled(route.Connect)
	g.metrics.ClientError(route.Connect)
	// Debug: throttling is there for floods, which must not flood the log.
	g.log.Debug("connection refused", "connectionId", c.ID(), "status", http.StatusTooManyRequests, "reason", "throttled")
	return &edge.RejectError{Status: http.StatusTooManyRequests, Message: "Too Many Requests", Reason: "throttled ($connect route throttling)"}
}

// throttleMessage reports whether a message selecting route name is over
// the route's bucket; the client then gets AWS's Too Many Requests frame
// and the integration is not called.
func (g *Gateway) throttleMessage(c *edge.Conn, name string, el *eventLog) bool {
	if g.throttle.Load().Allow(name) {
		return false
	}
	g.metrics.Throttled(name)
	g.metrics.ClientError(name)
	el.answer(http.StatusTooManyRequests, "Too Many Requests")
	_ = c.Reply(awsevent.TooManyRequestsFrame(c.ID(), el.id()))
	return true
}
