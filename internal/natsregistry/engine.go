// Package natsregistry is the NATS cluster engine: the shared registry in
// JetStream key-value buckets, node-to-node requests and topic publications
// over core NATS, and node heartbeats and claims in a second bucket.
//
// Every name a caller supplies (connection id, principal, topic, node id)
// is base64url-encoded before it becomes a subject token or a key token, so
// that NATS separators and wildcards in names never act as syntax.
//
// The engine needs nats-server 2.11 or newer: per-key TTLs (claims, lost
// markers, expiring tombstones) rely on the buckets' limit marker TTL.
package natsregistry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/redact"
)

var _ cluster.Engine = (*Engine)(nil)

// Config says how to reach NATS. The zero value of an optional field means
// its default.
type Config struct {
	// URL lists the servers, nats://host:port, comma-separated. Required.
	URL string
	// Prefix starts every subject and bucket name the engine uses, so that
	// several gateways can share one NATS account. Letters, digits, "-" and
	// "_". Default "wsgate".
	Prefix string
	// CredentialsFile is a NATS credentials (.creds) file. Optional.
	CredentialsFile string
	// Token is a NATS authentication token. Optional; not together with
	// CredentialsFile.
	Token string
}

const (
	defaultPrefix = "wsgate"

	// reconnectWait is the pause between attempts to reach NATS, plus up
	// to reconnectJitter; the engine never gives up reconnecting. Both are
	// short: after an outage every node must be back, heartbeating, well
	// within node_timeout of the others, or they declare it lost (the
	// client's defaults, 2s plus up to 1s with TLS, would leave a node
	// silent for seconds). A refused attempt costs little.
	reconnectWait   = 100 * time.Millisecond
	reconnectJitter = 100 * time.Millisecond
	// drainTimeout bounds how long Close waits for subscriptions to drain.
	drainTimeout = 10 * time.Second
	// handlerLimit bounds the requests a node handles at once; beyond it the
	// subscription's dispatch waits for a handler to finish.
	handlerLimit = 256
	// markerTTL is how long tombstones of removed keys live. Removal is a
	// purge with this TTL, so that a bucket through which millions of
	// connections passed does not keep a tombstone for each.
	markerTTL = time.Minute
	// lostTTL is how long a node's lost marker lives after ForgetNode.
	lostTTL = 24 * time.Hour
)

var prefixRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func (c *Config) fill() {
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
}

