// Package gateway is the composition root: it builds the edge, the routes,
// the integrations, the registry and the management API from a
// configuration, runs them, and shuts them down in order.
//
// The data path is edge (accept, decode) → gateway handler ($connect
// integration, registry record) → route selection → integration → edge
// (write). The push path is management API → registry (which node owns the
// connection) → hub → edge.
//
// What a configuration reload replaces (routes, integrations, authorizer,
// limits, …) is one generation (generation.go): each handshake, message and
// $disconnect holds the one it started with, and a replaced generation is
// closed once the last of them is done (reload.go).
//
// Shutdown order: stop accepting clients → close every socket with 1001 →
// deliver their $disconnect events and wait for in-flight integrations, up to
// the shutdown timeout → stop the management API → close the generations'
// integrations, broker connections and local functions → close the
// registry.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/asyncapi"
	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/execproxy"
	"github.com/wsgate/wsgate/internal/forwarded"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/inspect"
	"github.com/wsgate/wsgate/internal/integration"
	"github.com/wsgate/wsgate/internal/metrics"
	"github.com/wsgate/wsgate/internal/mgmt"
	"github.com/wsgate/wsgate/internal/model"
	"github.com/wsgate/wsgate/internal/route"
	"github.com/wsgate/wsgate/internal/throttle"
	"github.com/wsgate/wsgate/internal/tlsconfig"
	"github.com/wsgate/wsgate/internal/ui"
)

// Options are the process-level inputs of a Gateway besides its
// configuration.
type Options struct {
	Logger *slog.Logger
	// Getenv and ReadFile read secrets named by the configuration; nil means
	// os.Getenv and os.ReadFile.
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	// ReusePort sets SO_REUSEPORT on the client and management listeners,
	// so that several gateway processes (wsgate serve -workers N) share
	// the ports and the kernel spreads connections across them.
	ReusePort bool
	// CertPollInterval is how often the TLS certificate files are looked
	// at for changes; 0 means tlsconfig.DefaultPollInterval.
	CertPollInterval time.Duration
	// Engine, when set, is the cluster engine instead of the one the
	// configuration's registry section names; the gateway closes it. Tests
	// run several nodes in one process on a cluster.MemoryNetwork.
	Engine cluster.Engine
	// Load reads the configuration again for Reload (SIGHUP, POST
	// /reload): the same files, flags and template the gateway started
	// with. Nil: the gateway cannot reload.
	Load func() (*config.Config, error)
	// LogLevel, when set, is the level of Logger's handler, which a reload
	// sets to the configuration's log.level.
	LogLevel *slog.LevelVar
	// Stdout and Stderr are where an access log whose output is stdout or
	// stderr writes; nil means the process's.
	Stdout, Stderr io.Writer
	// Now, when set, is the clock of the message tails: the times of
	// their items and when they lapse. Nil means time.Now.
	Now func() time.Time
}

