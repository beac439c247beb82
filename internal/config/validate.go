package config

import (
	"fmt"
	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/model"
	"github.com/wsgate/wsgate/internal/route"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of values that come from AWS or from the protocol.
const (
	minFrameBytes      = 125 // the largest control frame payload
	maxMessageBytes    = 16 << 20
	queueOverheadBytes = 16 // room for one frame header beside the largest message
	minIntegrationWait = 50 * time.Millisecond
	maxIntegrationWait = 29 * time.Second
	// minBodyBytesInFlight is the largest management call body, a 10 MB
	// @batch (mgmt.MaxBatchBytes).
	minBodyBytesInFlight = 10 << 20
)

// supportedIntegrations lists the integration types in messages.
const supportedIntegrations = "http, mock, lambda, nats, redis, amqp, postgres, sqs, sns, eventbridge"

// namePattern is what stage and api_id must match.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// envNamePattern is what an environment variable name must match.
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every problem in c, joined with errors.Join, or nil. Each
// problem is an *Error naming the key path and, for a Config from Load or
// Parse, the file and line of the key.
//
// Validate judges c as if its defaults were filled, so a zero field is never
// a problem, and it does not change c. It only looks at c: it reads no
// environment variables or files. The route selection expression is
// compiled to check its syntax.
func (c *Config) Validate() error {
	return joinErrors(c.problems())
}

// problems returns every problem in c, in key order.
func (c *Config) problems() []*Error {
	e := c.withDefaults()
	k := &checker{src: c.src}

	k.address("listen", e.Listen)
	k.tls("tls", e.TLS)
	if e.Stage != "" && !namePattern.MatchString(e.Stage) {
		k.add("stage", "%q must be 1 to 128 characters from A-Z, a-z, 0-9, _ and -", e.Stage)
	}
	if !namePattern.MatchString(e.APIID) {
		k.add("api_id", "%q must be 1 to 128 characters from A-Z, a-z, 0-9, _ and -", e.APIID)
	}
	if strings.ContainsAny(e.DomainName, "/ \t\r\n") {
		k.add("domain_name", "%q must be a host name such as \"ws.example.com\", without scheme or path", e.DomainName)
	}
	if _, err := route.ParseExpression(e.RouteSelectionExpression); err != nil {
		k.add("route_selection_expression", "%v", err)
	}
	switch e.BinaryFrames {
	case BinaryReject, BinaryBase64:
	default:
		k.add("binary_frames", "unknown value %q; one of reject, base64", e.BinaryFrames)
	}
	k.positive("shutdown_timeout", e.ShutdownTimeout)

	k.limits(e.Limits)
	k.origins(e.Origins)
	k.subprotocols(e.Subprotocols)
	k.authorizer(e.Authorizer, e.Origins, e.Subprotocols)
	k.routes(e.Routes)
	k.push(e)
	k.throttling(e)
	k.management(e.Management, e.Listen)

	k.registry(e.Registry)
	switch e.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		k.add("log.level", "unknown level %q; one of debug, info, warn, error", e.Log.Level)
	}
	switch e.Log.Format {
	case "text", "json":
	default:
		k.add("log.format", "unknown format %q; one of text, json", e.Log.Format)
	}
	k.accessLog(e.AccessLog)
	return k.errs
}

func (k *checker) accessLog(a AccessLog) {
	if !a.Enabled() {
		if a.Output != "" {
			k.add("access_log.output", "is set but access_log.format is not; set a format (clf, json, xml, csv or $context variables) to turn the access log on")
		}
		return
	}
	if _, err := accesslog.ParseFormat(a.Format); err != nil {
		k.add("access_log.format", "%v", err)
	}
	if strings.ContainsAny(a.Output, "\x00\r\n") {
		k.add("access_log.output", "must be stdout, stderr or a file path on one line")
	}
}

