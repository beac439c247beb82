// Package metrics holds the gateway's Prometheus metrics: AWS's WebSocket
// API metric set (ConnectCount, MessageCount, IntegrationError, ClientError,
// ExecutionError, IntegrationLatency) by route, and the gateway's own.
//
// Every gateway has its own registry, so that several gateways in one
// process never share or collide. Label values are bounded: route labels
// take only configured route keys (any other folds into $default), status
// and close-code labels take a small fixed set, and no connection or user id
// is ever a label. The methods are safe for concurrent use, allocate nothing
// on the message path, and do nothing on a nil *Metrics.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultRoute is the route label every key that is not configured folds
// into.
const DefaultRoute = "$default"

// routeSet is the per-route counters of one route key, resolved once.
type routeSet struct {
	messages          prometheus.Counter
	integrationErrors prometheus.Counter
	clientErrors      prometheus.Counter
	executionErrors   prometheus.Counter
	latency           prometheus.Observer
	throttled         prometheus.Counter
	invalid           prometheus.Counter
}

// Metrics is one gateway's metrics and their registry.
type Metrics struct {
	reg *prometheus.Registry
	// routes maps each route key configured so far to its counters;
	// AddRoutes replaces the map with a larger one.
	routes   atomic.Pointer[map[string]*routeSet]
	routesMu sync.Mutex // serializes AddRoutes
	routeVec routeVecs

	reloads    *prometheus.CounterVec
	reloadedAt prometheus.Gauge

	connects     prometheus.Counter
	sent         prometheus.Counter
	handshakes   *prometheus.CounterVec
	disconnects  *prometheus.CounterVec
	slowConsumer prometheus.Counter
	authz        *prometheus.CounterVec
	authzLatency prometheus.Histogram
	authzCache   *prometheus.CounterVec
	mgmtCalls    *prometheus.CounterVec
	pushes       *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
	engine       *prometheus.HistogramVec
	nodes        prometheus.Gauge
	accessDrops  prometheus.Counter
	// connectThrottled counts the handshakes refused by route throttling,
	// whether or not there is a $connect route; the routes' own are in
	// routes.
	connectThrottled prometheus.Counter
}

// New returns the metrics of a gateway whose configured route keys are
// routeKeys. open reports the number of open connections at scrape time.
func New(routeKeys []string, open func() float64) *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	route := []string{"route"}
	messages := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_messages_received_total",
		Help: "Messages received from clients, by route (AWS MessageCount, inbound part)."}, route)
	integrationErrors := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_integration_errors_total",
		Help: "Integration calls answered with a 4XX or 5XX status, by route (AWS IntegrationError)."}, route)
	clientErrors := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_client_errors_total",
		Help: "Requests answered with a 4XX by the gateway before any integration ran, by route (AWS ClientError)."}, route)
	executionErrors := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_execution_errors_total",
		Help: "Integration calls that failed without an answer (timeout, unreachable backend, invalid response), by route (AWS ExecutionError)."}, route)
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wsgate_integration_latency_seconds",
		Help:    "Time from sending a request to the integration to receiving its answer, by route; not observed for mock integrations (AWS IntegrationLatency).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 29}}, route)
	throttled := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_throttled_total",
		Help: "Requests refused by route throttling on this node, by route: handshakes answered 429 (route=\"$connect\") and messages answered Too Many Requests."}, route)
	invalid := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_validation_failures_total",
		Help: "Messages refused by their route's request model (the Bad request body frame), by route; each is also a client error."}, route)
	for _, c := range []prometheus.Collector{messages, integrationErrors, clientErrors, executionErrors, latency, throttled, invalid} {
		f(c)
	}
	m.routeVec = routeVecs{messages, integrationErrors, clientErrors, executionErrors, throttled, invalid, latency}
	m.connectThrottled = throttled.WithLabelValues("$connect")
	m.routes.Store(&map[string]*routeSet{})
	m.AddRoutes(append([]string{DefaultRoute}, routeKeys...))
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_config_reloads_total",
		Help: "Configuration reloads by outcome: applied, refused (invalid, or a change that needs a restart) or failed (the file could not be read, a local function did not start)."}, []string{"outcome"})
	m.reloadedAt = prometheus.NewGauge(prometheus.GaugeOpts{Name: "wsgate_config_last_reload_success_timestamp_seconds",
		Help: "When the configuration in force was loaded (at start or by the last applied reload), in Unix seconds."})
	m.reloadedAt.SetToCurrentTime()
	m.connects = prometheus.NewCounter(prometheus.CounterOpts{Name: "wsgate_connect_count_total",
		Help: "Connection requests that passed authorization and reached the $connect route (AWS ConnectCount)."})
	m.sent = prometheus.NewCounter(prometheus.CounterOpts{Name: "wsgate_messages_sent_total",
		Help: "Messages queued to clients: replies, errors and pushes (AWS MessageCount, outbound part)."})
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_handshakes_total",
		Help: "WebSocket handshakes by the HTTP status answered (101 for an accepted one)."}, []string{"status"})
	m.disconnects = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_disconnects_total",
		Help: "Closed connections by the close code of their $disconnect event."}, []string{"code"})
	m.slowConsumer = prometheus.NewCounter(prometheus.CounterOpts{Name: "wsgate_slow_consumer_closes_total",
		Help: "Connections closed (1008) because their outbound queue exceeded limits.outbound_queue_bytes."})
	m.authz = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_authorizer_decisions_total",
		Help: "Authorizer decisions at $connect: allow, deny (a 4XX) or error (the authorizer failed)."}, []string{"decision"})
	m.authzLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wsgate_authorizer_latency_seconds",
		Help:    "Time the authorizer took for decisions not answered from the cache.",
		Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}})
	m.authzCache = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_authorizer_cache_total",
		Help: "Authorizer decision cache lookups by result (hit or miss)."}, []string{"result"})
	m.mgmtCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_management_calls_total",
		Help: "Management API calls by operation and HTTP status."}, []string{"operation", "status"})
	m.pushes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_pushes_total",
		Help: "Messages posted through the management API, by target (connection, user or topic)."}, []string{"target"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_push_deliveries_total",
		Help: "Connections that posted messages were delivered to, cluster-wide, by target (connection, user or topic)."}, []string{"target"})
	m.engine = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wsgate_cluster_engine_call_duration_seconds",
		Help:    "Latency of calls to the cluster engine (registry), by operation and result (ok or error).",
		Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"operation", "result"})
	m.nodes = prometheus.NewGauge(prometheus.GaugeOpts{Name: "wsgate_cluster_nodes",
		Help: "Gateway nodes with a heartbeat record, as this node last saw them."})
	m.accessDrops = prometheus.NewCounter(prometheus.CounterOpts{Name: "wsgate_access_log_dropped_total",
		Help: "Access log lines dropped because the access log's buffer was full or writing them failed."})
	open1 := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wsgate_open_connections",
		Help: "WebSocket connections this node holds open."}, open)
	for _, c := range []prometheus.Collector{m.connects, m.sent, m.handshakes, m.disconnects, m.slowConsumer,
		m.authz, m.authzLatency, m.authzCache, m.mgmtCalls, m.pushes, m.deliveries, m.engine, m.nodes, m.accessDrops, open1,
		m.reloads, m.reloadedAt,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	for _, d := range []string{"allow", "deny", "error"} {
		m.authz.WithLabelValues(d)
	}
	for _, r := range []string{"hit", "miss"} {
		m.authzCache.WithLabelValues(r)
	}
	for _, t := range []string{PushConnection, PushUser, PushTopic} {
		m.pushes.WithLabelValues(t)
		m.deliveries.WithLabelValues(t)
	}
	for _, o := range []string{ReloadApplied, ReloadRefused, ReloadFailed} {
		m.reloads.WithLabelValues(o)
	}
	return m
}