// Gateway is one wsgate process: client listener, management listener and
// everything between.
type Gateway struct {
	// cfg is the configuration the gateway started with, whose settings
	// that cannot change while it runs (the listeners, the stage, the
	// registry) it keeps; what a reload replaces is in gen.
	cfg    *config.Config
	opts   Options
	log    *slog.Logger
	nodeID string

	// fast is the HTTP/1.1 client of every generation's http and lambda
	// integrations and REQUEST authorizer (see clients); its idle
	// connections are closed once the last generation is.
	fast *integration.FastClient

	// gen is the current generation: routes, integrations, authorizer and
	// the other parts a reload replaces (see generation).
	gen atomic.Pointer[generation]
	// reloadMu serializes reloads, and reloads with Start and Shutdown.
	reloadMu sync.Mutex
	// started and stopped are guarded by reloadMu.
	started, stopped bool
	// retired tracks the goroutines that close replaced generations once
	// they drain; closing forceClose makes them close at once.
	retired    sync.WaitGroup
	forceClose chan struct{}
	// retiring counts the replaced generations not yet closed.
	retiring atomic.Int64
	// forced is set when Shutdown closed a generation still in use.
	forced atomic.Bool

	hub  *hub.Hub
	eng  cluster.Engine
	node *cluster.Node
	// inspectLog holds this node's recent authorizer decisions and
	// refused handshakes, and tails its message tails, for the
	// inspector's management calls.
	inspectLog *inspect.Log
	tails      *inspect.Tails
	// creds are the credentials every local function gets, which the
	// management API accepts while there are local functions.
	creds localCredentials
	// proxy is the execute-api proxy of the local functions, started with
	// the first generation that has local functions when there is a
	// management API, and closed by Shutdown.
	proxy *execproxy.Proxy

	edge *edge.Server
	mgmt *mgmt.Server
	// metrics is nil when management.metrics is off; its methods do
	// nothing then.
	metrics *metrics.Metrics
	// access is the access log, nil without one: Start opens the one the
	// configuration names, SwapAccessLog replaces it (a reload that changes
	// access_log does).
	access atomic.Pointer[accesslog.Logger]

	mgmtHTTP *http.Server
	clientLn net.Listener
	mgmtLn   net.Listener

	// clientTLS and mgmtTLS are the listeners' TLS; nil without. A reload
	// gives their Holders new settings (reloadTLS).
	clientTLS, mgmtTLS *tlsconfig.Listener
	// watchCtx ends, with stopWatch, the certificate file watchers, which
	// look at the files every certPoll; clientWatch and mgmtWatch end the
	// watcher of one listener, which a reload replaces with the new files'.
	// The watch fields are guarded by reloadMu after Start.
	watchCtx               context.Context
	stopWatch              context.CancelFunc
	clientWatch, mgmtWatch context.CancelFunc
	certPoll               time.Duration
	// acmeHTTP serves the http-01 challenge on acmeLn; both nil without
	// tls.acme.http_listen.
	acmeHTTP *http.Server
	acmeLn   net.Listener

	// proxies are the trusted proxies (trusted_proxies), which a reload
	// replaces.
	proxies atomic.Pointer[forwarded.Proxies]
	// throttle is the route throttling in force (nil: none), built by
	// newThrottle; a reload that changes the throttling settings replaces
	// it.
	throttle atomic.Pointer[throttle.Throttle]

	wg        sync.WaitGroup
	serveErr  chan error
	reusePort bool
	stopOnce  sync.Once
	stopErr   error
}

// Route is a built route: its key, its integration and whether the
// integration's response goes back to the client.
type Route struct {
	Key           string
	Integration   integration.Integration
	RouteResponse bool
	// Require maps authorizer-context keys to the values allowed.
	Require map[string][]string
	// Builtin is an action the gateway performs itself; Integration is nil
	// then.
	Builtin config.Builtin
	// Models validates the route's messages before anything else handles
	// them; nil when the route has no model.
	Models *model.Set
}

func requireRules(req map[string]config.OneOrMore) map[string][]string {
	if len(req) == 0 {
		return nil
	}
	out := make(map[string][]string, len(req))
	for k, v := range req {
		out[k] = v
	}
	return out
}

