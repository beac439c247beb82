package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/inspect"
	"github.com/wsgate/wsgate/internal/integration"
	"github.com/wsgate/wsgate/internal/metrics"
	"github.com/wsgate/wsgate/internal/redact"
)

// CloseTokenExpired closes a connection whose token expired without a
// refresh.
const CloseTokenExpired = 4401

// authn is the gateway's $connect authentication: the Origin policy, the
// identity sources, CSRF, the decision cache and the authorizer, applied in
// that order.
type authn struct {
	origins    *auth.OriginPolicy
	protocols  []string
	sources    []auth.Source
	csrf       config.CSRF
	cache      *auth.Cache
	authorizer auth.Authorizer // nil for type none
	jwt        *auth.JWT       // the authorizer when it is a JWT one, for refresh
	// lambda runs a lambda authorizer's local program; the gateway starts
	// it, and closing the authorizer closes it.
	lambda       *integration.LocalFunction
	refreshRoute string
	// challenge is sent with a 401 for missing credentials, so that a
	// Basic client learns what to send.
	challenge http.Header
	log       *slog.Logger
	// metrics counts decisions; nil counts nothing.
	metrics *metrics.Metrics
	// kind is the configured authorizer type, which decisions name.
	kind string
	// decisions records each decision of the authorizer or its cache for
	// the inspector; nil records none.
	decisions *inspect.Log
}

// buildAuth makes the authentication chain from cfg. ctx owns background
// work such as JWKS refresh.
func buildAuth(ctx context.Context, cfg *config.Config, opts Options, fast *integration.FastClient) (*authn, []error) {
	a := &authn{
		origins:      auth.NewOriginPolicy(cfg.Origins),
		protocols:    cfg.Subprotocols,
		csrf:         cfg.Authorizer.CSRF,
		refreshRoute: cfg.Authorizer.JWT.RefreshRoute,
		log:          opts.Logger,
		kind:         string(cfg.Authorizer.Type),
	}
	var errs []error
	for i, expr := range cfg.Authorizer.IdentitySources {
		src, err := auth.ParseSource(expr)
		if err != nil {
			errs = append(errs, cfg.Errorf(fmt.Sprintf("authorizer.identity_sources[%d]", i), "%v", err))
			continue
		}
		a.sources = append(a.sources, src)
	}
	if cfg.Authorizer.CacheTTL > 0 && cfg.Authorizer.Type != config.AuthNone {
		a.cache = auth.NewCache(cfg.Authorizer.CacheTTL, cfg.Authorizer.CacheSize)
	}
	var err error
	ac := cfg.Authorizer
	switch ac.Type {
	case config.AuthJWT:
		a.jwt, err = auth.NewJWT(ctx, ac.JWT, opts.Getenv, opts.ReadFile, opts.Logger)
		if err == nil {
			a.authorizer = a.jwt
		}
		err = wrapAt(cfg, "authorizer.jwt", err)
	case config.AuthRequest:
		a.authorizer = auth.NewRequest(ac.Request, auth.API{APIID: cfg.APIID, Stage: cfg.Stage}, fast)
	case config.AuthLambda:
		var inv integration.Invoker
		inv, a.lambda, err = buildInvoker("authorizer.lambda", ac.Lambda, fast, opts)
		if err == nil {
			a.authorizer = auth.NewLambdaRequest(ac.Request, auth.API{APIID: cfg.APIID, Stage: cfg.Stage}, inv)
		}
		err = wrapAt(cfg, "authorizer.lambda", err)
	case config.AuthBasic:
		var b *auth.Basic
		b, err = auth.NewBasic(ac.Basic, opts.ReadFile)
		if err == nil {
			a.authorizer = b
		}
		a.challenge = http.Header{"Www-Authenticate": {fmt.Sprintf("Basic realm=%q", ac.Basic.Realm)}}
		err = wrapAt(cfg, "authorizer.basic.htpasswd_file", err)
	case config.AuthAPIKey:
		var k *auth.APIKey
		k, err = auth.NewAPIKey(ac.APIKey, opts.Getenv, opts.ReadFile)
		if err == nil {
			a.authorizer = k
		}
		err = wrapAt(cfg, "authorizer.apikey", err)
	case config.AuthNone:
	default:
		err = cfg.Errorf("authorizer.type", "authorizer type %q is not supported", ac.Type)
	}
	if err != nil {
		errs = append(errs, err)
	}
	return a, errs
}

// wrapAt locates each problem joined in err in the configuration file: a
// *config.Error at the line of its own key, any other error at the key at
// path. Causes are kept, for config.IsMissing.
func wrapAt(cfg *config.Config, path string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var list []error
		for _, e := range j.Unwrap() {
			list = append(list, wrapAt(cfg, path, e))
		}
		return errors.Join(list...)
	}
	var ce *config.Error
	if errors.As(err, &ce) && ce.Path != "" {
		return cfg.Locate(ce)
	}
	return cfg.Errorf(path, "%w", err)
}

func (a *authn) close() {
	if c, ok := a.authorizer.(auth.Closer); ok {
		_ = c.Close()
	}
}

// reject turns a denial into the handshake's answer.
func reject(d *auth.Denial) *edge.RejectError {
	return &edge.RejectError{Status: d.Status, Message: d.Message, Header: d.Header, Reason: d.Reason}
}

