// Package throttle limits client requests per route with token buckets, as
// API Gateway's stage and route throttling settings do (DefaultRouteSettings
// and RouteSettings, ThrottlingRateLimit and ThrottlingBurstLimit).
//
// Each route has its own bucket: the route's throttling when it sets one,
// the stage's default otherwise. Buckets are node-local: every gateway
// process of a cluster allows the full rate, so a cluster of N nodes
// admits up to N times as much. A Throttle is built from a configuration
// and never changes; a new configuration makes a new Throttle (with full
// buckets), which the gateway swaps in.
package throttle

import (
	"golang.org/x/time/rate"

	"github.com/wsgate/wsgate/internal/config"
)

// Throttle holds the buckets of one configuration. Its methods are safe for
// concurrent use; a nil *Throttle allows everything.
type Throttle struct {
	routes map[string]*rate.Limiter
}

// New returns the buckets c asks for: one per route with a rate, its own or
// c.Throttling, and one for $connect (handshakes) when the stage default or
// a $connect route sets a rate. $disconnect is never throttled. It returns
// nil when nothing is throttled.
func New(c *config.Config) *Throttle {
	t := &Throttle{routes: make(map[string]*rate.Limiter)}
	add := func(key string, r config.RateLimit) {
		if r.Enabled() {
			t.routes[key] = rate.NewLimiter(rate.Limit(r.Rate), r.Burst)
		}
	}
	for key, rt := range c.Routes {
		if key == config.RouteDisconnect {
			continue
		}
		if rt.Throttling.Enabled() {
			add(key, rt.Throttling)
		} else {
			add(key, c.Throttling)
		}
	}
	if _, ok := c.Routes[config.RouteConnect]; !ok {
		add(config.RouteConnect, c.Throttling)
	}
	if len(t.routes) == 0 {
		return nil
	}
	return t
}

// Allow takes a token from route's bucket and reports whether there was
// one. A route without a bucket is always allowed.
func (t *Throttle) Allow(route string) bool {
	if t == nil {
		return true
	}
	l, ok := t.routes[route]
	return !ok || l.Allow()
}

// Limited reports whether route has a bucket.
func (t *Throttle) Limited(route string) bool {
	if t == nil {
		return false
	}
	_, ok := t.routes[route]
	return ok
}
