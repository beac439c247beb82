package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/integration"
	"github.com/wsgate/wsgate/internal/mgmt"
	"github.com/wsgate/wsgate/internal/route"
)

// generation is everything a configuration reload replaces, built from one
// configuration by buildGeneration and never changed afterwards: the
// routes and their integrations, the route selection expression, the
// authentication chain, the stage's event fields and the management API's
// credentials.
//
// Each handshake, message and $disconnect holds a reference to the
// generation it started with (Gateway.acquire) and releases it when done,
// so that it finishes on the integrations it began with. The gateway holds
// one more reference while the generation is the current one. When a
// reload replaces it, that reference is released, and once the last one
// goes the gateway closes the generation's broker connections, local
// functions, authorizer and HTTP client (see Gateway.retire).
type generation struct {
	cfg    *config.Config
	api    awsevent.API
	expr   *route.Expression
	routes *route.Table[*Route]
	// clients are the HTTP clients the integrations and the authorizer
	// share.
	clients *clients
	auth    *authn
	// lambdas are the local Lambda functions of routes and the authorizer,
	// started by Gateway.startGeneration.
	lambdas []*integration.LocalFunction
	// brokers are the connections of the nats, redis, amqp and postgres
	// integrations.
	brokers *brokers
	// cancelBg ends background work of the generation, such as JWKS
	// refresh.
	cancelBg context.CancelFunc
	// tokens and sigv4 are the management API's credentials.
	tokens []string
	sigv4  mgmt.SigV4
	// replacedAccess is the access log a reload replaced when it replaced
	// this generation; it is closed with the generation, once the lines
	// of the work begun with it are written.
	replacedAccess *accesslog.Logger
	// slotTTL is the lifetime of a handshake's reservation of a user slot,
	// in nanoseconds; see slotTTL. Tests shorten it.
	slotTTL atomic.Int64

	// refs counts the references; at 0 the generation is drained and
	// drained is closed. It never rises again from 0 through tryAcquire.
	refs      atomic.Int64
	drained   chan struct{}
	drainOnce sync.Once
	closeOnce sync.Once
}

// buildGeneration builds the parts of cfg that a reload replaces, after
// validating cfg. It returns every problem it finds, each naming the
// configuration line when it has one; nil when there is one (it closes what
// it had built).
func buildGeneration(cfg *config.Config, opts Options, fast *integration.FastClient) (*generation, []error) {
	var errs []error
	// Validate also reports a route selection expression that does not
	// compile.
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	expr, _ := route.ParseExpression(cfg.RouteSelectionExpression)
	cl := newClients(fast)
	routes := make(map[string]*Route, len(cfg.Routes))
	var lambdas []*integration.LocalFunction
	brk := newBrokers(opts.Logger)
	for key, rc := range cfg.Routes {
		models, modelErrs := buildModels(cfg, key, &rc, opts.ReadFile)
		errs = append(errs, modelErrs...)
		if rc.Builtin != "" {
			routes[key] = &Route{Key: key, Builtin: rc.Builtin, Require: requireRules(rc.Require), Models: models}
			continue
		}
		in, err := buildIntegration("routes."+key+".integration", rc.Integration, cl, opts, &lambdas, brk)
		if err != nil {
			if !errors.Is(err, errReported) {
				errs = append(errs, wrapAt(cfg, "routes."+key+".integration", err))
			}
			continue
		}
		routes[key] = &Route{Key: key, Integration: in, RouteResponse: rc.RouteResponse, Require: requireRules(rc.Require), Models: models}
	}
	var tokens []string
	if cfg.Management.IsEnabled() && cfg.Management.HasAuth() {
		var err error
		if tokens, err = cfg.Management.Auth.Tokens(opts.Getenv, opts.ReadFile); err != nil {
			errs = append(errs, wrapAt(cfg, "management.auth", err))
		}
	}
	var sigv4 mgmt.SigV4
	if cfg.Management.IsEnabled() && cfg.Management.Auth.SigV4.Configured() {
		var err error
		if sigv4, err = loadSigV4(cfg, opts); err != nil {
			errs = append(errs, err)
		}
	}
	bgCtx, cancelBg := context.WithCancel(context.Background())
	authChain, authErrs := buildAuth(bgCtx, cfg, opts, cl.fast)
	errs = append(errs, authErrs...)
	if authChain.lambda != nil {
		lambdas = append(lambdas, authChain.lambda)
	}
	gen := &generation{
		cfg:      cfg,
		api:      awsevent.API{APIID: cfg.APIID, Stage: cfg.Stage, DomainName: cfg.DomainName, StageVariables: cfg.StageVariables},
		expr:     expr,
		routes:   route.NewTable(routes),
		clients:  cl,
		auth:     authChain,
		lambdas:  lambdas,
		brokers:  brk,
		cancelBg: cancelBg,
		tokens:   tokens,
		sigv4:    sigv4,
		drained:  make(chan struct{}),
	}
	gen.refs.Store(1)
	gen.slotTTL.Store(int64(slotTTL(cfg)))
	if len(errs) > 0 {
		gen.close()
		return nil, errs
	}
	return gen, nil
}