// routeVecs are the metrics with a route label.
type routeVecs struct {
	messages, integrationErrors, clientErrors, executionErrors, throttled, invalid *prometheus.CounterVec
	latency                                                                        *prometheus.HistogramVec
}

// AddRoutes gives the route keys not seen before their own route label,
// for a configuration reloaded with new routes. The keys of routes a
// reload removed keep their series: the label values stay bounded by the
// keys ever configured.
func (m *Metrics) AddRoutes(keys []string) {
	if m == nil {
		return
	}
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	old := *m.routes.Load()
	next := make(map[string]*routeSet, len(old)+len(keys))
	for k, r := range old {
		next[k] = r
	}
	v := m.routeVec
	for _, k := range keys {
		if next[k] == nil {
			next[k] = &routeSet{
				messages:          v.messages.WithLabelValues(k),
				integrationErrors: v.integrationErrors.WithLabelValues(k),
				clientErrors:      v.clientErrors.WithLabelValues(k),
				executionErrors:   v.executionErrors.WithLabelValues(k),
				latency:           v.latency.WithLabelValues(k),
				throttled:         v.throttled.WithLabelValues(k),
				invalid:           v.invalid.WithLabelValues(k),
			}
		}
	}
	m.routes.Store(&next)
}

// Reload outcomes, the values of the outcome label.
const (
	ReloadApplied = "applied"
	ReloadRefused = "refused"
	ReloadFailed  = "failed"
)

// Reload counts a configuration reload by outcome; an applied one sets
// the load time.
func (m *Metrics) Reload(outcome string) {
	if m == nil {
		return
	}
	m.reloads.WithLabelValues(outcome).Inc()
	if outcome == ReloadApplied {
		m.reloadedAt.SetToCurrentTime()
	}
}

// Push targets, the values of the target label.
const (
	PushConnection = "connection"
	PushUser       = "user"
	PushTopic      = "topic"
)

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// route returns the counters of route key, those of $default for a key that
// is not configured.
func (m *Metrics) route(key string) *routeSet {
	routes := *m.routes.Load()
	if r, ok := routes[key]; ok {
		return r
	}
	return routes[DefaultRoute]
}

// Connect counts a request that reached the $connect route.
func (m *Metrics) Connect() {
	if m != nil {
		m.connects.Inc()
	}
}