// New builds a Gateway from cfg without listening. It returns every problem
// it finds (errors.Join), each naming the configuration line when it has
// one; config.IsMissing tells apart those that are only a secret or a program
// the configuration names and this machine lacks. `wsgate validate`,
// `wsgate serve` and Reload share this path (buildGeneration).
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	fast := integration.NewFastClient()
	gen, errs := buildGeneration(cfg, opts, fast)
	clientTLS, mgmtTLS, tlsErrs := buildTLS(cfg, opts.Getenv, opts.Logger)
	errs = append(errs, tlsErrs...)
	eng := opts.Engine
	if eng == nil {
		var err error
		if eng, err = buildEngine(cfg, opts); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		if eng != nil {
			_ = eng.Close()
		}
		if gen != nil {
			gen.close()
		}
		return nil, errors.Join(errs...)
	}

	hb := hub.New()
	var m *metrics.Metrics
	if cfg.Management.MetricsEnabled() {
		m = metrics.New(gen.routes.Keys(), func() float64 { return float64(hb.Len()) })
	}
	g := &Gateway{
		cfg:        cfg,
		opts:       opts,
		log:        opts.Logger,
		fast:       fast,
		nodeID:     awsevent.NewID(),
		forceClose: make(chan struct{}),
		hub:        hb,
		eng:        eng,
		creds:      newLocalCredentials(),
		serveErr:   make(chan error, 3),
		reusePort:  opts.ReusePort,
		clientTLS:  clientTLS,
		mgmtTLS:    mgmtTLS,
		stopWatch:  func() {},
		certPoll:   opts.CertPollInterval,
		acmeHTTP:   acmeHTTP(cfg, clientTLS, opts.Logger),
	}
	g.inspectLog = inspect.NewLog(g.nodeID)
	g.tails = inspect.NewTails(opts.Now)
	g.tails.SetEnabled(cfg.Management.MessageTail)
	gen.auth.decisions = g.inspectLog
	g.gen.Store(gen)
	g.throttle.Store(newThrottle(cfg))
	g.proxies.Store(newProxies(cfg))
	nodeEng := eng
	if cfg.Management.MetricsEnabled() {
		g.metrics = m
		gen.auth.metrics = g.metrics
		nodeEng = &timedEngine{Engine: eng, m: g.metrics}
	}
	rc := cfg.Registry
	g.node = cluster.NewNode(cluster.Config{
		NodeID:            g.nodeID,
		HeartbeatInterval: rc.HeartbeatInterval,
		NodeTimeout:       rc.NodeTimeout,
		Timeout:           rc.Timeout,
		Lost:              g.lostConnection,
		Records:           g.records,
		Logger:            g.log,

		MaxSubscriptionsPerConnection: cfg.Limits.MaxSubscriptionsPerConnection,

		// g.edge is set below, before the node starts.
		Messages:   func() (uint64, uint64) { return g.edge.Messages() },
		Standalone: opts.Engine == nil && (rc.Type == config.RegistryMemory || rc.Type == ""),
		Log:        g.inspectLog,
		Tails:      g.tails,
	}, nodeEng, g.hub)
	var observer edge.Observer
	if g.metrics != nil {
		observer = g.metrics
	}
	var edgeTLS *tls.Config
	if clientTLS != nil {
		edgeTLS = clientTLS.Config()
	}
	g.edge = edge.New(edge.Config{
		Path:         cfg.UpgradePath(),
		TLS:          edgeTLS,
		BinaryBase64: cfg.BinaryFrames == config.BinaryBase64,
		Observer:     observer,
		Handshakes:   &handler{g: g},
		Proxies:      g.proxies.Load(),
		Limits:       edgeLimits(cfg.Limits),
	}, &handler{g: g}, g.hub, g.log)
	if cfg.Management.IsEnabled() {
		mc := cfg.Management
		mcfg := mgmt.Config{NodeID: g.nodeID, BearerTokens: gen.tokens, SigV4: g.mgmtKeys(gen),
			RateLimit:            mgmt.RateLimit{Rate: mc.RateLimit.Rate, Burst: mc.RateLimit.Burst},
			MaxBodyBytesInFlight: mc.MaxBodyBytesInFlight, Pprof: mc.Pprof,
			Reload: g.reloadCall, AsyncAPI: g.asyncAPI}
		if mc.UIEnabled() {
			mcfg.UI = ui.New()
		}
		// Without authentication (allowed on a loopback listener only),
		// calls are answered when addressed to the loopback or to the
		// names local functions call the API by.
		ownNames := execproxy.ExecuteAPIHosts(cfg.APIID, cfg.DomainName)
		mcfg.OpenHosts = func(host string) bool { return mgmt.LoopbackHost(host) || ownNames(host) }
		mcfg.Access = g.logManagementCall
		var conns mgmt.Connections = g.node
		if g.metrics != nil {
			mcfg.Metrics = g.metrics.Handler()
			mcfg.Observe = g.metrics.ManagementCall
			conns = pushCounter{Node: g.node, m: g.metrics}
		}
		g.mgmt = mgmt.New(mcfg, conns, g.log)
		// Every timeout is set: the management listener shares the
		// process's file descriptors with the clients, so a connection
		// that stalls or idles must not be held forever.
		g.mgmtHTTP = &http.Server{
			Handler:           g.mgmt,
			ReadHeaderTimeout: min(10*time.Second, mc.ReadTimeout),
			ReadTimeout:       mc.ReadTimeout,
			IdleTimeout:       mc.IdleTimeout,
			MaxHeaderBytes:    mgmt.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		}
	}
	return g, nil
}