// prefixRE is what a registry prefix may hold: it becomes part of Redis
// keys, NATS subjects and JetStream bucket names.
var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (k *checker) registry(r Registry) {
	switch r.Type {
	case RegistryMemory:
	case RegistryRedis:
		switch {
		case r.Redis.URL == "":
			k.add("registry.redis.url", "required for registry type redis, e.g. redis://127.0.0.1:6379/0")
		default:
			k.redisURL("registry.redis.url", r.Redis.URL, "registry.redis.password_env")
		}
	case RegistryNATS:
		if r.NATS.URL == "" {
			k.add("registry.nats.url", "required for registry type nats, e.g. nats://127.0.0.1:4222")
		}
		for _, u := range strings.Split(r.NATS.URL, ",") {
			if u = strings.TrimSpace(u); u != "" && !strings.Contains(u, "://") {
				k.add("registry.nats.url", "%s must be a URL such as nats://127.0.0.1:4222", showURL(u))
			}
		}
	default:
		k.add("registry.type", "unknown registry type %q; one of memory, redis, nats", r.Type)
	}
	k.envName("registry.redis.password_env", r.Redis.PasswordEnv)
	k.envName("registry.nats.token_env", r.NATS.TokenEnv)
	if r.Prefix != "" && !prefixRE.MatchString(r.Prefix) {
		k.add("registry.prefix", "%q must be 1 to 32 letters, digits, - and _", r.Prefix)
	}
	k.positive("registry.heartbeat_interval", r.HeartbeatInterval)
	k.positive("registry.node_timeout", r.NodeTimeout)
	k.positive("registry.timeout", r.Timeout)
	if r.HeartbeatInterval > 0 && r.NodeTimeout <= 2*r.HeartbeatInterval {
		k.add("registry.node_timeout", "%v must be more than twice registry.heartbeat_interval (%v)", r.NodeTimeout, r.HeartbeatInterval)
	}
}

// checker collects problems, locating each at the line of its key.
type checker struct {
	src  source
	errs []*Error
}

