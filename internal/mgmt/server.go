package mgmt

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/inspect"
	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/ui"
)

// MaxPayloadBytes is PostToConnection's payload limit.
const MaxPayloadBytes = 131072

// Connections is the cluster as the management API reaches it: every
// operation finds the connection, user or topic wherever it lives.
// *cluster.Node implements it. Errors are cluster.ErrGone for a connection
// that no longer exists and cluster.ErrUnavailable when the cluster's
// engine cannot be reached.
type Connections interface {
	Send(ctx context.Context, id string, data []byte) error
	SendMany(ctx context.Context, msgs []cluster.Message) []error
	Info(ctx context.Context, id string) (hub.Info, error)
	Close(ctx context.Context, id string, code int, reason string) error
	SendToUser(ctx context.Context, principal string, data []byte) (int, error)
	UserInfo(ctx context.Context, principal string) ([]cluster.ConnInfo, error)
	Publish(ctx context.Context, topic string, data []byte) (int, error)
	TopicCount(ctx context.Context, topic string) (int, error)
	Subscribe(ctx context.Context, id, topic string) error
	Unsubscribe(ctx context.Context, id, topic string) error
	// ListConnections returns a page of the connections that match q and
	// the cursor of the next page, "" after the last; a cursor it did not
	// return is registry.ErrBadCursor.
	ListConnections(ctx context.Context, q registry.ListQuery) ([]cluster.Listed, string, error)
	// Nodes returns every node of the cluster, sorted by id, with what
	// each reported about itself; a node that did not answer in time is
	// listed unreachable.
	Nodes(ctx context.Context) ([]cluster.NodeStatus, error)
	// ListTopics returns a page of the cluster's topics that q selects,
	// with their subscribers counted over every node, and whether more
	// follow. A node that did not answer in time fails it with a
	// *cluster.UnreachableError.
	ListTopics(ctx context.Context, q cluster.TopicQuery) ([]cluster.TopicSubscribers, bool, error)
	// Ready reports whether calls that need the cluster can succeed, and
	// why not.
	Ready() (bool, string)
	Inspector
}

// Inspector is what the inspector's calls read from the cluster (see
// cluster.Node's methods of the same names): recent log entries of every
// node, and message tails on the node that holds the connection.
type Inspector interface {
	RecentLog(ctx context.Context, kind string, max int) []inspect.Entry
	StartTail(ctx context.Context, id string) error
	ReadTail(ctx context.Context, id string, after uint64) (inspect.TailPage, error)
	StopTail(ctx context.Context, id string) error
}

var _ Connections = (*cluster.Node)(nil)

// Config configures the management API.
type Config struct {
	// NodeID names this gateway process in the cluster; /readyz reports it.
	NodeID string
	// BearerTokens, when non-empty, are the accepted "Authorization: Bearer"
	// tokens.
	BearerTokens []string
	// SigV4 are the access keys whose AWS Signature Version 4 signatures
	// are accepted: a request signed by any of them passes. Entries without
	// an AccessKeyID are ignored. With both BearerTokens and SigV4, a request
	// passes with either; with neither, no authentication.
	SigV4 []SigV4
	// RateLimit bounds the calls this server accepts; beyond it they get 429
	// LimitExceededException. The zero value means no limit.
	RateLimit RateLimit
	// MaxBodyBytesInFlight bounds the request body bytes all calls together
	// may be reading or holding; a call whose body does not fit gets 429
	// LimitExceededException without it being read. Less than MaxBatchBytes
	// refuses the largest batches always. Zero means
	// DefaultMaxBodyBytesInFlight.
	MaxBodyBytesInFlight int64
	// Pprof serves net/http/pprof's profiles under /debug/pprof/, behind
	// the same rate limit and authentication as every other call. Off,
	// those paths answer 404 NotFoundException like any unknown path.
	Pprof bool
	// Metrics, when set, is served under GET /metrics, behind the same rate
	// limit and authentication as every other call.
	Metrics http.Handler
	// Reload, when set, is served under POST /reload, behind the same rate
	// limit and authentication as every other call: it re-reads and
	// applies the gateway's configuration. An error that has a
	// Problems() []string method is a refused configuration, answered 400
	// with the problems; any other error is answered 500.
	Reload func(ctx context.Context) error
	// AsyncAPI, when set, returns the AsyncAPI document (JSON) of the
	// configuration in force, served under GET /asyncapi.json behind the
	// same rate limit and authentication as every other call. Its error is
	// answered 500 and logged.
	AsyncAPI func() ([]byte, error)
	// UI, when set, is the inspector web UI, served under GET /ui/ (and
	// its assets under /ui/) without authentication, since the assets hold
	// no data; GET /ui redirects to /ui/. The rate limit applies. Unset,
	// those paths answer 404 NotFoundException like any unknown path.
	UI *ui.Handler
	// OpenHosts, when set, names the hosts a management API without
	// authentication answers: a call whose Host header (lower-cased,
	// without its port or a trailing dot) it refuses gets 403
	// ForbiddenException. A web page whose own name its owner rebinds to
	// this address (DNS rebinding) is same-origin with the API to the
	// browser and could read every answer; its calls name its host. With
	// authentication it is not consulted. LoopbackHost suits a listener on
	// a loopback address.
	OpenHosts func(host string) bool
	// Observe, when set, is told of every call once it is answered: its
	// operation (the AWS name, such as PostToConnection, or Health, Ready,
	// Metrics, Pprof, Unknown) and status.
	Observe func(operation string, status int)
	// Access, when set, is told of every call once it is answered, for
	// access logs. It is called on the call's goroutine and must not block.
	Access func(*Call)
}

