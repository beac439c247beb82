// Package redisregistry is the Redis cluster engine: the shared registry of
// connections, node-to-node requests, topic publications and node
// heartbeats, kept in one Redis server (or a primary behind a single
// address; Redis Cluster is not supported, since the scripts reach keys
// they compute).
//
// Every registry operation is one Lua script or one MULTI, so it is atomic:
// a reader never sees a connection in its user index without its record.
// Messages between nodes travel over Redis pub/sub, which has no
// persistence: a node that is disconnected from Redis misses what is
// published meanwhile, and the cluster's Node makes up for it by
// re-registering after an outage.
//
// Keys and channels are "<prefix>:<tag>:<name>", where tag is a fixed word
// without colons and name is the caller's string, unchanged. Since the tag
// ends at the first colon after the prefix, two different (tag, name) pairs
// never make the same key, whatever the names contain; and since the engine
// never uses key or channel patterns (KEYS, SCAN MATCH, PSUBSCRIBE), no name
// acts as one.
//
//	<p>:c:<id>       hash: p principal, n node, r record JSON
//	<p>:ct:<id>      set of the topics connection id subscribes to
//	<p>:u:<user>     sorted set of a principal's connection ids, scored by
//	                 ConnectedAt in Unix milliseconds
//	<p>:t:<topic>    set of the connection ids subscribed to topic
//	<p>:us:<user>    sorted set of the connection ids holding a reservation
//	                 of one of the principal's slots, scored by expiry in
//	                 Redis's clock, in Unix milliseconds
//	<p>:n:<node>     set of the connection ids node holds
//	<p>:all          sorted set of every connection id, all scored 0, so
//	                 that ListConnections pages through it in id order
//	<p>:hb           hash: node id → heartbeat counter
//	<p>:lost:<node>  marker that another node declared node lost
//	<p>:claim:<node> who cleans up after lost node, with a TTL
//
// Channels: <p>:q:<node> carries requests to node, <p>:r:<node> the
// replies to node's requests, <p>:t:<topic> topic publications.
package redisregistry

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/wsgate/wsgate/internal/cluster"
)

// Config says which Redis to use.
type Config struct {
	// URL is redis://[user:password@]host:port/db, or rediss:// for TLS.
	// Required.
	URL string
	// Password, when set, overrides the URL's password.
	Password string
	// Prefix starts every key and channel name, so that several gateways
	// can share one Redis. Default "wsgate".
	Prefix string
}

// DefaultPrefix is the key and channel prefix when Config.Prefix is empty.
const DefaultPrefix = "wsgate"

const (
	// ioTimeout bounds dialing and every read and write, so that no call
	// waits much longer than this for an unreachable Redis, whatever its
	// context.
	ioTimeout = 2 * time.Second
	// maxHandlers bounds the HandleRequest calls running at once; past it
	// the receive loop waits, and Redis buffers.
	maxHandlers = 256
	// pingInterval is how often an idle subscription connection is pinged,
	// so that a dead connection is noticed and replaced.
	pingInterval = 5 * time.Second
	// lostTTL is how long a node forgotten by ForgetNode is reported lost
	// to its own heartbeats.
	lostTTL = 24 * time.Hour
)

// Engine is one node's client of the Redis engine. It is safe for
// concurrent use. New connects lazily: an Engine made while Redis is down
// works once Redis is up, and an Engine survives Redis restarts, resubscribing
// its channels.
type Engine struct {
	client *redis.Client
	// dial opens a connection to Redis, as the client would by itself.
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	addr   string
	logger *slog.Logger
	keys   keys

	// ctx is canceled by Close; it bounds the goroutines the engine owns.
	ctx    context.Context
	cancel context.CancelFunc

	// nextID numbers requests; it starts at a random value so that a
	// restarted node does not take late replies to its predecessor's
	// requests for its own.
	nextID  atomic.Uint64
	pending [pendingShards]pendingShard
	// waiters recycles the channels that Request waits on.
	waiters sync.Pool

	// listening is set once by Listen.
	listening atomic.Pointer[listenState]
	closed    atomic.Bool
	// closing is closed by Close, waking waiting requests.
	closing chan struct{}

	// loops counts the goroutines Listen started; handlers counts running
	// HandleRequest calls, of which sem holds at most maxHandlers.
	loops    sync.WaitGroup
	handlers sync.WaitGroup
	sem      chan struct{}

	// reach tracks whether Redis accepts connections.
	reach reachability

	// mu serializes Listen and Close and guards the fields below, which
	// Listen sets once.
	mu      sync.Mutex
	ctl     *listener // requests and topics
	replies *listener // replies to this node's requests
	handler cluster.Handler
}

// listenState is what Request needs of Listen: the channel replies come on.
type listenState struct {
	node         string
	replyChannel string
	replies      *listener
}

var _ cluster.Engine = (*Engine)(nil)