// add reports a problem with the key at path.
func (k *checker) add(path, format string, args ...any) {
	k.errs = append(k.errs, &Error{File: k.src.file, Line: k.src.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// pair reports a broken relation between the keys at pathA and pathB. It is
// reported at pathA with msgA when the file sets pathA or does not set pathB,
// and otherwise at pathB with msgB, so the line shown is one the user wrote.
func (k *checker) pair(pathA, msgA, pathB, msgB string) {
	if k.src.has(pathA) || !k.src.has(pathB) {
		k.add(pathA, "%s", msgA)
	} else {
		k.add(pathB, "%s", msgB)
	}
}

func (k *checker) positive(path string, d time.Duration) {
	if d <= 0 {
		k.add(path, "must be greater than 0, got %s", fmtDuration(d))
	}
}

// address reports whether addr is a host:port with a numeric port, reporting
// a problem at path when it is not.
func (k *checker) address(path, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		k.add(path, "%q is not a host:port address such as \":8080\" or \"127.0.0.1:8080\"", addr)
		return false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		k.add(path, "%q: the port must be a number from 0 to 65535", addr)
		return false
	}
	return true
}

func (k *checker) limits(l Limits) {
	if l.MaxFrameBytes < minFrameBytes {
		k.add("limits.max_frame_bytes", "must be at least %d, got %d", minFrameBytes, l.MaxFrameBytes)
	}
	if l.MaxMessageBytes > maxMessageBytes {
		k.add("limits.max_message_bytes", "must be at most %d (16 MiB), got %d", maxMessageBytes, l.MaxMessageBytes)
	}
	if l.MaxFrameBytes >= minFrameBytes && l.MaxFrameBytes > l.MaxMessageBytes {
		k.pair("limits.max_frame_bytes", fmt.Sprintf("must be at most limits.max_message_bytes (%d), got %d", l.MaxMessageBytes, l.MaxFrameBytes),
			"limits.max_message_bytes", fmt.Sprintf("must be at least limits.max_frame_bytes (%d), got %d", l.MaxFrameBytes, l.MaxMessageBytes))
	}
	if l.MaxMessageBytes <= maxMessageBytes && l.OutboundQueueBytes < l.MaxMessageBytes+queueOverheadBytes {
		k.pair("limits.outbound_queue_bytes", fmt.Sprintf("must be at least limits.max_message_bytes + %d (%d), got %d", queueOverheadBytes, l.MaxMessageBytes+queueOverheadBytes, l.OutboundQueueBytes),
			"limits.max_message_bytes", fmt.Sprintf("must be at most limits.outbound_queue_bytes - %d (%d), got %d", queueOverheadBytes, l.OutboundQueueBytes-queueOverheadBytes, l.MaxMessageBytes))
	}
	k.positive("limits.idle_timeout", l.IdleTimeout)
	k.positive("limits.max_connection_duration", l.MaxConnectionDuration)
	k.positive("limits.ping_interval", l.PingInterval)
	if l.PingInterval > 0 && l.IdleTimeout > 0 && l.PingInterval >= l.IdleTimeout {
		k.pair("limits.ping_interval", fmt.Sprintf("must be less than limits.idle_timeout (%s), got %s", fmtDuration(l.IdleTimeout), fmtDuration(l.PingInterval)),
			"limits.idle_timeout", fmt.Sprintf("must be greater than limits.ping_interval (%s), got %s", fmtDuration(l.PingInterval), fmtDuration(l.IdleTimeout)))
	}
	k.positive("limits.handshake_timeout", l.HandshakeTimeout)
	k.positive("limits.close_drain_timeout", l.CloseDrainTimeout)
	if l.MaxConnections < 0 {
		k.add("limits.max_connections", "must not be negative (0 means unlimited), got %d", l.MaxConnections)
	}
	if l.MaxInflightMessages < 0 {
		k.add("limits.max_inflight_messages", "must be greater than 0, got %d", l.MaxInflightMessages)
	}
	if l.InflightBudgetMessages < 0 {
		k.add("limits.inflight_budget_messages", "must be greater than 0, got %d", l.InflightBudgetMessages)
	}
	if l.InflightBudgetBytes < l.MaxMessageBytes {
		k.add("limits.inflight_budget_bytes", "must be at least limits.max_message_bytes (%d), got %d", l.MaxMessageBytes, l.InflightBudgetBytes)
	}
}

func (k *checker) routes(routes map[string]Route) {
	for _, key := range slices.Sorted(maps.Keys(routes)) {
		r := routes[key]
		path := "routes." + key
		switch {
		case key == "":
			k.errs = append(k.errs, &Error{File: k.src.file, Line: k.src.line(path), Path: "routes", Msg: "empty route key"})
		case key == RouteConnect || key == RouteDisconnect || key == RouteDefault:
		case strings.HasPrefix(key, "$"):
			k.add(path, "unknown route key %q; the only keys starting with \"$\" are $connect, $disconnect and $default", key)
		}
		switch r.Builtin {
		case "":
			k.integration(path+".integration", r.Integration)
		case BuiltinSubscribe, BuiltinUnsubscribe:
			if r.Integration.Type != "" {
				k.add(path+".builtin", "a built-in route has no integration")
			}
			if key == RouteConnect || key == RouteDisconnect {
				k.add(path+".builtin", "not supported on %s", key)
			}
		default:
			k.add(path+".builtin", "unknown built-in %q; one of subscribe, unsubscribe", r.Builtin)
		}
		if len(r.Require) > 0 && (key == RouteConnect || key == RouteDisconnect) {
			k.add(path+".require", "not supported on %s; rules apply to messages", key)
		}
		for name, vals := range r.Require {
			if len(vals) == 0 {
				k.add(path+".require."+name, "list at least one allowed value")
			}
		}
		if r.RouteResponse && (key == RouteConnect || key == RouteDisconnect) {
			k.add(path+".route_response", "not supported on %s; only $default and custom routes send a route response", key)
		}
		k.models(path, key, &r)
	}
}

// models checks the request validation keys of the route at path.
func (k *checker) models(path, key string, r *Route) {
	if !r.HasModel() && r.ModelSelectionExpression == "" {
		return
	}
	if key == RouteConnect || key == RouteDisconnect {
		for _, f := range []string{"model", "model_file", "models", "model_selection_expression"} {
			if k.src.has(path + "." + f) {
				k.add(path+"."+f, "not supported on %s; models validate messages", key)
				return
			}
		}
		k.add(path+".model", "not supported on %s; models validate messages", key)
		return
	}
	if r.Model.File != "" {
		k.add(path+".model", "a string is not a JSON Schema; to read the schema from a file, use model_file")
	}
	if r.Model.IsSet() && r.ModelFile != "" {
		k.add(path+".model_file", "set either model or model_file, not both")
	}
	single := r.Model.IsSet() || r.ModelFile != ""
	switch {
	case single && (len(r.Models) > 0 || r.ModelSelectionExpression != ""):
		p := path + ".models"
		if len(r.Models) == 0 {
			p = path + ".model_selection_expression"
		}
		k.add(p, "set either model (or model_file) for one model, or models with model_selection_expression, not both")
	case len(r.Models) > 0 && r.ModelSelectionExpression == "":
		k.add(path+".models", "requires model_selection_expression, which selects one of the models for each message (such as \"$request.body.action\")")
	case len(r.Models) == 0 && r.ModelSelectionExpression != "":
		k.add(path+".model_selection_expression", "requires models, the schemas it selects from")
	case r.ModelSelectionExpression != "":
		if _, err := route.ParseExpression(r.ModelSelectionExpression); err != nil {
			k.add(path+".model_selection_expression", "%v", err)
		}
	}
	if r.Model.Doc != nil {
		k.schema(path+".model", r.Model.Doc)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Models)) {
		switch m := r.Models[name]; {
		case name == "":
			k.add(path+".models", "empty model name")
		case !m.IsSet():
			k.add(path+".models."+name, "empty; write the schema, or the path of a JSON file holding it")
		case m.Doc != nil:
			k.schema(path+".models."+name, m.Doc)
		}
	}
}

// schema reports an inline schema that does not compile. Schemas in files
// are compiled, and reported, when the gateway is built.
func (k *checker) schema(path string, doc any) {
	if _, err := model.Compile(doc); err != nil {
		k.add(path, "%v", err)
	}
}

func (k *checker) integration(path string, in Integration) {
	switch in.Type {
	case IntegrationHTTP:
		if in.URL == "" {
			k.add(path+".url", "required for http integrations")
		} else if !isHTTPURL(in.URL) {
			k.add(path+".url", "%s must be an absolute http:// or https:// URL", showURL(in.URL))
		}
		for _, name := range slices.Sorted(maps.Keys(in.Headers)) {
			if !isToken(name) {
				k.add(path+".headers."+name, "%q is not a valid header name", name)
			}
			if strings.ContainsAny(in.Headers[name], "\r\n\x00") {
				k.add(path+".headers."+name, "a header value must not contain CR, LF or NUL")
			}
		}
		if in.StatusCode != 0 {
			k.add(path+".status_code", "only used by mock integrations")
		}
		if in.Body != nil {
			k.add(path+".body", "only used by mock integrations")
		}
		if in.Payload != "" {
			k.payload(path, in.Payload)
		}
	case IntegrationMock:
		if in.URL != "" {
			k.add(path+".url", "only used by http integrations")
		}
		if len(in.Headers) > 0 {
			k.add(path+".headers", "only used by http integrations")
		}
		if in.StatusCode < 100 || in.StatusCode > 599 {
			k.add(path+".status_code", "must be from 100 to 599, got %d", in.StatusCode)
		}
	case "":
		k.add(path+".type", "required; one of %s", supportedIntegrations)
	case IntegrationLambda:
		k.lambda(path+".lambda", in.Lambda)
		if in.URL != "" || len(in.Headers) > 0 || in.StatusCode != 0 || in.Body != nil {
			k.add(path, "url, headers, status_code and body are not used by lambda integrations")
		}
	case IntegrationNATS:
		k.natsIntegration(path, in)
	case IntegrationRedis:
		k.redisIntegration(path, in)
	case IntegrationPostgres:
		k.postgresIntegration(path, in)
	case IntegrationSQS, IntegrationSNS, IntegrationEventBridge:
		k.awsPublish(path, in)
	case IntegrationAMQP:
		k.amqpIntegration(path, in)
	default:
		k.add(path+".type", "unknown integration type %q; supported: %s", in.Type, supportedIntegrations)
	}
	if in.Type != "" {
		k.foreignKeys(path, in)
	}
	if in.Timeout < minIntegrationWait || in.Timeout > maxIntegrationWait {
		k.add(path+".timeout", "must be from %s to %s, got %s", fmtDuration(minIntegrationWait), fmtDuration(maxIntegrationWait), fmtDuration(in.Timeout))
	}
}

func (k *checker) management(m Management, clientListen string) {
	const path = "management.listen"
	valid := false
	if strings.EqualFold(m.Listen, "off") {
		k.add(path, "%q is not an address; to turn the management API off, set management.enabled: false", m.Listen)
	} else {
		valid = k.address(path, m.Listen)
	}
	if valid && m.IsEnabled() {
		if sameSocket(m.Listen, clientListen) {
			k.pair(path, fmt.Sprintf("%q uses the same port as listen (%q); the management API needs its own", m.Listen, clientListen),
				"listen", fmt.Sprintf("%q uses the same port as management.listen (%q); the management API needs its own", clientListen, m.Listen))
		}
		if !m.Loopback() && !m.HasAuth() {
			k.add(path, "non-loopback address requires management.auth; set management.auth.bearer_tokens_env or management.auth.bearer_tokens_file, or listen on 127.0.0.1")
		}
	}
	if m.Pprof && !m.IsEnabled() {
		k.add("management.pprof", "is served on the management listener, which management.enabled: false turns off")
	}
	if m.MessageTail && !m.IsEnabled() {
		k.add("management.message_tail", "tails are read through the management API, which management.enabled: false turns off")
	}
	if m.Metrics != nil && *m.Metrics && !m.IsEnabled() {
		k.add("management.metrics", "is served on the management listener, which management.enabled: false turns off; set metrics: false or leave it out")
	}
	if m.UI != nil && *m.UI && !m.IsEnabled() {
		k.add("management.ui", "is served on the management listener, which management.enabled: false turns off; set ui: false or leave it out")
	}
	k.tls("management.tls", m.TLS)
	k.positive("management.read_timeout", m.ReadTimeout)
	k.positive("management.idle_timeout", m.IdleTimeout)
	if m.MaxBodyBytesInFlight < minBodyBytesInFlight {
		k.add("management.max_body_bytes_in_flight", "must be at least %d, the largest @batch body, got %d", minBodyBytesInFlight, m.MaxBodyBytesInFlight)
	}
	k.sigv4("management.auth.sigv4", m.Auth.SigV4)
	if env := m.Auth.BearerTokensEnv; env != "" && !envNamePattern.MatchString(env) {
		// The value is not echoed: a token pasted here by mistake must not
		// reach logs.
		k.add("management.auth.bearer_tokens_env", "must be the name of an environment variable (letters, digits and _), not a token")
	}
}

// sameSocket reports whether listeners on the host:port addresses a and b
// would collide: the same non-zero port on the same host, or on any host
// when either is a wildcard.
func sameSocket(a, b string) bool {
	hostA, portA, errA := net.SplitHostPort(a)
	hostB, portB, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}
	pa, errA := strconv.ParseUint(portA, 10, 16)
	pb, errB := strconv.ParseUint(portB, 10, 16)
	if errA != nil || errB != nil || pa != pb || pa == 0 {
		return false
	}
	if isWildcard(hostA) || isWildcard(hostB) || strings.EqualFold(hostA, hostB) {
		return true
	}
	ipA, errA := netip.ParseAddr(hostLocalhost(hostA))
	ipB, errB := netip.ParseAddr(hostLocalhost(hostB))
	return errA == nil && errB == nil && ipA.Unmap() == ipB.Unmap()
}

func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// hostLocalhost maps "localhost" to 127.0.0.1, which it normally resolves
// to, and returns other hosts unchanged.
func hostLocalhost(host string) string {
	if strings.EqualFold(host, "localhost") {
		return "127.0.0.1"
	}
	return host
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// isToken reports whether s is an HTTP token (RFC 9110), as a header name
// must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// fmtDuration formats d as written in a configuration file: "10m" rather
// than "10m0s", "2h" rather than "2h0m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// showURL quotes the URL s for a problem message, with what precedes an "@"
// in its authority (user and password) replaced by "xxxxx": a URL refused
// for another reason may still hold credentials, which must not reach logs.
func showURL(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	authority := s[start:]
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		s = s[:start] + "xxxxx" + s[start+at:]
	}
	return strconv.Quote(s)
}