// edgeLimits are the edge's limits of the configuration's.
func edgeLimits(l config.Limits) edge.Limits {
	return edge.Limits{
		MaxFrameBytes:         l.MaxFrameBytes,
		MaxMessageBytes:       l.MaxMessageBytes,
		IdleTimeout:           l.IdleTimeout,
		MaxConnectionDuration: l.MaxConnectionDuration,
		PingInterval:          l.PingInterval,
		OutboundQueueBytes:    l.OutboundQueueBytes,
		HandshakeTimeout:      l.HandshakeTimeout,
		MaxConnections:        l.MaxConnections,
		MaxInflightMessages:   l.MaxInflightMessages,
		DrainTimeout:          l.CloseDrainTimeout,

		InflightBudgetMessages: l.InflightBudgetMessages,
		InflightBudgetBytes:    l.InflightBudgetBytes,
	}
}

// mgmtKeys are the SigV4 keys the management API accepts with gen: the
// configured one, and while gen has local functions, theirs. A management
// API without auth gets no key at all: any key turns authentication on,
// and the functions' key is accepted besides management.auth, never in
// place of none.
func (g *Gateway) mgmtKeys(gen *generation) []mgmt.SigV4 {
	keys := []mgmt.SigV4{gen.sigv4}
	if len(gen.lambdas) > 0 && gen.cfg.Management.HasAuth() {
		// Any region: a function signs with its own AWS_REGION.
		keys = append(keys, mgmt.SigV4{AccessKeyID: g.creds.AccessKeyID, SecretAccessKey: g.creds.SecretAccessKey})
	}
	return keys
}

// slotMargin is what a reservation of a user slot outlives the longest
// handshake by.
const slotMargin = 5 * time.Second

// slotTTL is how long a handshake's reservation of a user slot lives: the
// $connect integration's timeout, the registry calls before and after it,
// and a margin. A handshake that holds one ends well within it, so only the
// reservations of a node that died mid-handshake expire.
func slotTTL(cfg *config.Config) time.Duration {
	ttl := 2*cfg.Registry.Timeout + slotMargin
	if rc, ok := cfg.Routes[route.Connect]; ok && rc.Builtin == "" {
		ttl += rc.Integration.Timeout
	}
	return ttl
}

// userSlotTTL is the lifetime of a handshake's reservation of a user slot.
func (g *Gateway) userSlotTTL() time.Duration { return time.Duration(g.gen.Load().slotTTL.Load()) }