// negotiate picks the subprotocol to answer with: the first configured
// protocol the client offered. A client that offered protocols, none of them
// configured, is refused: a 101 without one of its protocols would make a
// browser drop the connection with no reason given.
func (a *authn) negotiate(offered []string) (string, *edge.RejectError) {
	if len(a.protocols) == 0 || len(offered) == 0 {
		return "", nil
	}
	for _, p := range a.protocols {
		for _, o := range offered {
			if o == p {
				return p, nil
			}
		}
	}
	return "", &edge.RejectError{Status: http.StatusBadRequest, Message: "No acceptable subprotocol; offer one of the protocols this API speaks", Reason: "no acceptable subprotocol"}
}

// authenticate runs the checks of $connect up to and including the
// authorizer. It returns the identity (nil for type none), the
// authorizer's latency, and whether the authorizer (or its cache)
// decided, rather than a check before it.
func (a *authn) authenticate(ctx context.Context, req *auth.Request, r *http.Request) (*auth.Identity, time.Duration, bool, error) {
	if origin := r.Header.Get("Origin"); !a.origins.Allowed(origin) {
		return nil, 0, false, reject(auth.Forbidden("origin not allowed"))
	}
	if a.authorizer == nil {
		return nil, 0, false, nil
	}
	values, err := auth.ReadSources(req, a.sources, a.protocols)
	if err != nil {
		d := auth.AsDenial(err)
		d.Header = a.challenge
		return nil, 0, false, reject(d)
	}
	if a.csrf.Cookie != "" {
		if err := auth.CheckCSRF(r.Header, req.Query, a.csrf.Cookie, a.csrf.Query); err != nil {
			return nil, 0, false, reject(auth.AsDenial(err))
		}
	}
	// The cache key hashes every source value: made only with a cache.
	var key string
	if a.cache != nil {
		key = auth.CacheKey(values)
		if id, deny, ok := a.cache.Get(key, req.Time); ok {
			if deny != nil {
				a.metrics.AuthorizerCached(decision(deny))
				a.decided(req, nil, deny, 0, true)
				return nil, 0, true, reject(deny)
			}
			a.metrics.AuthorizerCached("allow")
			a.decided(req, id, nil, 0, true)
			return id, 0, true, nil
		}
		a.metrics.AuthorizerCacheMiss()
	}
	start := time.Now()
	id, err := a.authorizer.Authorize(ctx, req)
	latency := time.Since(start)
	if err != nil {
		d := auth.AsDenial(err)
		a.metrics.Authorizer(decision(d), latency)
		a.decided(req, nil, d, latency, false)
		if a.cache != nil {
			a.cache.Put(key, nil, d, req.Time)
		}
		return nil, latency, true, reject(d)
	}
	a.metrics.Authorizer("allow", latency)
	a.decided(req, id, nil, latency, false)
	if a.cache != nil {
		a.cache.Put(key, id, nil, req.Time)
	}
	return id, latency, true, nil
}

// decided records the authorizer's decision on req for the inspector:
// allow with id, or the denial d.
func (a *authn) decided(req *auth.Request, id *auth.Identity, d *auth.Denial, latency time.Duration, cached bool) {
	if a.decisions == nil {
		return
	}
	e := inspect.Entry{Time: req.Time, Authorizer: a.kind, Latency: latency, CacheHit: cached, SourceIP: req.SourceIP}
	if d != nil {
		e.Decision, e.Reason = decision(d), denialReason(d)
	} else {
		e.Decision, e.PrincipalID = inspect.DecisionAllow, id.PrincipalID
	}
	a.decisions.Add(inspect.KindAuthorizer, e)
}

// denialReason is why d refused, as the gateway logs it: its reason, or
// its message when it has none, with anything shaped like a credential
// removed.
func denialReason(d *auth.Denial) string {
	why := d.Reason
	if why == "" {
		why = d.Message
	}
	return string(redact.Text([]byte(why)))
}

// decision is a denial's metrics label: "error" when the authorizer
// failed (a 5XX), "deny" otherwise.
func decision(d *auth.Denial) string {
	if d.Status >= 500 {
		return "error"
	}
	return "deny"
}

// authorizerContext is requestContext.authorizer as AWS builds it:
// principalId, integrationLatency and the context values stringified.
func authorizerContext(id *auth.Identity, latency time.Duration) map[string]any {
	m := make(map[string]any, len(id.Context)+2)
	for k, v := range id.Context {
		m[k] = stringify(v)
	}
	m["principalId"] = id.PrincipalID
	m["integrationLatency"] = latency.Milliseconds()
	return m
}

func stringify(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return fmt.Sprint(v)
}

// allowed checks a route's require rules against the connection's
// authorizer context.
func allowed(require map[string][]string, authz map[string]any) bool {
	for key, values := range require {
		got, ok := authz[key].(string)
		if !ok {
			return false
		}
		match := false
		for _, v := range values {
			if got == v {
				match = true
				break
			}
		}
		if !match {
			return false
		}
	}
	return true
}

// startExpiry closes the connection with 4401 when its credential expires.
func (s *session) startExpiry(c *edge.Conn, at time.Time) {
	s.expires = true
	c.CloseAt(at, CloseTokenExpired, "token expired")
}

// extend moves the expiry to at.
func (s *session) extend(c *edge.Conn, at time.Time) {
	c.CloseAt(at, CloseTokenExpired, "token expired")
}