// clients are the HTTP clients of one generation: fast for the http
// integrations (HTTP/1.1), the Lambda Invoke API and the REQUEST
// authorizer; h2 for the http integrations with http2: true; std for the
// AWS SDK's calls (sqs, sns, eventbridge). fast is the Gateway's, shared by
// every generation: its connections outlive a reload, and each backend's
// pool has a cleaner goroutine that a client per generation would leave
// running for IdleConnTimeout after every reload.
type clients struct {
	fast *integration.FastClient
	h2   *http.Client
	std  *http.Client
}

func newClients(fast *integration.FastClient) *clients {
	return &clients{fast: fast, h2: integration.NewHTTP2Client(), std: integration.NewClient()}
}

// closeIdle closes the idle connections of the generation's own clients
// (not the shared fast).
func (c *clients) closeIdle() {
	c.h2.CloseIdleConnections()
	c.std.CloseIdleConnections()
}

// close releases what the generation holds: the authorizer, the local
// functions, the broker connections, background work and idle HTTP
// connections. It is idempotent.
func (gen *generation) close() {
	gen.closeOnce.Do(func() {
		gen.auth.close()
		closeLambdas(gen.lambdas)
		gen.brokers.close()
		gen.cancelBg()
		gen.clients.closeIdle()
		_ = gen.replacedAccess.Close()
	})
}

// tryAcquire takes a reference unless the generation has drained.
func (gen *generation) tryAcquire() bool {
	for {
		n := gen.refs.Load()
		if n <= 0 {
			return false
		}
		if gen.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives a reference back.
func (gen *generation) release() {
	if gen.refs.Add(-1) == 0 {
		gen.drainOnce.Do(func() { close(gen.drained) })
	}
}

// acquire returns the current generation with a reference taken, which the
// caller releases when its work is done. A generation replaced meanwhile
// is skipped for the one that replaced it; after Shutdown, stragglers get
// the last generation, whatever of it is still open.
func (g *Gateway) acquire() *generation {
	for {
		gen := g.gen.Load()
		if gen.tryAcquire() {
			return gen
		}
		if g.gen.Load() == gen {
			gen.refs.Add(1)
			return gen
		}
	}
}

// conf is the configuration in force, for settings read once (a limit, the
// topics allow-list) rather than resources used over time.
func (g *Gateway) conf() *config.Config { return g.gen.Load().cfg }

// retire gives up the gateway's reference to gen, which is no longer
// current, and closes gen once every handshake, message and $disconnect
// that holds it is done, or when Shutdown gives up waiting.
func (g *Gateway) retire(gen *generation) {
	g.retired.Add(1)
	g.retiring.Add(1)
	gen.release()
	go func() {
		defer g.retired.Done()
		select {
		case <-gen.drained:
		case <-g.forceClose:
			select {
			case <-gen.drained:
			default:
				g.forced.Store(true)
			}
		}
		gen.close()
		g.retiring.Add(-1)
	}()
}

// closeGenerations retires the current generation and waits, until ctx
// ends, for every generation to drain and close; then closes those left.
func (g *Gateway) closeGenerations(ctx context.Context) error {
	g.retire(g.gen.Load())
	done := make(chan struct{})
	go func() {
		g.retired.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		close(g.forceClose)
		<-done
	}
	g.fast.CloseIdleConnections()
	if g.forced.Load() {
		return errors.New("integrations still in use at the end of the shutdown timeout were closed")
	}
	return nil
}