// New returns an engine for the Redis cfg names. It checks the
// configuration but does not connect: Redis may be down when the gateway
// starts, and Ready reports when it is reachable. Errors never contain the
// password.
func New(cfg Config, logger *slog.Logger) (*Engine, error) {
	opt, err := parseURL(cfg.URL, cfg.Password)
	if err != nil {
		return nil, err
	}
	if cfg.Password != "" {
		opt.Password = cfg.Password
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "redisregistry")

	opt.DialTimeout = ioTimeout
	opt.ReadTimeout = ioTimeout
	opt.WriteTimeout = ioTimeout
	opt.PoolTimeout = ioTimeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = 1
	opt.DialerRetries = 1
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		logger:  logger,
		keys:    keys{prefix: prefix},
		ctx:     ctx,
		cancel:  cancel,
		closing: make(chan struct{}),
		sem:     make(chan struct{}, maxHandlers),
	}
	// Every connection the client opens is dialed through the engine, so
	// that it knows when Redis stops accepting connections.
	e.dial, e.addr = redis.NewDialer(opt), opt.Addr
	opt.Dialer = e.dialRedis
	e.client = redis.NewClient(opt)
	e.waiters.New = func() any { return make(chan []byte, 1) }
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	e.nextID.Store(binary.LittleEndian.Uint64(seed[:]))
	for i := range e.pending {
		e.pending[i].m = make(map[uint64]chan []byte)
	}
	logger.Info("redis engine configured", "addr", opt.Addr, "db", opt.DB, "prefix", prefix)
	return e, nil
}

// parseURL parses a Redis URL into client options. Its errors name what is
// wrong without repeating the URL, which may hold a password.
func parseURL(raw, password string) (*redis.Options, error) {
	if raw == "" {
		return nil, errors.New("redis: url is required (redis://[user:password@]host:port/db)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's messages quote the URL or parts of it, which may
		// be the password.
		return nil, errors.New("redis: url is not a valid URL (want redis://[user:password@]host:port/db)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("redis: url scheme is %q, want redis or rediss", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("redis: url has no host (want redis://[user:password@]host:port/db)")
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		msg := err.Error()
		// Belt and braces: go-redis's messages name the host, the
		// database or an option, but never should the password.
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		if password != "" {
			msg = strings.ReplaceAll(msg, password, "xxxxx")
		}
		return nil, fmt.Errorf("redis: url: %s", strings.TrimPrefix(msg, "redis: "))
	}
	return opt, nil
}

// Ready reports whether Redis answers.
func (e *Engine) Ready(ctx context.Context) error {
	if e.closed.Load() {
		return cluster.ErrClosed
	}
	if err := e.probe(ctx); err != nil {
		return err
	}
	if err := e.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	e.mu.Lock()
	ctl, replies := e.ctl, e.replies
	e.mu.Unlock()
	for _, l := range []*listener{ctl, replies} {
		if l != nil && !l.up.Load() {
			return fmt.Errorf("redis: the %s subscription is not up yet", l.name)
		}
	}
	return nil
}

// check returns the error a call must return before reaching Redis: while
// Redis refuses connections, a call fails at once unless it is its turn to
// probe Redis and Redis answers (see reach.go).
func (e *Engine) check(ctx context.Context) error {
	if e.closed.Load() {
		return cluster.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.reach.downErr(); err != nil {
		if e.reach.probeTurn(time.Now()) {
			return e.probe(ctx)
		}
		return fmt.Errorf("redis: unreachable: %w", err)
	}
	return nil
}

// Close implements cluster.Engine. It stops the receive loops, waits for
// them and for running HandleRequest calls, and closes the connections.
// Requests waiting for an answer return cluster.ErrClosed. Closing again
// does nothing and returns nil.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed.Swap(true) {
		e.mu.Unlock()
		return nil
	}
	listeners := []*listener{e.ctl, e.replies}
	e.mu.Unlock()
	// From here on Listen fails and no listener is added. e.mu is not
	// held while waiting, as a running HandleRequest may take it.
	close(e.closing)
	e.cancel()
	var errs []error
	for _, l := range listeners {
		if l != nil {
			if err := l.ps.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	e.loops.Wait()
	e.handlers.Wait()
	if err := e.client.Close(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("redis: close: %w", errors.Join(errs...))
	}
	return nil
}

// keys builds key and channel names; see the package comment.
type keys struct{ prefix string }

func (k keys) record(id string) string       { return k.prefix + ":c:" + id }
func (k keys) connTopics(id string) string   { return k.prefix + ":ct:" + id }
func (k keys) user(principal string) string  { return k.prefix + ":u:" + principal }
func (k keys) userSlots(p string) string     { return k.prefix + ":us:" + p }
func (k keys) topic(topic string) string     { return k.prefix + ":t:" + topic }
func (k keys) node(node string) string       { return k.prefix + ":n:" + node }
func (k keys) beats() string                 { return k.prefix + ":hb" }
func (k keys) all() string                   { return k.prefix + ":all" }
func (k keys) lost(node string) string       { return k.prefix + ":lost:" + node }
func (k keys) claim(node string) string      { return k.prefix + ":claim:" + node }
func (k keys) requests(node string) string   { return k.prefix + ":q:" + node }
func (k keys) replies(node string) string    { return k.prefix + ":r:" + node }
func (k keys) topicChannel(t string) string  { return k.prefix + ":t:" + t }
func (k keys) topicOf(channel string) string { return channel[len(k.prefix)+len(":t:"):] }

// SetLogger sends the Redis client library's own messages (a dial failing
// while Redis is down, a pool event) to logger at warn level instead of
// standard error. The library keeps one logger per process, so the
// command line calls this once, before any engine exists.
func SetLogger(logger *slog.Logger) {
	redis.SetLogger(libLogger{logger.With("component", "go-redis")})
}

type libLogger struct{ log *slog.Logger }

func (l libLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}