// Message counts a message received on route.
func (m *Metrics) Message(route string) {
	if m != nil {
		m.route(route).messages.Inc()
	}
}

// MessageSent counts a message queued to a client.
func (m *Metrics) MessageSent() {
	if m != nil {
		m.sent.Inc()
	}
}

// ClientError counts a 4XX the gateway answered on route before any
// integration ran.
func (m *Metrics) ClientError(route string) {
	if m != nil {
		m.route(route).clientErrors.Inc()
	}
}

// Invalid counts a message on route that its route's model refused; the
// caller counts it as a ClientError too.
func (m *Metrics) Invalid(route string) {
	if m != nil {
		m.route(route).invalid.Inc()
	}
}

// Throttled counts a request refused by route throttling on route: a
// handshake when route is $connect, a message otherwise.
func (m *Metrics) Throttled(route string) {
	if m == nil {
		return
	}
	if route == "$connect" {
		m.connectThrottled.Inc()
		return
	}
	m.route(route).throttled.Inc()
}

// Integration records an integration call on route that took d: a nil err
// with status, the integration's answer (0 when it has none), or err, an
// execution error. timed is false for mock integrations, whose latency AWS
// does not report.
func (m *Metrics) Integration(route string, d time.Duration, status int, err error, timed bool) {
	if m == nil {
		return
	}
	r := m.route(route)
	if err != nil {
		r.executionErrors.Inc()
		return
	}
	if timed {
		r.latency.Observe(d.Seconds())
	}
	if status >= 400 {
		r.integrationErrors.Inc()
	}
}

// Handshake counts a handshake answered with status.
func (m *Metrics) Handshake(status int) {
	if m != nil {
		m.handshakes.WithLabelValues(statusLabel(status)).Inc()
	}
}

// Disconnect counts a connection closed with code.
func (m *Metrics) Disconnect(code int) {
	if m != nil {
		m.disconnects.WithLabelValues(codeLabel(code)).Inc()
	}
}

// SlowConsumer counts a connection closed as a slow consumer.
func (m *Metrics) SlowConsumer() {
	if m != nil {
		m.slowConsumer.Inc()
	}
}

// Authorizer records a decision of the authorizer: "allow", "deny" or
// "error", taking d.
func (m *Metrics) Authorizer(decision string, d time.Duration) {
	if m != nil {
		m.authz.WithLabelValues(decision).Inc()
		m.authzLatency.Observe(d.Seconds())
	}
}

// AuthorizerCached records a decision answered from the cache.
func (m *Metrics) AuthorizerCached(decision string) {
	if m != nil {
		m.authz.WithLabelValues(decision).Inc()
		m.authzCache.WithLabelValues("hit").Inc()
	}
}

// AuthorizerCacheMiss records a cache lookup that found nothing.
func (m *Metrics) AuthorizerCacheMiss() {
	if m != nil {
		m.authzCache.WithLabelValues("miss").Inc()
	}
}

// ManagementCall counts a management API call of operation answered with
// status.
func (m *Metrics) ManagementCall(operation string, status int) {
	if m != nil {
		m.mgmtCalls.WithLabelValues(operation, statusLabel(status)).Inc()
	}
}

// Push counts a message posted to target and the connections it reached.
func (m *Metrics) Push(target string, delivered int) {
	if m != nil {
		m.pushes.WithLabelValues(target).Inc()
		m.deliveries.WithLabelValues(target).Add(float64(delivered))
	}
}

// EngineCall records a cluster engine call of operation that took d.
func (m *Metrics) EngineCall(operation string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.engine.WithLabelValues(operation, result).Observe(d.Seconds())
}

// Nodes sets the number of nodes with a heartbeat record.
func (m *Metrics) Nodes(n int) {
	if m != nil {
		m.nodes.Set(float64(n))
	}
}

// AccessLogDropped counts n access log lines dropped.
func (m *Metrics) AccessLogDropped(n int) {
	if m != nil {
		m.accessDrops.Add(float64(n))
	}
}

// statusLabels are the label values of the HTTP statuses 100 to 599.
var statusLabels = func() [600]string {
	var s [600]string
	for i := 100; i < 600; i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// statusLabel is status as a label: itself from 100 to 599, "other"
// beyond.
func statusLabel(status int) string {
	if status >= 100 && status < 600 {
		return statusLabels[status]
	}
	return "other"
}

// codeLabels are the label values of the close codes 1000 to 1015, made
// once: every close is counted, and formatting the code allocated.
var codeLabels = func() [16]string {
	var s [16]string
	for i := range s {
		s[i] = strconv.Itoa(1000 + i)
	}
	return s
}()

// codeLabel is a close code as a label: the codes of RFC 6455 (1000 to
// 1015) as themselves, wsgate's own 4401 as itself, the rest of the
// application ranges as 3xxx and 4xxx, anything else as "other".
func codeLabel(code int) string {
	switch {
	case code >= 1000 && code <= 1015:
		return codeLabels[code-1000]
	case code == 4401:
		return "4401"
	case code >= 3000 && code <= 3999:
		return "3xxx"
	case code >= 4000 && code <= 4999:
		return "4xxx"
	}
	return "other"
}
