package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/metrics"
	"github.com/wsgate/wsgate/internal/mgmt"
)

// ReloadError is a configuration a reload refused: invalid (the problems
// `wsgate validate` reports), or changing a setting that cannot change
// while the gateway runs. The running configuration is unchanged.
type ReloadError struct {
	// Errs are the problems, each naming its configuration line when it
	// has one.
	Errs []error
}

func (e *ReloadError) Error() string {
	return fmt.Sprintf("configuration refused (%d problem(s)); the running configuration is unchanged: %v", len(e.Errs), errors.Join(e.Errs...))
}

// Problems are the problems, one line each.
func (e *ReloadError) Problems() []string {
	out := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		out[i] = err.Error()
	}
	return out
}

// Unwrap returns the problems.
func (e *ReloadError) Unwrap() []error { return e.Errs }

// Reload reads the configuration again with Options.Load and applies it:
// routes, integrations, the route selection expression, the authorizer,
// limits, stage variables, topics and the management API's credentials and
// rate limit. Handshakes and messages that start afterwards use the new
// configuration; those in progress finish with the one they started with,
// whose integrations, authorizer and local functions are closed once they
// are done. No connection is closed by a reload.
//
// A configuration that fails the checks of New, or that changes a setting
// only a restart can change (see immutable), is refused with a
// *ReloadError, each problem logged; the running configuration is kept.
// Reload is safe to call concurrently; reloads are applied one at a time.
func (g *Gateway) Reload(ctx context.Context) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if !g.started || g.stopped {
		g.log.Warn("configuration reload ignored: the gateway is not serving")
		return errors.New("the gateway is not serving")
	}
	if g.opts.Load == nil {
		return errors.New("the gateway has no configuration to read again")
	}
	err := g.reload()
	var re *ReloadError
	switch {
	case err == nil:
		g.metrics.Reload(metrics.ReloadApplied)
	case errors.As(err, &re):
		g.metrics.Reload(metrics.ReloadRefused)
		for _, e := range re.Errs {
			g.log.Error("configuration refused; the running configuration is kept", "problem", e.Error())
		}
	default:
		g.metrics.Reload(metrics.ReloadFailed)
		g.log.Error("configuration reload failed; the running configuration is kept", "err", err)
	}
	return err
}

// reloadCall is the management API's POST /reload.
func (g *Gateway) reloadCall(ctx context.Context) error { return g.Reload(ctx) }