// validate returns every problem with c. Its messages never quote the URL,
// which may carry a user's password or a token, nor the token.
func (c *Config) validate() error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("nats: url is required"))
	}
	for i, raw := range strings.Split(c.URL, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			if c.URL != "" {
				errs = append(errs, fmt.Errorf("nats: url: server %d is empty", i+1))
			}
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			// url.Parse's error quotes the URL; it may hold a secret.
			errs = append(errs, fmt.Errorf("nats: url: server %d is not a valid URL", i+1))
			continue
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			errs = append(errs, fmt.Errorf("nats: url: server %d: scheme must be nats, tls, ws or wss", i+1))
		}
		if u.Hostname() == "" {
			errs = append(errs, fmt.Errorf("nats: url: server %d has no host", i+1))
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				errs = append(errs, fmt.Errorf("nats: url: server %d: port must be 1 to 65535", i+1))
			}
		}
	}
	if !prefixRe.MatchString(c.Prefix) {
		errs = append(errs, errors.New("nats: prefix may hold only letters, digits, \"-\" and \"_\""))
	}
	if c.CredentialsFile != "" {
		if c.Token != "" {
			errs = append(errs, errors.New("nats: set either a token or a credentials file, not both"))
		}
		if _, err := os.Stat(c.CredentialsFile); err != nil {
			errs = append(errs, fmt.Errorf("nats: credentials file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// hosts returns the servers' host:port, for logs: never user info.
func (c *Config) hosts() []string {
	var out []string
	for _, raw := range strings.Split(c.URL, ",") {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil {
			out = append(out, u.Host)
		}
	}
	return out
}

// Engine is one node's client of a NATS cluster engine. It is safe for
// concurrent use. New connects in the background; Ready reports whether
// NATS is reachable. Close releases the connection and waits for the
// engine's handler goroutines.
type Engine struct {
	logger *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream

	regBucket   string
	nodesBucket string
	nodeSubj    string // "<prefix>.node."
	// nodeSubjects caches node id → subject; it holds one entry per node
	// id ever addressed.
	nodeSubjects sync.Map
	topicSubj    string // "<prefix>.topic."

	// epoch counts reconnections; buckets made in an older epoch are made
	// again, in case the server lost them.
	epoch atomic.Uint64
	// life ends when the connection to NATS drops.
	life connLife

	// bucketsMu serialises making the buckets; bkts is read without it.
	bucketsMu sync.Mutex
	bkts      atomic.Pointer[buckets]

	// isClosed mirrors closed for the hot paths, which read it without mu.
	isClosed atomic.Bool

	// mu guards the fields below.
	mu       sync.Mutex
	closed   bool
	nodeID   string
	handler  cluster.Handler
	nodeSub  *nats.Subscription
	topics   map[string]*topicSub
	handlers sync.WaitGroup // request handler goroutines; Add under mu

	sem       chan struct{} // bounds request handler goroutines
	connDone  chan struct{} // closed when the connection is closed
	closeOnce sync.Once
}

// buckets are the engine's key-value buckets as of one connection epoch.
type buckets struct {
	epoch uint64
	reg   jetstream.KeyValue
	// regStream is reg's stream, for wildcard last-message lookups.
	regStream jetstream.Stream
	nodes     jetstream.KeyValue
	// nodesStream is nodes' stream, for the same.
	nodesStream jetstream.Stream
}

// New returns an engine that connects to cfg.URL in the background. It
// fails only when cfg is invalid, never because NATS is unreachable: the
// engine keeps trying and works once NATS comes up. Its errors and logs
// never carry the token or URL credentials.
func New(cfg Config, logger *slog.Logger) (*Engine, error) {
	cfg.fill()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		logger:      logger.With("component", "natsregistry"),
		regBucket:   cfg.Prefix + "_registry",
		nodesBucket: cfg.Prefix + "_nodes",
		nodeSubj:    cfg.Prefix + ".node.",
		topicSubj:   cfg.Prefix + ".topic.",
		topics:      make(map[string]*topicSub),
		sem:         make(chan struct{}, handlerLimit),
		connDone:    make(chan struct{}),
	}
	opts := []nats.Option{
		nats.Name("wsgate"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(reconnectJitter, reconnectJitter),
		// No buffering while disconnected: a publication or request made
		// then fails at once instead of being sent late or lost silently.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DrainTimeout(drainTimeout),
		nats.ConnectHandler(func(nc *nats.Conn) {
			e.logger.Info("nats connected", "server", redact.URL(nc.ConnectedUrl()))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			e.connLost()
			if err != nil {
				e.logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			e.epoch.Add(1)
			e.logger.Info("nats reconnected", "server", redact.URL(nc.ConnectedUrl()))
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			e.logger.Debug("nats reconnect attempt failed", "err", err)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			e.logger.Warn("nats asynchronous error", "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(e.connDone) }),
	}
	switch {
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.CredentialsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	e.logger.Info("connecting to nats", "servers", cfg.hosts(), "prefix", cfg.Prefix)
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		// nats.go's connect errors name neither the token nor the URL's
		// user info; with RetryOnFailedConnect they are configuration
		// errors, not unreachable servers.
		return nil, fmt.Errorf("nats: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	e.nc, e.js = nc, js
	return e, nil
}

// errNotConnected is returned while the engine has no connection to NATS.
var errNotConnected = errors.New("nats: not connected")

// Ready reports whether the engine can serve: connected to NATS and its
// buckets in place. It makes the buckets if they are missing.
func (e *Engine) Ready(ctx context.Context) error {
	if !e.isClosed.Load() && !e.nc.IsConnected() {
		return errNotConnected
	}
	_, err := e.buckets(ctx)
	return err
}

// buckets returns the engine's buckets, making them once per connection
// epoch. It fails at once while NATS is unreachable.
func (e *Engine) buckets(ctx context.Context) (*buckets, error) {
	if e.isClosed.Load() {
		return nil, cluster.ErrClosed
	}
	epoch := e.epoch.Load()
	if b := e.bkts.Load(); b != nil && b.epoch == epoch {
		return b, nil
	}
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	e.bucketsMu.Lock()
	defer e.bucketsMu.Unlock()
	if b := e.bkts.Load(); b != nil && b.epoch == epoch {
		return b, nil
	}
	if !e.nc.IsConnected() {
		return nil, errNotConnected
	}
	if err := e.checkVersion(); err != nil {
		return nil, err
	}
	ctx, done := e.onConn(ctx)
	defer done()
	b, err := e.makeBuckets(ctx, epoch)
	if err != nil && dropped(ctx) {
		return nil, errNotConnected
	}
	return b, err
}

// makeBuckets makes or binds the buckets for epoch.
func (e *Engine) makeBuckets(ctx context.Context, epoch uint64) (*buckets, error) {
	reg, err := e.bucket(ctx, jetstream.KeyValueConfig{
		Bucket:         e.regBucket,
		Description:    "wsgate connection registry",
		History:        1,
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, err
	}
	regStream, err := e.js.Stream(ctx, "KV_"+e.regBucket)
	if err != nil {
		return nil, fmt.Errorf("nats: bucket %s: %w", e.regBucket, err)
	}
	nodes, err := e.bucket(ctx, jetstream.KeyValueConfig{
		Bucket:         e.nodesBucket,
		Description:    "wsgate node heartbeats",
		History:        1,
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, err
	}
	nodesStream, err := e.js.Stream(ctx, "KV_"+e.nodesBucket)
	if err != nil {
		return nil, fmt.Errorf("nats: bucket %s: %w", e.nodesBucket, err)
	}
	b := &buckets{epoch: epoch, reg: reg, regStream: regStream, nodes: nodes, nodesStream: nodesStream}
	e.bkts.Store(b)
	return b, nil
}

// bucket creates the bucket, or binds to it when it exists with another
// configuration (an operator may have raised its replicas): the engine
// never rewrites a bucket's configuration.
func (e *Engine) bucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := e.js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = e.js.KeyValue(ctx, cfg.Bucket)
		if err == nil {
			var st jetstream.KeyValueStatus
			st, err = kv.Status(ctx)
			if err == nil && st.(*jetstream.KeyValueBucketStatus).LimitMarkerTTL() == 0 {
				err = errors.New("it exists without a limit marker TTL, which per-key TTLs need")
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("nats: bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// check returns ErrClosed after Close, else ctx's error.
func (e *Engine) check(ctx context.Context) error {
	if e.isClosed.Load() {
		return cluster.ErrClosed
	}
	return ctx.Err()
}

// Close stops listening, lets the subscriptions drain, closes the
// connection and waits for the request handlers that are running. The
// node's registry records stay, as a killed process's would. Close is
// idempotent; every call returns once the first has finished.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.isClosed.Store(true)
		sub := e.nodeSub
		e.mu.Unlock()
		if sub != nil {
			// Requests sent from now on find no responder.
			_ = sub.Unsubscribe()
		}
		// closed is set under mu, so no handler starts after this.
		e.handlers.Wait()
		if err := e.nc.Drain(); err != nil {
			// Not connected: Drain has closed the connection.
			e.nc.Close()
		}
		t := time.NewTimer(drainTimeout + 5*time.Second)
		defer t.Stop()
		select {
		case <-e.connDone:
		case <-t.C:
			e.nc.Close()
			<-e.connDone
		}
	})
	return nil
}

// enc turns a caller's name into one subject or key token: base64url
// without padding, whose alphabet has no separator or wildcard. The empty
// name becomes "=", which no encoding produces.
func enc(s string) string {
	if s == "" {
		return "="
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// dec reverses enc.
func dec(tok string) (string, error) {
	if tok == "=" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	return string(b), err
}

// withDeadline gives ctx a deadline when it has none; nats.go needs one to
// bound waits on the server.
func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, 30*time.Second)
}
