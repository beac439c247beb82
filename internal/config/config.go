package config

import (
	_ "embed"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Config is the whole wsgate configuration. Its YAML keys are given by the
// field tags. A zero field means the default stated in its comment; Load,
// Parse and Default return a Config whose defaults are already filled in.
//
// A Config is a plain value: it is safe to read from many goroutines and is
// never changed by this package after Load or Parse returns it.
type Config struct {
	// Listen is the host:port of the client (WebSocket) listener.
	// Default ":8080".
	Listen string `yaml:"listen"`

	// TLS serves the client listener over TLS (wss://). Default: none,
	// plain ws://.
	TLS TLS `yaml:"tls"`

	// Stage is the API stage. When empty, clients upgrade at "/" and events
	// carry the stage "$default"; otherwise clients upgrade at "/{stage}".
	// It must match [A-Za-z0-9_-]{1,128}. Default "".
	Stage string `yaml:"stage"`

	// APIID is the requestContext.apiId of every event. It must match
	// [A-Za-z0-9_-]{1,128} because it appears in ARNs. Default "local".
	APIID string `yaml:"api_id"`

	// DomainName is the requestContext.domainName of every event. Default ""
	// means the Host header of the client's upgrade request.
	DomainName string `yaml:"domain_name"`

	// RouteSelectionExpression selects a route key from each client message.
	// Its syntax is checked by the package that compiles it, which reports
	// problems with Errorf. Default "$request.body.action".
	RouteSelectionExpression string `yaml:"route_selection_expression"`

	// StageVariables are the stage's variables: they appear as
	// stageVariables in the $connect event and the authorizer event, and an
	// identity source stageVariables.NAME reads them. Default: none.
	StageVariables map[string]string `yaml:"stage_variables"`

	// Origins is the Origin allow-list of browser clients: exact origins
	// ("https://app.example.com") or one wildcard label
	// ("https://*.example.com"). A request with a foreign Origin gets 403
	// before any authorizer runs; a request without Origin (not a browser)
	// is not affected. Default: empty, no Origin check.
	Origins []string `yaml:"origins"`

	// Subprotocols are the real WebSocket subprotocols the gateway speaks,
	// in order of preference. The 101 answers with the first the client
	// offered; any other offered item (a token) is never echoed. A client
	// that offers protocols, none of them in this list, is refused with 400.
	// Default: empty, no negotiation by the gateway (a $connect integration
	// may still answer Sec-WebSocket-Protocol, as in AWS).
	Subprotocols []string `yaml:"subprotocols"`

	// Authorizer authenticates clients at $connect. Default: none.
	Authorizer Authorizer `yaml:"authorizer"`

	// Topics configures the topics clients may subscribe themselves to.
	Topics Topics `yaml:"topics"`

	// BinaryFrames says what happens to a binary frame from a client.
	// Default BinaryReject.
	BinaryFrames BinaryFrames `yaml:"binary_frames"`

	// ShutdownTimeout bounds a graceful shutdown: closing sockets, delivering
	// $disconnect and waiting for in-flight integrations. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	// Limits bounds connections, frames and queues.
	Limits Limits `yaml:"limits"`

	// Routes maps a route key ($connect, $disconnect, $default or a custom
	// key not starting with "$") to its route. Default: when the map is
	// empty, one $default route with a mock integration that echoes each
	// message back to its sender.
	Routes map[string]Route `yaml:"routes"`

	// Management configures the management (@connections) API listener.
	Management Management `yaml:"management"`

	// Registry selects where connection locations and user and topic
	// indexes are kept.
	Registry Registry `yaml:"registry"`

	// Throttling is the stage's default route throttling (AWS
	// DefaultRouteSettings ThrottlingRateLimit and ThrottlingBurstLimit):
	// each route without throttling of its own, $connect included, gets a
	// token bucket of this rate and burst on each node. A message over it
	// gets the frame {"message": "Too Many Requests", …}; a handshake over
	// it is answered 429. Default: no throttling.
	Throttling RateLimit `yaml:"throttling"`

	// TrustedProxies are the addresses (CIDRs such as "10.0.0.0/8", or
	// single addresses) of the load balancers in front of the gateway.
	// Only when the client socket's peer is one of them are its
	// X-Forwarded-For, Forwarded and X-Forwarded-Proto headers believed.
	// Default: none, every such header is ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`

	// ProxyProtocol makes the client listener expect a PROXY protocol
	// header (v1 or v2) at the start of every connection, from a peer in
	// TrustedProxies; a connection from any other peer, or with a missing
	// or malformed header, is closed. Requires TrustedProxies. Default
	// false.
	ProxyProtocol bool `yaml:"proxy_protocol"`

	// Log configures the server's log output.
	Log Log `yaml:"log"`

	// AccessLog writes one line per connect, message, disconnect and
	// management API call. Default: off.
	AccessLog AccessLog `yaml:"access_log"`

	// src holds the file name and key lines recorded by Parse.
	src source
}

// BinaryFrames is the treatment of binary frames from clients.
type BinaryFrames string

// The values of BinaryFrames.
const (
	// BinaryReject closes the connection with code 1003, as AWS does.
	BinaryReject BinaryFrames = "reject"
	// BinaryBase64 delivers the frame base64-encoded with isBase64Encoded
	// set to true.
	BinaryBase64 BinaryFrames = "base64"
)

// Limits bounds connections, frames and queues. The defaults are AWS's
// quotas where AWS has one.
type Limits struct {
	// MaxFrameBytes is the largest frame a client may send; a larger one
	// closes the connection with 1009. It must be at least 125 and at most
	// MaxMessageBytes. Default 32768.
	MaxFrameBytes int `yaml:"max_frame_bytes"`

	// MaxMessageBytes is the largest message, after reassembling
	// continuation frames; a larger one closes the connection with 1009.
	// At most 16 MiB. Default 131072.
	MaxMessageBytes int `yaml:"max_message_bytes"`

	// IdleTimeout closes a connection on which no data frame has passed in
	// either direction for this long. Default 10m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`

	// MaxConnectionDuration closes every connection this long after it was
	// opened. Default 2h.
	MaxConnectionDuration time.Duration `yaml:"max_connection_duration"`

	// PingInterval is how often the server pings each client; a peer that
	// sends nothing, not even a pong, for two intervals is closed as dead.
	// It must be less than IdleTimeout. Default 30s.
	PingInterval time.Duration `yaml:"ping_interval"`

	// OutboundQueueBytes is how many bytes may wait to be written to one
	// client; beyond it the client is closed as a slow consumer. It must be
	// at least MaxMessageBytes + 16. Default 1048576 (1 MiB).
	OutboundQueueBytes int `yaml:"outbound_queue_bytes"`

	// HandshakeTimeout is the time a client has to send its upgrade request
	// after connecting. Default 10s.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`

	// MaxConnections caps the open connections of this process; further
	// upgrades are answered with 503. A closed connection counts until the
	// messages it sent have been delivered. Default 0, which means
	// unlimited.
	MaxConnections int `yaml:"max_connections"`

	// CloseDrainTimeout bounds how long replies to a client's messages may
	// hold back the gateway's answer to the client's close frame: replies
	// to messages received before the close frame are sent first, then the
	// close frame, at the latest this long after the client's. Default 2s.
	CloseDrainTimeout time.Duration `yaml:"close_drain_timeout"`

	// MaxInflightMessages is how many messages of one connection may wait
	// for their integration (a connection's messages are delivered one at
	// a time, in order); one more closes the connection with 1013.
	// Default 64.
	MaxInflightMessages int `yaml:"max_inflight_messages"`

	// InflightBudgetMessages bounds the messages of all connections of
	// this process that the gateway has accepted and whose integration has
	// not answered yet, those of closed connections included. At the
	// bound the gateway stops reading from its clients until an
	// integration answers, so that TCP slows the clients down instead of
	// the gateway buffering what they send. Default 16384.
	InflightBudgetMessages int `yaml:"inflight_budget_messages"`

	// InflightBudgetBytes is the same bound in bytes of message payload.
	// At least MaxMessageBytes. Default 67108864 (64 MiB).
	InflightBudgetBytes int `yaml:"inflight_budget_bytes"`

	// MaxConnectionsPerUser caps the connections of one principalId.
	// Default 0, which means unlimited.
	MaxConnectionsPerUser int `yaml:"max_connections_per_user"`

	// UserLimitPolicy says which connection gives way at
	// MaxConnectionsPerUser: refuse_newest (429 at the handshake) or
	// close_oldest (the oldest is closed with 4008). Default refuse_newest.
	UserLimitPolicy UserLimitPolicy `yaml:"user_limit_policy"`

	// MessagesPerSecond limits each connection's messages with a token
	// bucket; a message over the limit gets the frame
	// {"message": "Limit Exceeded", …} and the connection stays open.
	// Default: no limit.
	MessagesPerSecond RateLimit `yaml:"messages_per_second"`

	// MaxSubscriptionsPerConnection caps the topics one connection may be
	// subscribed to, by itself (built-in subscribe route) or by the
	// management API together. A subscription over it is refused; the
	// connection stays open. At least 1. Default 128.
	MaxSubscriptionsPerConnection int `yaml:"max_subscriptions_per_connection"`
}

// Route keys with a meaning of their own. Every other route key is custom
// and must not start with "$".
const (
	RouteConnect    = "$connect"
	RouteDisconnect = "$disconnect"
	RouteDefault    = "$default"
)

// Route is what the gateway does with a message whose route key selects it.
type Route struct {
	// Integration is the backend that receives the route's events. Required
	// unless Builtin is set.
	Integration Integration `yaml:"integration"`

	// Builtin makes the gateway handle the route itself: subscribe or
	// unsubscribe the sender to the message's "topic". Not allowed with an
	// integration, nor on $connect and $disconnect.
	Builtin Builtin `yaml:"builtin"`

	// RouteResponse sends the integration's response body back to the
	// client when true. It is not allowed on $connect and $disconnect.
	// Default false.
	RouteResponse bool `yaml:"route_response"`

	// Require lists authorizer-context keys and the values allowed for
	// each ({role: admin} or {role: [admin, ops]}); a message from a
	// connection whose context does not match gets AWS's Forbidden frame and
	// never reaches the integration. Not allowed on $connect and
	// $disconnect. Default: no rule.
	Require map[string]OneOrMore `yaml:"require"`

	// Throttling is the route's own throttling (AWS RouteSettings
	// ThrottlingRateLimit and ThrottlingBurstLimit), replacing the stage's
	// default: a token bucket per node. On $connect it throttles
	// handshakes (429). Not allowed on $disconnect. Default: the
	// top-level throttling.
	Throttling RateLimit `yaml:"throttling"`

	// Model is a JSON Schema, written inline in YAML or JSON, that every
	// message of the route must match: a message that does not, or is not
	// JSON, gets AWS's "Bad request body" frame and never reaches the
	// integration. Draft 4 unless its "$schema" names another draft (6, 7,
	// 2019-09, 2020-12). Not allowed with ModelFile or Models, nor on
	// $connect and $disconnect. Default: no validation.
	Model Schema `yaml:"model"`

	// ModelFile is the path of a JSON file holding the route's model,
	// instead of Model. Default none.
	ModelFile string `yaml:"model_file"`

	// ModelSelectionExpression selects, for each message, the name of the
	// model in Models it must match (AWS Route.ModelSelectionExpression),
	// in the grammar of RouteSelectionExpression. When it yields no name
	// of Models, the model named "$default" applies; without one the
	// message is refused, as in AWS. Required with Models. Default none.
	ModelSelectionExpression string `yaml:"model_selection_expression"`

	// Models maps model names to JSON Schemas (AWS Route.RequestModels):
	// each value is a schema written inline, or a string, the path of a
	// JSON file holding it. Used with ModelSelectionExpression. Default
	// none.
	Models map[string]Schema `yaml:"models"`
}

// HasModel reports whether the route validates its messages.
func (r *Route) HasModel() bool {
	return r.Model.IsSet() || r.ModelFile != "" || len(r.Models) > 0
}

// Schema is a JSON Schema in the configuration: a document written inline
// (Doc) or the path of a file holding one (File). The zero value is no
// schema.
type Schema struct {
	// Doc is the schema as JSON values: map[string]any, []any, string,
	// bool, nil and json.Number. Nil when the schema is in File.
	Doc any `yaml:"-"`
	// File is the path of a JSON file holding the schema, read when the
	// configuration is built, relative to the working directory.
	File string `yaml:"-"`
}

// IsSet reports whether s holds a schema or names a file.
func (s Schema) IsSet() bool { return s.Doc != nil || s.File != "" }

// IntegrationType names an integration kind.
type IntegrationType string

// The supported integration types.
const (
	// IntegrationHTTP POSTs the AWS_PROXY event JSON to URL, or with
	// payload: body the client's message itself.
	IntegrationHTTP IntegrationType = "http"
	// IntegrationMock answers without calling a backend.
	IntegrationMock IntegrationType = "mock"
)

// Integration is the backend of a route.
type Integration struct {
	// Type is the integration kind. Required.
	Type IntegrationType `yaml:"type"`

	// URL is the absolute http:// or https:// URL that http integrations
	// POST events to. Required for http; not allowed for mock.
	URL string `yaml:"url"`

	// Timeout bounds one call to the integration, between 50ms and 29s as
	// in AWS. Default 29s.
	Timeout time.Duration `yaml:"timeout"`

	// Headers are extra request headers for http integrations. Not allowed
	// for mock. Default none.
	Headers map[string]string `yaml:"headers"`

	// HTTP2 makes an http integration speak HTTP/2 to its backend: over
	// cleartext (h2c with prior knowledge, no upgrade) for an http:// URL,
	// negotiated by TLS ALPN for https://. A backend that does not speak
	// HTTP/2 then fails every call. Only for http. Default false: HTTP/1.1
	// with keep-alive.
	HTTP2 bool `yaml:"http2"`

	// StatusCode is the status a mock integration answers with, between 100
	// and 599. Not allowed for http. Default 200 for mock.
	StatusCode int `yaml:"status_code"`

	// Lambda configures a lambda integration. Required for lambda; not
	// allowed for other types.
	Lambda Lambda `yaml:"lambda"`

	// Body is the body a mock integration answers with. Nil (the key absent)
	// means the mock echoes the incoming message body back. Not allowed for
	// http.
	Body *string `yaml:"body"`

	// The keys below are those of the publishing integrations, nats and
	// redis (publish.go); each is refused on the types that do not use it.

	// URLEnv names an environment variable holding the NATS server URL(s),
	// for nats integrations instead of URL. Default "".
	URLEnv string `yaml:"url_env"`

	// Subject is the NATS subject a nats integration publishes to; it may
	// hold placeholders (see package destination). Required for nats.
	Subject string `yaml:"subject"`

	// JetStream publishes to a JetStream stream and waits for its ack
	// instead of publishing to core NATS. Default false.
	JetStream bool `yaml:"jetstream"`

	// Declare creates the JetStream stream named by Stream, capturing the
	// subject's messages, when it does not exist. Only with JetStream. For
	// amqp, it declares Exchange, durable, of ExchangeType. Default false:
	// the stream or exchange must exist.
	Declare bool `yaml:"declare"`

	// TokenEnv and CredentialsFile authenticate a nats integration, as in
	// registry.nats; at most one. Default none.
	TokenEnv        string `yaml:"token_env"`
	CredentialsFile string `yaml:"credentials_file"`

	// PasswordEnv names an environment variable holding the password of a
	// redis integration. Default none.
	PasswordEnv string `yaml:"password_env"`

	// Stream is the Redis stream a redis integration appends to (XADD); it
	// may hold placeholders. For nats, the JetStream stream that Declare
	// creates. A redis integration sets exactly one of Stream and Channel.
	Stream string `yaml:"stream"`

	// Channel is the Redis channel a redis integration publishes to
	// (PUBLISH); it may hold placeholders.
	Channel string `yaml:"channel"`

	// MaxLen trims a redis integration's stream to about this many entries
	// (XADD MAXLEN ~). Default 0: no trimming.
	MaxLen int64 `yaml:"maxlen"`

	// Payload is what a nats or redis integration sends: the AWS event JSON
	// an http integration receives, or the client's message alone with the
	// identity in headers or fields; what a postgres integration stores in
	// its row. For http, body POSTs the client's message itself, as AWS's
	// HTTP_PROXY integrations do, and an empty body for $connect and
	// $disconnect, with the connection's identity in headers. Default
	// PayloadEvent.
	Payload Payload `yaml:"payload"`

	// DSNEnv names an environment variable holding the connection string
	// (a postgres:// URL or key=value pairs) of a postgres integration.
	// Required for postgres.
	DSNEnv string `yaml:"dsn_env"`

	// Table is the table a postgres integration inserts a row into for
	// each event, optionally schema-qualified. Required for postgres.
	Table string `yaml:"table"`

	// The keys below are those of the AWS integrations, sqs, sns and
	// eventbridge (aws_publish.go); each is refused on the other types.

	// Endpoint is the service's base URL, such as a local SQS-compatible
	// server. Default "": the AWS endpoint of Region.
	Endpoint string `yaml:"endpoint"`

	// Region is the AWS region requests are signed for and sent to.
	// Default "us-east-1".
	Region string `yaml:"region"`

	// AccessKeyID, SecretAccessKeyEnv and SessionTokenEnv sign requests
	// with SigV4, as a lambda integration's keys of the same names do.
	// Required unless Endpoint is set or Credentials is "environment".
	// Default none.
	AccessKeyID        string `yaml:"access_key_id"`
	SecretAccessKeyEnv string `yaml:"secret_access_key_env"`
	SessionTokenEnv    string `yaml:"session_token_env"`

	// Credentials "environment" signs requests with the credentials of the
	// standard AWS variables, read at start: AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY (required), AWS_SESSION_TOKEN (when set); and,
	// when Endpoint is unset, takes the endpoint from the service's
	// AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_SNS or
	// AWS_ENDPOINT_URL_EVENTBRIDGE, or else AWS_ENDPOINT_URL, as the AWS
	// SDKs do. It excludes AccessKeyID, SecretAccessKeyEnv and
	// SessionTokenEnv. Default "": the keys above, or none.
	Credentials string `yaml:"credentials"`

	// QueueURL is the SQS queue an sqs integration sends to. Required for
	// sqs.
	QueueURL string `yaml:"queue_url"`

	// TopicARN is the SNS topic an sns integration publishes to. Required
	// for sns.
	TopicARN string `yaml:"topic_arn"`

	// MessageGroupID is the message group of an sqs or sns message; it may
	// hold placeholders. Required for FIFO queues and topics. Default "".
	MessageGroupID string `yaml:"message_group_id"`

	// EventBus is the name or ARN of the event bus an eventbridge
	// integration puts events on. Default "default".
	EventBus string `yaml:"event_bus"`

	// Source is the source of an eventbridge integration's events, such as
	// "wsgate". Required for eventbridge.
	Source string `yaml:"source"`

	// DetailType is the detail-type of an eventbridge integration's events;
	// it may hold placeholders. Default "{routeKey}".
	DetailType string `yaml:"detail_type"`
	// Exchange is the exchange an amqp integration publishes to. Default ""
	// (also when absent): the default exchange, which routes each message
	// to the queue its routing key names.
	Exchange string `yaml:"exchange"`

	// RoutingKey is the routing key of an amqp integration's messages; it
	// may hold placeholders. Required for amqp.
	RoutingKey string `yaml:"routing_key"`

	// ExchangeType is the type of the durable exchange an amqp integration
	// with Declare creates: direct, fanout, topic or headers. Only with
	// Declare. Default topic.
	ExchangeType string `yaml:"exchange_type"`
}

// Management configures the management (@connections) API listener.
type Management struct {
	// Listen is the host:port of the management listener. It must differ
	// from the client listener, and a non-loopback address requires Auth.
	// The API is turned off with Enabled, not with an empty or "off"
	// address. Default "127.0.0.1:9090".
	Listen string `yaml:"listen"`

	// TLS serves the management API over HTTPS. Default: none, plain
	// HTTP.
	TLS TLS `yaml:"tls"`

	// Enabled turns the management API on or off. Nil means the default,
	// true. Use IsEnabled to read it.
	Enabled *bool `yaml:"enabled"`

	// RateLimit limits management calls of this process; calls over it get
	// 429 LimitExceededException. Default: no limit.
	RateLimit RateLimit `yaml:"rate_limit"`

	// ReadTimeout bounds the time from a call's first byte until its headers
	// and body have arrived; the connection of a call that takes longer is
	// closed. It must leave time for the largest body (a 10 MB @batch) on
	// the slowest link callers use. Headers alone get the lesser of 10s and
	// ReadTimeout. Default 1m.
	ReadTimeout time.Duration `yaml:"read_timeout"`

	// IdleTimeout closes a keep-alive connection on which no call arrives
	// for this long. Longer than the 90s after which Go's HTTP client (and
	// the AWS SDK) drops idle connections itself, so that the client, not
	// the server, closes first. Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`

	// MaxBodyBytesInFlight bounds the request body bytes all management
	// calls together may be reading or holding at once, reserved by the
	// length each body declares; a call whose body does not fit gets 429
	// LimitExceededException (which the AWS SDK retries) without it being
	// read. At least 10485760, the largest @batch body. Default 67108864
	// (64 MiB).
	MaxBodyBytesInFlight int64 `yaml:"max_body_bytes_in_flight"`

	// Auth names where the bearer tokens of the management API come from.
	// Default none, which is only allowed on a loopback address.
	Auth ManagementAuth `yaml:"auth"`

	// Pprof serves the Go runtime's profiles (net/http/pprof) under
	// /debug/pprof/ on the management listener, behind the same
	// authentication as every other call. Default false: the paths answer
	// 404.
	Pprof bool `yaml:"pprof"`

	// Metrics serves the gateway's Prometheus metrics under /metrics on
	// the management listener, behind the same authentication as every
	// other call. Nil means the default, true. Use MetricsEnabled to read
	// it.
	Metrics *bool `yaml:"metrics"`

	// MessageTail lets management calls tail a connection's messages
	// (PUT /@connections/{id}/tail): the node that holds the connection
	// keeps its last messages, redacted, while an operator watches. A
	// reload may turn it on or off; off stops the open tails. Default
	// false: tail calls answer 403.
	MessageTail bool `yaml:"message_tail"`
	// UI serves the inspector, a web UI for the management API (live
	// connections, message tails, topics, authorizer decisions, cluster
	// nodes), under /ui/ on the management listener. Its page and assets
	// are served without authentication, as they hold no data; every call
	// the page makes carries a bearer token given at its login screen. Nil
	// means the default, true. Use UIEnabled to read it.
	UI *bool `yaml:"ui"`
}

// ManagementAuth names the sources of the management API's bearer tokens.
// It holds names only, never token values; Tokens reads the values.
type ManagementAuth struct {
	// BearerTokensEnv is the name of an environment variable holding one or
	// more tokens separated by commas or whitespace. Default "".
	BearerTokensEnv string `yaml:"bearer_tokens_env"`

	// BearerTokensFile is the path of a file with one token per line; blank
	// lines and lines starting with "#" are ignored. Default "".
	BearerTokensFile string `yaml:"bearer_tokens_file"`

	// SigV4 accepts requests signed with AWS Signature Version 4, so the
	// unmodified AWS SDK management client works. Default off.
	SigV4 SigV4Auth `yaml:"sigv4"`
}

// RegistryType names a registry backend.
type RegistryType string

// The supported registry types.
const (
	// RegistryMemory keeps the registry in this process.
	RegistryMemory RegistryType = "memory"
	// RegistryRedis shares the registry through Redis: several gateway
	// processes serve one API.
	RegistryRedis RegistryType = "redis"
	// RegistryNATS shares the registry through NATS with JetStream.
	RegistryNATS RegistryType = "nats"
)

// Registry selects the registry backend and, for a cluster, how its nodes
// watch each other.
type Registry struct {
	// Type is the backend. Default RegistryMemory.
	Type RegistryType `yaml:"type"`

	// Redis is the Redis server of type redis.
	Redis RedisRegistry `yaml:"redis"`

	// NATS is the NATS server of type nats.
	NATS NATSRegistry `yaml:"nats"`

	// Prefix starts every key, channel, subject and bucket the cluster
	// uses, so that several APIs can share one engine. Default "wsgate".
	Prefix string `yaml:"prefix"`

	// HeartbeatInterval is how often each node heartbeats. Default 1s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`

	// NodeTimeout is how long a node's heartbeat may stand still before the
	// others declare it lost and deliver $disconnect for its connections.
	// It must exceed HeartbeatInterval. Default 5s.
	NodeTimeout time.Duration `yaml:"node_timeout"`

	// Timeout bounds each call to the engine; a management call that needs
	// the engine answers 503 beyond it. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
}

// RedisRegistry locates a Redis server.
type RedisRegistry struct {
	// URL is redis://[user@]host:port[/db] (or rediss:// for TLS).
	// Required for type redis. A password belongs in PasswordEnv.
	URL string `yaml:"url"`

	// PasswordEnv names an environment variable holding the password.
	PasswordEnv string `yaml:"password_env"`
}

// NATSRegistry locates a NATS server with JetStream.
type NATSRegistry struct {
	// URL is nats://host:port, or several separated by commas. Required
	// for type nats.
	URL string `yaml:"url"`

	// TokenEnv names an environment variable holding an authentication
	// token.
	TokenEnv string `yaml:"token_env"`

	// CredentialsFile is a NATS credentials (.creds) file.
	CredentialsFile string `yaml:"credentials_file"`
}

// Log configures the server's log output.
type Log struct {
	// Level is the lowest level logged: debug, info, warn or error.
	// Default "info".
	Level string `yaml:"level"`

	// Format is the output format: text or json. Default "text".
	Format string `yaml:"format"`
}

// AccessLog configures the access log, AWS's stage access logging.
type AccessLog struct {
	// Format lays out each line: a preset (clf, json, xml, csv: the formats
	// the API Gateway console offers) or a format of $context variables,
	// one line of at most 3 KB. Default "": no access log.
	Format string `yaml:"format"`

	// Output is where lines go: stdout, stderr or a file path. A file is
	// appended to and reopened on SIGUSR1. Default "stdout".
	Output string `yaml:"output"`
}

// Enabled reports whether access logging is on: a format is set.
func (a AccessLog) Enabled() bool { return a.Format != "" }

// DefaultYAML is the embedded default configuration, used when wsgate runs
// without a configuration file. Its comments document every key.
//
//go:embed default.yaml
var DefaultYAML []byte

// defaultName is the file name that positions in the embedded default refer
// to.
const defaultName = "default.yaml"

// Default returns the embedded default configuration, parsed and with its
// defaults filled. It never fails: the embedded file is tested to parse and
// validate, and should that ever not hold, Default returns the built-in
// defaults, which are the same values.
func Default() *Config {
	c, err := Parse(defaultName, DefaultYAML)
	if err != nil {
		c = &Config{}
		c.FillDefaults()
	}
	return c
}

// EventStage returns the stage carried by events: Stage, or "$default" when
// Stage is empty.
func (c *Config) EventStage() string {
	if c.Stage == "" {
		return "$default"
	}
	return c.Stage
}

// UpgradePath returns the path at which clients upgrade: "/" when Stage is
// empty and "/{stage}" otherwise.
func (c *Config) UpgradePath() string {
	return "/" + c.Stage
}

// IsEnabled reports whether the management API is on. A nil Enabled means
// the default, on.
func (m Management) IsEnabled() bool {
	return m.Enabled == nil || *m.Enabled
}

// MetricsEnabled reports whether /metrics is served: the management API is
// on and metrics is unset or true.
func (m Management) MetricsEnabled() bool {
	return m.IsEnabled() && (m.Metrics == nil || *m.Metrics)
}

// UIEnabled reports whether the inspector UI is served: the management API
// is on and ui is unset or true.
func (m Management) UIEnabled() bool {
	return m.IsEnabled() && (m.UI == nil || *m.UI)
}

// Loopback reports whether Listen binds only a loopback address: a host in
// 127.0.0.0/8, ::1 or "localhost". An empty host, an unspecified address such
// as 0.0.0.0, any other host and an unparsable Listen are not loopback.
func (m Management) Loopback() bool {
	host, _, err := net.SplitHostPort(m.Listen)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return addr.Unmap().IsLoopback()
}

// HasAuth reports whether a source of bearer tokens is configured.
func (m Management) HasAuth() bool {
	return m.Auth.BearerTokensEnv != "" || m.Auth.BearerTokensFile != "" || m.Auth.SigV4.Configured()
}

// SlogLevel returns Level as a slog.Level. An unknown or empty level is
// slog.LevelInfo; Validate reports unknown levels.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