func (g *Gateway) reload() error {
	start := time.Now()
	cfg, err := g.opts.Load()
	if err != nil {
		return &ReloadError{Errs: config.Leaves(err)}
	}
	old := g.gen.Load()
	gen, errs := buildGeneration(cfg, g.opts, g.fast)
	fixed := immutable(old.cfg, cfg)
	errs = append(errs, fixed...)
	applyTLS := func() {}
	if len(fixed) == 0 {
		var tlsErrs []error
		applyTLS, tlsErrs = g.reloadTLS(cfg)
		errs = append(errs, tlsErrs...)
	}
	if len(errs) > 0 {
		if gen != nil {
			gen.close()
		}
		return &ReloadError{Errs: flatten(errs)}
	}
	gen.auth.metrics = g.metrics
	gen.auth.decisions = g.inspectLog
	// The access log is opened anew only when its settings changed: the
	// one in use keeps its file and its buffered lines otherwise.
	accessChanged := !reflect.DeepEqual(old.cfg.AccessLog, cfg.AccessLog)
	var access *accesslog.Logger
	if accessChanged {
		if access, err = NewAccessLog(cfg, g.opts, g.metrics); err != nil {
			gen.close()
			return &ReloadError{Errs: config.Leaves(err)}
		}
	}
	if err := g.startGeneration(gen); err != nil {
		_ = access.Close()
		return err
	}
	applyTLS()
	g.metrics.AddRoutes(gen.routes.Keys())
	g.edge.SetLimits(edgeLimits(cfg.Limits), cfg.BinaryFrames == config.BinaryBase64)
	if !slices.Equal(old.cfg.TrustedProxies, cfg.TrustedProxies) {
		p := newProxies(cfg)
		g.proxies.Store(p)
		g.edge.SetProxies(p)
	}
	if !reflect.DeepEqual(throttleSettings(old.cfg), throttleSettings(cfg)) {
		// New, full buckets; unchanged settings keep theirs.
		g.throttle.Store(newThrottle(cfg))
	}
	if g.mgmt != nil {
		mc := cfg.Management
		g.mgmt.SetAccess(gen.tokens, g.mgmtKeys(gen), mgmt.RateLimit{Rate: mc.RateLimit.Rate, Burst: mc.RateLimit.Burst})
	}
	g.tails.SetEnabled(cfg.Management.MessageTail)
	if g.opts.LogLevel != nil {
		g.opts.LogLevel.Set(cfg.Log.SlogLevel())
	}
	if accessChanged {
		old.replacedAccess = g.SwapAccessLog(access)
	}
	g.gen.Store(gen)
	g.retire(old)
	g.log.Info("configuration reloaded", "routes", len(cfg.Routes), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func flatten(errs []error) []error {
	var out []error
	for _, e := range errs {
		out = append(out, config.Leaves(e)...)
	}
	return out
}

// fixed is a setting that only a restart changes: its key and its value.
type fixed struct {
	path  string
	value func(*config.Config) any
	why   string
}

// fixedSettings are the settings a reload refuses to change, with why.
var fixedSettings = []fixed{
	{"listen", func(c *config.Config) any { return c.Listen }, "the client listener is bound"},
	{"stage", func(c *config.Config) any { return c.Stage }, "clients upgrade at its path"},
	{"api_id", func(c *config.Config) any { return c.APIID }, "local functions reach the management API by its host name"},
	{"domain_name", func(c *config.Config) any { return c.DomainName }, "local functions reach the management API by its host name"},
	{"management.enabled", func(c *config.Config) any { return c.Management.IsEnabled() }, "the management listener is bound or not"},
	{"management.listen", func(c *config.Config) any { return c.Management.Listen }, "the management listener is bound"},
	{"management.read_timeout", func(c *config.Config) any { return c.Management.ReadTimeout }, "the management listener is serving"},
	{"management.idle_timeout", func(c *config.Config) any { return c.Management.IdleTimeout }, "the management listener is serving"},
	{"management.max_body_bytes_in_flight", func(c *config.Config) any { return c.Management.MaxBodyBytesInFlight }, "the management API's body budget is in use"},
	{"management.pprof", func(c *config.Config) any { return c.Management.Pprof }, "the management API's paths are set"},
	{"management.metrics", func(c *config.Config) any { return c.Management.MetricsEnabled() }, "the metrics are registered"},
	{"management.ui", func(c *config.Config) any { return c.Management.UIEnabled() }, "the management API's paths are set"},
	{"registry", func(c *config.Config) any { return c.Registry }, "the cluster engine is connected"},
	{"limits.handshake_timeout", func(c *config.Config) any { return c.Limits.HandshakeTimeout }, "the client listener is serving"},
	{"limits.outbound_queue_bytes", func(c *config.Config) any { return c.Limits.OutboundQueueBytes }, "the event loop's write buffers are sized by it"},
	{"limits.inflight_budget_messages", func(c *config.Config) any { return c.Limits.InflightBudgetMessages }, "the in-flight budget is in use"},
	{"limits.inflight_budget_bytes", func(c *config.Config) any { return c.Limits.InflightBudgetBytes }, "the in-flight budget is in use"},
	{"limits.max_subscriptions_per_connection", func(c *config.Config) any { return c.Limits.MaxSubscriptionsPerConnection }, "the cluster node enforces it"},
	{"log.format", func(c *config.Config) any { return c.Log.Format }, "the log is being written"},
	{"proxy_protocol", func(c *config.Config) any { return c.ProxyProtocol }, "the client listener reads the PROXY protocol header or not"},
	{"tls", func(c *config.Config) any { return c.TLS.Enabled() }, "the client listener serves TLS or not"},
	{"tls.acme", func(c *config.Config) any { return c.TLS.ACME }, "its certificates are obtained and renewed by the ACME client it started"},
	{"management.tls", func(c *config.Config) any { return c.Management.IsEnabled() && c.Management.TLS.Enabled() }, "the management listener serves TLS or not"},
}

// immutable returns a problem for each setting next changes that only a
// restart can change, located at its line in next.
func immutable(cur, next *config.Config) []error {
	var errs []error
	changed := func(path, why string) {
		errs = append(errs, next.Errorf(path, "cannot change while wsgate runs (%s); restart wsgate to change it", why))
	}
	for _, f := range fixedSettings {
		if was, is := f.value(cur), f.value(next); !reflect.DeepEqual(was, is) {
			changed(f.path, f.why)
		}
	}
	if cur.TLS.ACME.Configured() && next.TLS.ACME.Configured() && !reflect.DeepEqual(cur.TLS, next.TLS) && reflect.DeepEqual(cur.TLS.ACME, next.TLS.ACME) {
		changed("tls", "with tls.acme, the client listener's TLS is the ACME client's")
	}
	if cur.ProxyProtocol && next.ProxyProtocol && !slices.Equal(cur.TrustedProxies, next.TrustedProxies) {
		changed("trusted_proxies", "with proxy_protocol, the client listener checks each peer against them")
	}
	return errs
}

// throttleSettings are the throttling settings of cfg, by route key ("" for
// the stage's default): a reload that leaves them as they were keeps the
// buckets.
func throttleSettings(cfg *config.Config) map[string]config.RateLimit {
	m := map[string]config.RateLimit{"": cfg.Throttling}
	for key, rt := range cfg.Routes {
		m[key] = rt.Throttling
	}
	return m
}