// RateLimit is a token bucket: Rate calls per second, Burst at once.
type RateLimit struct {
	Rate  float64
	Burst int
}

// Server is the management API's HTTP handler.
type Server struct {
	cfg   Config
	conns Connections
	log   *slog.Logger
	// access is the authentication and rate limit in force, which SetAccess
	// replaces.
	access atomic.Pointer[access]
	bodies budget
	// unverified bounds the part of bodies held by SigV4 calls whose
	// signature can only be checked once their body is read (no
	// X-Amz-Content-Sha256): unverifiedShare of it, at least one @batch.
	unverified budget
	// mux routes requests as they arrive; unstaged routes them once a stage
	// prefix is stripped. Both hold the same API patterns without a stage.
	mux      *http.ServeMux
	unstaged *http.ServeMux
	// uiPaths are the paths of the UI's assets (and /ui), which are
	// served without authentication.
	uiPaths map[string]bool
}

var _ http.Handler = (*Server)(nil)

// New returns the management API for conns.
//
// Every call is accepted with or without a stage prefix (/prod/@topics/a/b
// and /@topics/a/b). Patterns like "/{stage}/@batch" and "/@connections/{id}"
// would both match /@connections/@batch, which ServeMux refuses as a
// conflict, so a path that matches no unprefixed pattern has its first
// segment stripped and is routed again; where both readings are possible the
// unprefixed one wins.
func New(cfg Config, conns Connections, logger *slog.Logger) *Server {
	s := &Server{cfg: cfg, conns: conns, log: logger.With("component", "mgmt"),
		mux: http.NewServeMux(), unstaged: http.NewServeMux()}
	notFound := s.handle(func(http.ResponseWriter, *http.Request) error { return ErrNotFound })
	s.SetAccess(cfg.BearerTokens, cfg.SigV4, cfg.RateLimit)
	s.bodies.free = cfg.MaxBodyBytesInFlight
	if s.bodies.free <= 0 {
		s.bodies.free = DefaultMaxBodyBytesInFlight
	}
	s.unverified.free = max(s.bodies.free/unverifiedShare, MaxBatchBytes)
	for _, mux := range []*http.ServeMux{s.mux, s.unstaged} {
		mux.Handle("POST /@connections/{id}", s.handle(s.postToConnection))
		mux.Handle("GET /@connections", s.handle(s.listConnections))
		mux.Handle("GET /@connections/{id}", s.handle(s.getConnection))
		mux.Handle("DELETE /@connections/{id}", s.handle(s.deleteConnection))
		mux.Handle("PUT /@connections/{id}/topics/{topic...}", s.handle(s.subscribe))
		mux.Handle("DELETE /@connections/{id}/topics/{topic...}", s.handle(s.unsubscribe))
		mux.Handle("POST /@users/{principalId}", s.handle(s.postToUser))
		mux.Handle("GET /@users/{principalId}", s.handle(s.getUser))
		mux.Handle("POST /@topics/{topic...}", s.handle(s.publish))
		mux.Handle("GET /@topics/{topic...}", s.handle(s.getTopic))
		mux.Handle("POST /@batch", s.handle(s.batch))
		mux.Handle("GET /@nodes", s.handle(s.listNodes))
		mux.Handle("GET /@topics", s.handle(s.listTopics))
		mux.Handle("GET /@log", s.handle(s.getLog))
		mux.Handle("PUT /@connections/{id}/tail", s.handle(s.startTail))
		mux.Handle("GET /@connections/{id}/tail", s.handle(s.getTail))
		mux.Handle("DELETE /@connections/{id}/tail", s.handle(s.stopTail))
		// Without these, ServeMux would redirect /@topics to /@topics/,
		// which the topic patterns match, and drop the stage.
		mux.Handle("/@topics", notFound)
		mux.Handle("/@connections/{id}/topics", notFound)
		mux.Handle("/", notFound)
	}
	s.mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	s.mux.Handle("GET /readyz", http.HandlerFunc(s.readyz))
	if cfg.Pprof {
		// The paths net/http/pprof registers on http.DefaultServeMux
		// (which nothing in wsgate serves). They are more specific than the
		// stage pattern below, so /debug is never taken for a stage.
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Reload != nil {
		s.mux.Handle("POST /reload", s.handle(s.reload))
	}
	if cfg.AsyncAPI != nil {
		s.mux.Handle("GET /asyncapi.json", s.handle(s.asyncAPI))
	}
	if cfg.UI != nil {
		s.serveUI(cfg.UI)
	}
	s.mux.Handle("/{stage}/{rest...}", http.HandlerFunc(s.stripStage))
	s.mux.Handle("/{stage}", notFound)
	return s
}

// access is what a call must pass before it is routed.
type access struct {
	tokens [][32]byte
	// keys are the SigV4 keys that are set.
	keys keyring
	rate RateLimit
	// limiter is nil when there is no rate limit.
	limiter *rate.Limiter
}

// SetAccess replaces the accepted bearer tokens, SigV4 keys and the rate
// limit (see Config) for the calls that arrive afterwards. An unchanged
// rate limit keeps its bucket. It is safe to call while serving.
func (s *Server) SetAccess(tokens []string, keys []SigV4, limit RateLimit) {
	a := &access{rate: limit}
	for _, t := range tokens {
		a.tokens = append(a.tokens, sha256.Sum256([]byte(t)))
	}
	for _, k := range keys {
		if k.enabled() {
			a.keys = append(a.keys, k)
		}
	}
	if old := s.access.Load(); old != nil && old.rate == limit {
		a.limiter = old.limiter
	} else if limit.Rate > 0 {
		a.limiter = rate.NewLimiter(rate.Limit(limit.Rate), max(limit.Burst, 1))
	}
	s.access.Store(a)
}

// reload answers POST /reload: 200 {"message": "reloaded"} once the
// configuration is applied; 400 with the problems of a refused one.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Reload(r.Context()); err != nil {
		var p interface{ Problems() []string }
		if !errors.As(err, &p) {
			return err
		}
		body, _ := json.Marshal(struct {
			Message string   `json:"message"`
			Errors  []string `json:"errors"`
		}{"configuration refused; the running configuration is unchanged", p.Problems()})
		w.Header().Set("Content-Type", "application/json")
		w.Header()["X-Amzn-ErrorType"] = []string{"BadRequestException"}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(body)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"message":"reloaded"}`)
	return nil
}

// asyncAPI answers GET /asyncapi.json with the API's AsyncAPI document.
func (s *Server) asyncAPI(w http.ResponseWriter, _ *http.Request) error {
	doc, err := s.cfg.AsyncAPI()
	if err != nil {
		return fmt.Errorf("writing the AsyncAPI document: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
	return nil
}

// readyz answers 200 while the node reaches the cluster's engine and 503
// with the reason while it does not, for load balancers and orchestrators.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, why := s.conns.Ready()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		body, _ := json.Marshal(struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		}{"unavailable", why})
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(body)
		return
	}
	body, _ := json.Marshal(struct {
		Status string `json:"status"`
		NodeID string `json:"nodeId,omitempty"`
	}{"ready", s.cfg.NodeID})
	_, _ = w.Write(body)
}

// ServeHTTP implements http.Handler. Apart from GET /healthz and /readyz, a call must
// pass the rate limit and then authentication before it is routed. A path
// that is not canonical is answered 404, never redirected.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := awsevent.NewID()
	w.Header()["x-amzn-RequestId"] = []string{requestID}
	c := &call{}
	if s.cfg.Observe != nil || s.cfg.Access != nil {
		start := time.Now()
		op := s.operation(r)
		sw := &statusWriter{ResponseWriter: w}
		w = sw
		defer func() { s.observe(r, c, op, requestID, sw.status(), start) }()
	}
	r = withCall(r, c)
	defer func() { s.bodies.give(c.reserved) }()
	switch {
	case r.URL.Path == "/healthz" || r.URL.Path == "/readyz":
	case s.isUI(r):
		if a := s.access.Load(); a.limiter != nil && !a.limiter.Allow() {
			s.fail(w, r, ErrLimitExceeded)
			return
		}
	default:
		if crossOrigin.Check(r) != nil {
			s.fail(w, r, errCrossOrigin)
			return
		}
		if err := s.admit(w, r); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if !canonicalPath(r.URL.EscapedPath()) {
		s.fail(w, r, errNonCanonicalPath)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// crossOrigin refuses the unsafe calls (POST, PUT, DELETE) a browser makes
// for a page of another origin, by their Sec-Fetch-Site or Origin header:
// without it, any page the operator visits could publish, push or
// disconnect through a management API that has no authentication (the
// default on a loopback address) with a "simple" request that no CORS
// preflight stops. Clients that are not browsers send neither header and
// pass, as do the inspector's own, same-origin, calls.
var crossOrigin = http.NewCrossOriginProtection()

// canonicalPath reports whether p, an escaped URL path, starts with "/" and
// has no empty, "." or ".." segment before its last (a trailing "/" is
// allowed). ServeMux redirects any other path to a cleaned form, escaping
// it again on the way, so that a connection id's "%3D" would come back as
// "%253D" and name a connection that does not exist; and cleaning would
// silently turn topic "a//b" into "a/b". Such paths are answered 404
// instead.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if c != "/" && strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c == p
}

// serveUI routes GET /ui to /ui/ and each of h's assets at its own path
// under /ui/. Only those exact paths are the UI's: any other path under
// /ui/ is routed as before, so that a stage named "ui" keeps its calls.
func (s *Server) serveUI(h *ui.Handler) {
	s.uiPaths = map[string]bool{"/ui": true}
	s.mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	assets := http.StripPrefix("/ui/", h)
	for _, p := range h.Paths() {
		s.uiPaths["/ui/"+p] = true
		pattern := "GET /ui/" + p
		if p == "" {
			pattern += "{$}"
		}
		s.mux.Handle(pattern, assets)
	}
}

// isUI reports whether r asks for the UI's page or one of its assets.
func (s *Server) isUI(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && s.uiPaths[r.URL.Path]
}

// admit applies the rate limit, then authentication.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) error {
	a := s.access.Load()
	if a.limiter != nil && !a.limiter.Allow() {
		return ErrLimitExceeded
	}
	return s.authenticate(w, r, a)
}

// stripStage routes r again without its first path segment.
func (s *Server) stripStage(w http.ResponseWriter, r *http.Request) {
	escaped := r.URL.EscapedPath()
	rest := escaped[strings.IndexByte(escaped[1:], '/')+1:]
	path, err := url.PathUnescape(rest)
	if err != nil {
		s.fail(w, r, ErrNotFound)
		return
	}
	u := *r.URL
	u.Path, u.RawPath = path, rest
	r2 := r.WithContext(r.Context())
	r2.URL = &u
	s.unstaged.ServeHTTP(w, r2)
}

// handle adapts a handler that returns an error to an http.Handler.
func (s *Server) handle(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// fail writes err as the response: an *Error as the AWS error response,
// anything else as a logged 500. When the call has a body that was not
// read, the connection is closed after the response, which then goes out
// at once instead of after net/http has drained the body (which a client
// can send as slowly as it likes).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if e == nil {
		s.log.Error("management call failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = errInternal
	}
	if r.ContentLength != 0 && !callOf(r).read {
		w.Header().Set("Connection", "close")
	}
	writeError(w, e)
}

func writeError(w http.ResponseWriter, e *Error) {
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{e.Message})
	w.Header().Set("Content-Type", "application/json")
	w.Header()["X-Amzn-ErrorType"] = []string{e.Type}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// authenticate accepts a request that carries a configured bearer token
// (compared in constant time) or a valid SigV4 signature. No body is read
// for a request that fails a check that does not need it. A signature
// covers the body's SHA-256: when the request declares it in
// X-Amz-Content-Sha256, the signature is checked over that first and the
// body, read afterwards, must match it; otherwise the body is read (up to
// the call's limit, bodyLimit) and hashed. Either way the handler gets the
// body from the call.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, a *access) error {
	sigv4 := len(a.keys) > 0
	if len(a.tokens) == 0 && !sigv4 {
		if s.cfg.OpenHosts != nil && !s.cfg.OpenHosts(requestHost(r)) {
			return errForeignHost
		}
		return nil
	}
	auth := r.Header.Get("Authorization")
	if sigv4 && strings.HasPrefix(auth, sigv4Algorithm+" ") {
		key, az, at, err := a.keys.precheck(r)
		if err != nil {
			return err
		}
		declared := r.Header.Get("X-Amz-Content-Sha256")
		if declared != "" {
			if err := key.checkSignature(r, az, at, r.ContentLength, declared); err != nil {
				return err
			}
		}
		limit := bodyLimit(r)
		if declared == "" {
			// Read before its signature is checked: it is reserved from
			// the share of the budget such bodies may hold too, until
			// the check, so that bodies signed by anyone who knows a key
			// id (no secret) cannot hold the whole budget.
			n := r.ContentLength
			if n < 0 {
				n = limit
			}
			if n > 0 && n <= limit {
				if !s.unverified.take(n) {
					return errBodyBudget
				}
				defer s.unverified.give(n)
			}
		}
		body, err := s.readBody(w, r, limit)
		if err != nil {
			return err
		}
		if declared != "" {
			if sha256Hex(body) != declared {
				return sigv4Error("The request body does not match its X-Amz-Content-Sha256 header.")
			}
		} else if err := key.checkSignature(r, az, at, int64(len(body)), sha256Hex(body)); err != nil {
			return err
		}
		callOf(r).caller = "sigv4:" + key.AccessKeyID
		return nil
	}
	const prefix = "bearer "
	if len(a.tokens) == 0 || len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		if auth == "" && sigv4 {
			return sigv4Error("Missing Authentication Token")
		}
		return ErrForbidden
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
	ok, index := 0, 0
	for i := range a.tokens {
		match := subtle.ConstantTimeCompare(sum[:], a.tokens[i][:])
		ok |= match
		index = subtle.ConstantTimeSelect(match, i, index)
	}
	if ok != 1 {
		return ErrForbidden
	}
	callOf(r).caller = bearerCaller(index)
	return nil
}

func (s *Server) postToConnection(w http.ResponseWriter, r *http.Request) error {
	body, err := s.payload(w, r)
	if err != nil {
		return err
	}
	if err := s.conns.Send(r.Context(), r.PathValue("id"), body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// isoTime formats t as GetConnection does: ISO 8601 in UTC with milliseconds.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (s *Server) getConnection(w http.ResponseWriter, r *http.Request) error {
	info, err := s.conns.Info(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	type identity struct {
		SourceIP  string `json:"sourceIp"`
		UserAgent string `json:"userAgent"`
	}
	body, err := json.Marshal(struct {
		ConnectedAt  string   `json:"connectedAt"`
		Identity     identity `json:"identity"`
		LastActiveAt string   `json:"lastActiveAt"`
	}{isoTime(info.ConnectedAt), identity{info.SourceIP, info.UserAgent}, isoTime(info.LastActiveAt)})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}

func (s *Server) deleteConnection(w http.ResponseWriter, r *http.Request) error {
	code, reason, err := closeParams(r.URL.Query())
	if err != nil {
		return err
	}
	if err := s.conns.Close(r.Context(), r.PathValue("id"), code, reason); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// requestHost is r's Host header lower-cased, without its port and a
// trailing dot.
func requestHost(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
}

// LoopbackHost reports whether host (as OpenHosts gets it) is an IP
// address, localhost or a name under .localhost, which browsers resolve to
// the loopback address themselves: names no one else can rebind.
func LoopbackHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}