// loadSigV4 reads the management API's SigV4 secret access key from the
// environment variable or the file the configuration names. Errors name the
// variable or the file, never the key.
func loadSigV4(cfg *config.Config, opts Options) (mgmt.SigV4, error) {
	sc := cfg.Management.Auth.SigV4
	var secret string
	switch {
	case sc.SecretAccessKeyEnv != "":
		secret = strings.TrimSpace(opts.Getenv(sc.SecretAccessKeyEnv))
		if secret == "" {
			return mgmt.SigV4{}, cfg.Locate(unsetEnv("management.auth.sigv4.secret_access_key_env", sc.SecretAccessKeyEnv))
		}
	case sc.SecretAccessKeyFile != "":
		data, err := opts.ReadFile(sc.SecretAccessKeyFile)
		if err != nil {
			// The error of os.ReadFile names the file.
			return mgmt.SigV4{}, cfg.Errorf("management.auth.sigv4.secret_access_key_file", "reading the secret access key: %w", err)
		}
		secret = strings.TrimSpace(string(data))
		if secret == "" {
			return mgmt.SigV4{}, cfg.Errorf("management.auth.sigv4.secret_access_key_file", "%s holds no secret access key", sc.SecretAccessKeyFile)
		}
		if strings.ContainsFunc(secret, unicode.IsSpace) {
			return mgmt.SigV4{}, cfg.Errorf("management.auth.sigv4.secret_access_key_file", "%s must hold only the secret access key, on one line", sc.SecretAccessKeyFile)
		}
	default:
		// Validate reports the missing secret source.
		return mgmt.SigV4{}, nil
	}
	return mgmt.SigV4{AccessKeyID: sc.AccessKeyID, SecretAccessKey: secret, Region: sc.Region}, nil
}

// unsetEnv is the problem of the environment variable name, named by the key
// at path, being unset or empty: config.IsMissing reports it.
func unsetEnv(path, name string) *config.Error {
	return &config.Error{Path: path, Msg: fmt.Sprintf("environment variable %s is unset or empty", name), Err: config.ErrMissing}
}

// buildIntegration makes the integration ic, configured at the key path,
// describes, calling HTTP backends through cl. A local Lambda program's runtime is appended to lambdas for the
// gateway to start and close; broker connections are made or shared
// through brk.
func buildIntegration(path string, ic config.Integration, cl *clients, opts Options, lambdas *[]*integration.LocalFunction, brk *brokers) (integration.Integration, error) {
	switch ic.Type {
	case config.IntegrationNATS:
		return brk.natsIntegration(path, ic, opts)
	case config.IntegrationRedis:
		return brk.redisIntegration(path, ic, opts)
	case config.IntegrationPostgres:
		return brk.postgresIntegration(path, ic, opts)
	case config.IntegrationSQS, config.IntegrationSNS, config.IntegrationEventBridge:
		return awsIntegration(path, ic, cl.std, opts)
	case config.IntegrationAMQP:
		return brk.amqpIntegration(path, ic, opts)
	case config.IntegrationLambda:
		inv, rt, err := buildInvoker(path+".lambda", ic.Lambda, cl.fast, opts)
		if err != nil {
			return nil, err
		}
		if rt != nil {
			*lambdas = append(*lambdas, rt)
		}
		return &integration.Lambda{Invoker: inv, Timeout: ic.Timeout}, nil
	case config.IntegrationHTTP:
		h := &integration.HTTP{URL: ic.URL, Timeout: ic.Timeout, Headers: ic.Headers, Fast: cl.fast}
		if ic.HTTP2 {
			h.Client = cl.h2
		}
		if ic.Payload == config.PayloadBody {
			h.Payload = integration.PayloadBody
		}
		return h, nil
	case config.IntegrationMock:
		m := &integration.Mock{StatusCode: ic.StatusCode, Echo: ic.Body == nil}
		if ic.Body != nil {
			m.Body = *ic.Body
		}
		return m, nil
	}
	return nil, fmt.Errorf("unsupported integration type %q", ic.Type)
}

// buildInvoker reaches the function l, configured at the key path,
// describes: a local program or Go package, whose function is returned for
// the caller to start and close, or the Invoke API.
func buildInvoker(path string, l config.Lambda, fast *integration.FastClient, opts Options) (integration.Invoker, *integration.LocalFunction, error) {
	if l.Command != "" || l.Build != "" {
		fc := integration.LocalFunctionConfig{Runtime: integration.RuntimeConfig{
			Command:         l.Command,
			Args:            l.Args,
			Env:             l.Env,
			Concurrency:     l.Concurrency,
			FunctionName:    l.Name,
			Region:          l.Region,
			FunctionTimeout: l.Timeout,
			MemorySize:      l.MemorySize,
			Logger:          opts.Logger,
		}}
		key := path + ".command"
		if l.Build != "" {
			key = path + ".build"
			b, err := integration.NewGoBuild(l.Build, "")
			if err != nil {
				return nil, nil, &config.Error{Path: key, Msg: err.Error(), Err: err}
			}
			fc.Build = b
		}
		fn, err := integration.NewLocalFunction(fc)
		if err != nil {
			return nil, nil, &config.Error{Path: key, Msg: err.Error(), Err: err}
		}
		return fn, fn, nil
	}
	api := &integration.InvokeAPI{Endpoint: l.Endpoint, FunctionName: l.FunctionName, Region: l.Region, Fast: fast}
	if l.AccessKeyID != "" {
		api.Credentials = aws.Credentials{AccessKeyID: l.AccessKeyID, SecretAccessKey: opts.Getenv(l.SecretAccessKeyEnv)}
		if api.Credentials.SecretAccessKey == "" {
			return nil, nil, unsetEnv(path+".secret_access_key_env", l.SecretAccessKeyEnv)
		}
		if l.SessionTokenEnv != "" {
			api.Credentials.SessionToken = opts.Getenv(l.SessionTokenEnv)
		}
	}
	return api, nil, nil
}

func closeLambdas(lambdas []*integration.LocalFunction) {
	for _, rt := range lambdas {
		_ = rt.Close()
	}
}

// Close releases what New acquired, for a gateway that was never started
// (as `wsgate validate` builds one). A started gateway is stopped with
// Shutdown instead.
func (g *Gateway) Close() {
	_ = g.SwapAccessLog(nil).Close()
	g.gen.Load().close()
	g.fast.CloseIdleConnections()
	_ = g.eng.Close()
}

// Start binds the listeners and starts serving. Use Addr and ManagementAddr
// to learn the bound addresses (useful with port 0).
func (g *Gateway) Start() error {
	// Opened here, not in New, so that `wsgate validate` creates no file.
	access, err := NewAccessLog(g.cfg, g.opts, g.metrics)
	if err != nil {
		return err
	}
	g.access.Store(access)
	started := false
	defer func() {
		if !started {
			_ = g.SwapAccessLog(nil).Close()
		}
	}()
	ln, err := g.listen(g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", g.cfg.Listen, err)
	}
	g.clientLn = ln
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if err := g.startGeneration(g.gen.Load()); err != nil {
		_ = ln.Close()
		g.closeProxy()
		return err
	}
	if g.mgmtHTTP != nil {
		mln, err := g.listen(g.cfg.Management.Listen)
		if err != nil {
			_ = ln.Close()
			g.gen.Load().close()
			g.closeProxy()
			return fmt.Errorf("listen %s (management): %w", g.cfg.Management.Listen, err)
		}
		if g.mgmtTLS != nil {
			mln = tls.NewListener(mln, g.mgmtTLS.Config())
		}
		g.mgmtLn = mln
	}
	closeListeners := func() {
		_ = ln.Close()
		if g.mgmtLn != nil {
			_ = g.mgmtLn.Close()
		}
		if g.acmeLn != nil {
			_ = g.acmeLn.Close()
		}
	}
	if err := g.startACMEHTTP(); err != nil {
		closeListeners()
		g.gen.Load().close()
		g.closeProxy()
		return err
	}
	if err := g.node.Start(); err != nil {
		closeListeners()
		g.gen.Load().close()
		g.closeProxy()
		return err
	}
	if err := g.edge.Start(); err != nil {
		closeListeners()
		g.node.Stop(context.Background())
		g.gen.Load().close()
		g.closeProxy()
		return err
	}
	g.started = true
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := g.edge.Serve(g.clientListener(ln)); err != nil {
			g.serveErr <- fmt.Errorf("client listener: %w", err)
		}
	}()
	if g.mgmtHTTP != nil {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := g.mgmtHTTP.Serve(g.mgmtLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.serveErr <- fmt.Errorf("management listener: %w", err)
			}
		}()
	}
	g.serveACMEHTTP()
	g.watchCertificates()
	g.log.Info("wsgate listening", "clients", g.ClientURL(), "management", g.ManagementURL())
	started = true
	return nil
}

// ClientURL returns the URL clients connect to once started: wss:// with
// TLS, ws:// without.
func (g *Gateway) ClientURL() string {
	scheme := "ws://"
	if g.clientTLS != nil {
		scheme = "wss://"
	}
	return scheme + g.Addr() + g.cfg.UpgradePath()
}

// ManagementURL returns the base URL of the management API once started:
// https:// with TLS, http:// without; "" when the API is off.
func (g *Gateway) ManagementURL() string {
	if g.mgmtLn == nil {
		return ""
	}
	if g.mgmtTLS != nil {
		return "https://" + g.ManagementAddr()
	}
	return "http://" + g.ManagementAddr()
}

func (g *Gateway) listen(addr string) (net.Listener, error) {
	if !g.reusePort {
		return net.Listen("tcp", addr)
	}
	lc := net.ListenConfig{Control: reusePort}
	return lc.Listen(context.Background(), "tcp", addr)
}

// Addr returns the client listener's address once started.
func (g *Gateway) Addr() string {
	if g.clientLn == nil {
		return ""
	}
	return g.clientLn.Addr().String()
}

// ManagementAddr returns the management listener's address once started, or
// "" when the management API is off.
func (g *Gateway) ManagementAddr() string {
	if g.mgmtLn == nil {
		return ""
	}
	return g.mgmtLn.Addr().String()
}

// Run starts the gateway and serves until ctx is done, then shuts down
// within the configured shutdown timeout. It returns nil after a clean
// shutdown.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.Start(); err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-g.serveErr:
	}
	sctx, cancel := context.WithTimeout(context.Background(), g.conf().ShutdownTimeout)
	defer cancel()
	return errors.Join(runErr, g.Shutdown(sctx))
}

// Shutdown stops the gateway in the documented order. It is idempotent.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopOnce.Do(func() {
		// No reload from here on: one in progress finishes first.
		g.reloadMu.Lock()
		g.stopped = true
		g.reloadMu.Unlock()
		g.log.Info("shutting down", "connections", g.edge.Len())
		var errs []error
		if err := g.edge.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		if g.mgmtHTTP != nil {
			if err := g.mgmtHTTP.Shutdown(ctx); err != nil {
				_ = g.mgmtHTTP.Close()
				errs = append(errs, fmt.Errorf("management listener: %w", err))
			}
		}
		if g.acmeHTTP != nil {
			if err := g.acmeHTTP.Shutdown(ctx); err != nil {
				_ = g.acmeHTTP.Close()
				errs = append(errs, fmt.Errorf("tls.acme.http_listen: %w", err))
			}
		}
		g.stopWatch()
		g.wg.Wait()
		// Every line is logged by now: the client and management
		// listeners have stopped, and the events of their calls are done.
		_ = g.SwapAccessLog(nil).Close()
		if g.clientTLS != nil && g.clientTLS.ACME != nil {
			g.clientTLS.ACME.Close()
		}
		g.node.Stop(ctx)
		if err := g.closeGenerations(ctx); err != nil {
			errs = append(errs, err)
		}
		g.closeProxy()
		if err := g.eng.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close registry: %w", err))
		}
		g.stopErr = errors.Join(errs...)
		g.log.Info("stopped")
	})
	return g.stopErr
}

// asyncAPI is the AsyncAPI document (JSON) of the configuration in force,
// for GET /asyncapi.json: written for each call, so that it follows
// reloads.
func (g *Gateway) asyncAPI() ([]byte, error) {
	return asyncapi.JSON(g.gen.Load().cfg, asyncapi.Options{ReadFile: g.opts.ReadFile})
}
