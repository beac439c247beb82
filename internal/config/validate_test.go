package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// messages returns the message of each problem joined in err, in order.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	var list []string
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			list = append(list, e.Error())
		}
		return list
	}
	return []string{err.Error()}
}

// checkProblems parses in as wsgate.yaml and compares the problems reported
// with want, in order.
func checkProblems(t *testing.T, in string, want ...string) {
	t.Helper()
	c, err := Parse("wsgate.yaml", []byte(in))
	got := messages(err)
	if !slices.Equal(got, want) {
		t.Errorf("Parse of\n%s\nreported:\n  %s\nwant:\n  %s", in, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if (err == nil) != (c != nil) {
		t.Errorf("Parse returned config %v with error %v; want exactly one of them", c != nil, err)
	}
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		// Top level.
		{"listen without port", `listen: "8080"`,
			[]string{`wsgate.yaml:1: listen: "8080" is not a host:port address such as ":8080" or "127.0.0.1:8080"`}},
		{"listen with named port", `listen: ":http"`,
			[]string{`wsgate.yaml:1: listen: ":http": the port must be a number from 0 to 65535`}},
		{"listen port out of range", `listen: ":70000"`,
			[]string{`wsgate.yaml:1: listen: ":70000": the port must be a number from 0 to 65535`}},
		{"listen on a random port", `listen: "127.0.0.1:0"`, nil},
		{"stage with a space", `stage: "pr od"`,
			[]string{`wsgate.yaml:1: stage: "pr od" must be 1 to 128 characters from A-Z, a-z, 0-9, _ and -`}},
		{"stage $default", `stage: "$default"`,
			[]string{`wsgate.yaml:1: stage: "$default" must be 1 to 128 characters from A-Z, a-z, 0-9, _ and -`}},
		{"stage too long", "stage: " + strings.Repeat("s", 129),
			[]string{`wsgate.yaml:1: stage: "` + strings.Repeat("s", 129) + `" must be 1 to 128 characters from A-Z, a-z, 0-9, _ and -`}},
		{"stage of 128 characters", "stage: " + strings.Repeat("s", 128), nil},
		{"stage of every allowed character", "stage: AZaz09_-", nil},
		{"api_id with a slash", `api_id: "a/b"`,
			[]string{`wsgate.yaml:1: api_id: "a/b" must be 1 to 128 characters from A-Z, a-z, 0-9, _ and -`}},
		{"domain_name with a scheme", `domain_name: "https://ws.example.com"`,
			[]string{`wsgate.yaml:1: domain_name: "https://ws.example.com" must be a host name such as "ws.example.com", without scheme or path`}},
		{"domain_name with a port", `domain_name: "ws.example.com:443"`, nil},
		{"binary_frames unknown", `binary_frames: text`,
			[]string{`wsgate.yaml:1: binary_frames: unknown value "text"; one of reject, base64`}},
		{"binary_frames base64", `binary_frames: base64`, nil},
		{"shutdown_timeout negative", `shutdown_timeout: -1s`,
			[]string{`wsgate.yaml:1: shutdown_timeout: must be greater than 0, got -1s`}},

		// Limits.
		{"frame below 125", "limits:\n  max_frame_bytes: 100",
			[]string{`wsgate.yaml:2: limits.max_frame_bytes: must be at least 125, got 100`}},
		{"frame of 125", "limits:\n  max_frame_bytes: 125", nil},
		{"message above 16 MiB", "limits:\n  max_message_bytes: 16777217\n  outbound_queue_bytes: 33554432",
			[]string{`wsgate.yaml:2: limits.max_message_bytes: must be at most 16777216 (16 MiB), got 16777217`}},
		{"message of 16 MiB", "limits:\n  max_message_bytes: 16777216\n  outbound_queue_bytes: 16777232", nil},
		{"frame above message, frame set", "limits:\n  max_frame_bytes: 200000",
			[]string{`wsgate.yaml:2: limits.max_frame_bytes: must be at most limits.max_message_bytes (131072), got 200000`}},
		{"frame above message, message set", "limits:\n  max_message_bytes: 1000",
			[]string{`wsgate.yaml:2: limits.max_message_bytes: must be at least limits.max_frame_bytes (32768), got 1000`}},
		{"frame above message, both set", "limits:\n  max_message_bytes: 1000\n  max_frame_bytes: 2000",
			[]string{`wsgate.yaml:3: limits.max_frame_bytes: must be at most limits.max_message_bytes (1000), got 2000`}},
		{"frame equal to message", "limits:\n  max_message_bytes: 1000\n  max_frame_bytes: 1000", nil},
		{"message negative", "limits:\n  max_message_bytes: -1",
			[]string{`wsgate.yaml:2: limits.max_message_bytes: must be at least limits.max_frame_bytes (32768), got -1`}},
		{"queue below message + 16, queue set", "limits:\n  outbound_queue_bytes: 131087",
			[]string{`wsgate.yaml:2: limits.outbound_queue_bytes: must be at least limits.max_message_bytes + 16 (131088), got 131087`}},
		{"queue of message + 16", "limits:\n  outbound_queue_bytes: 131088", nil},
		{"queue below message + 16, message set", "limits:\n  max_message_bytes: 2097152",
			[]string{`wsgate.yaml:2: limits.max_message_bytes: must be at most limits.outbound_queue_bytes - 16 (1048560), got 2097152`}},
		{"idle_timeout negative", "limits:\n  idle_timeout: -1s",
			[]string{`wsgate.yaml:2: limits.idle_timeout: must be greater than 0, got -1s`}},
		{"max_connection_duration negative", "limits:\n  max_connection_duration: -2h",
			[]string{`wsgate.yaml:2: limits.max_connection_duration: must be greater than 0, got -2h`}},
		{"ping_interval negative", "limits:\n  ping_interval: -5s",
			[]string{`wsgate.yaml:2: limits.ping_interval: must be greater than 0, got -5s`}},
		{"ping not below idle, ping set", "limits:\n  ping_interval: 10m",
			[]string{`wsgate.yaml:2: limits.ping_interval: must be less than limits.idle_timeout (10m), got 10m`}},
		{"ping not below idle, idle set", "limits:\n  idle_timeout: 20s",
			[]string{`wsgate.yaml:2: limits.idle_timeout: must be greater than limits.ping_interval (30s), got 20s`}},
		{"ping below idle", "limits:\n  idle_timeout: 20s\n  ping_interval: 19s", nil},
		{"handshake_timeout negative", "limits:\n  handshake_timeout: -1ms",
			[]string{`wsgate.yaml:2: limits.handshake_timeout: must be greater than 0, got -1ms`}},
		{"max_connections negative", "limits:\n  max_connections: -1",
			[]string{`wsgate.yaml:2: limits.max_connections: must not be negative (0 means unlimited), got -1`}},
		{"max_connections set", "limits:\n  max_connections: 5", nil},
		{"max_subscriptions_per_connection negative", "limits:\n  max_subscriptions_per_connection: -1",
			[]string{`wsgate.yaml:2: limits.max_subscriptions_per_connection: must be at least 1, got -1`}},
		{"max_subscriptions_per_connection of 1", "limits:\n  max_subscriptions_per_connection: 1", nil},
		{"topic patterns that match topics", `topics: {allow: ["news", "orders/*", "user/{principalId}/*", "*/x/*", ".a/b."]}`, nil},
		{"topic patterns that match no topic", `topics: {allow: ["orders/", "/news", "a//*", "a/./*", "a/..", "` + strings.Repeat("x", 257) + `"]}`,
			[]string{
				`wsgate.yaml:1: topics.allow[0]: "orders/" matches no topic: topic has an empty segment: it starts or ends with / or holds //`,
				`wsgate.yaml:1: topics.allow[1]: "/news" matches no topic: topic has an empty segment: it starts or ends with / or holds //`,
				`wsgate.yaml:1: topics.allow[2]: "a//*" matches no topic: topic has an empty segment: it starts or ends with / or holds //`,
				`wsgate.yaml:1: topics.allow[3]: "a/./*" matches no topic: topic has a "." segment`,
				`wsgate.yaml:1: topics.allow[4]: "a/.." matches no topic: topic has a ".." segment`,
				`wsgate.yaml:1: topics.allow[5]: "` + strings.Repeat("x", 257) + `" matches no topic: topic is 257 bytes; at most 256 are allowed`,
			}},
		{"close_drain_timeout negative", "limits:\n  close_drain_timeout: -1s",
			[]string{`wsgate.yaml:2: limits.close_drain_timeout: must be greater than 0, got -1s`}},
		{"max_inflight_messages negative", "limits:\n  max_inflight_messages: -1",
			[]string{`wsgate.yaml:2: limits.max_inflight_messages: must be greater than 0, got -1`}},
		{"inflight_budget_messages negative", "limits:\n  inflight_budget_messages: -5",
			[]string{`wsgate.yaml:2: limits.inflight_budget_messages: must be greater than 0, got -5`}},
		{"inflight budget smaller than a message", "limits:\n  inflight_budget_bytes: 131071",
			[]string{`wsgate.yaml:2: limits.inflight_budget_bytes: must be at least limits.max_message_bytes (131072), got 131071`}},
		{"inflight budget negative", "limits:\n  inflight_budget_bytes: -1",
			[]string{`wsgate.yaml:2: limits.inflight_budget_bytes: must be at least limits.max_message_bytes (131072), got -1`}},
		{"inflight budget of one message", "limits:\n  inflight_budget_bytes: 131072\n  inflight_budget_messages: 1\n  max_inflight_messages: 1", nil},

		// Routes.
		{"empty route key", "routes:\n  \"\":\n    integration: {type: mock}",
			[]string{`wsgate.yaml:2: routes: empty route key`}},
		{"unknown $ route key", "routes:\n  $conect:\n    integration: {type: mock}",
			[]string{`wsgate.yaml:2: routes.$conect: unknown route key "$conect"; the only keys starting with "$" are $connect, $disconnect and $default`}},
		{"route_response on $connect", "routes:\n  $connect:\n    integration: {type: mock}\n    route_response: true",
			[]string{`wsgate.yaml:4: routes.$connect.route_response: not supported on $connect; only $default and custom routes send a route response`}},
		{"route_response on $disconnect", "routes:\n  $disconnect:\n    integration: {type: mock}\n    route_response: true",
			[]string{`wsgate.yaml:4: routes.$disconnect.route_response: not supported on $disconnect; only $default and custom routes send a route response`}},
		{"route_response false on $connect", "routes:\n  $connect:\n    integration: {type: mock}\n    route_response: false", nil},
		{"route without integration", "routes:\n  chat: {}",
			[]string{`wsgate.yaml:2: routes.chat.integration.type: required; one of http, mock, lambda, nats, redis, amqp, postgres, sqs, sns, eventbridge`}},
		{"integration without type", "routes:\n  chat:\n    integration:\n      timeout: 1s",
			[]string{`wsgate.yaml:3: routes.chat.integration.type: required; one of http, mock, lambda, nats, redis, amqp, postgres, sqs, sns, eventbridge`}},
		{"unknown integration type", "routes:\n  chat:\n    integration:\n      type: grpc",
			[]string{`wsgate.yaml:4: routes.chat.integration.type: unknown integration type "grpc"; supported: http, mock, lambda, nats, redis, amqp, postgres, sqs, sns, eventbridge`}},
		{"http without url", "routes:\n  chat:\n    integration:\n      type: http",
			[]string{`wsgate.yaml:3: routes.chat.integration.url: required for http integrations`}},
		{"http url without scheme", "routes:\n  chat:\n    integration:\n      type: http\n      url: 127.0.0.1:3000/chat",
			[]string{`wsgate.yaml:5: routes.chat.integration.url: "127.0.0.1:3000/chat" must be an absolute http:// or https:// URL`}},
		{"http url of another scheme", "routes:\n  chat:\n    integration:\n      type: http\n      url: ftp://example.com/",
			[]string{`wsgate.yaml:5: routes.chat.integration.url: "ftp://example.com/" must be an absolute http:// or https:// URL`}},
		{"http url without host", "routes:\n  chat:\n    integration:\n      type: http\n      url: http:///chat",
			[]string{`wsgate.yaml:5: routes.chat.integration.url: "http:///chat" must be an absolute http:// or https:// URL`}},
		{"https url", "routes:\n  chat:\n    integration:\n      type: http\n      url: https://example.com/chat", nil},
		{"http header name with a space", "routes:\n  chat:\n    integration:\n      type: http\n      url: http://h/\n      headers:\n        Bad Name: x",
			[]string{`wsgate.yaml:7: routes.chat.integration.headers.Bad Name: "Bad Name" is not a valid header name`}},
		{"http header value with a newline", "routes:\n  chat:\n    integration:\n      type: http\n      url: http://h/\n      headers:\n        X-Key: \"secret\\r\\nX-Other: 1\"",
			[]string{`wsgate.yaml:7: routes.chat.integration.headers.X-Key: a header value must not contain CR, LF or NUL`}},
		{"http headers", "routes:\n  chat:\n    integration:\n      type: http\n      url: http://h/\n      headers: {X-Api-Key: abc, X-Empty: ''}", nil},
		{"http with status_code and body", "routes:\n  chat:\n    integration:\n      type: http\n      url: http://h/\n      status_code: 200\n      body: ok",
			[]string{
				`wsgate.yaml:6: routes.chat.integration.status_code: only used by mock integrations`,
				`wsgate.yaml:7: routes.chat.integration.body: only used by mock integrations`,
			}},
		{"mock with url and headers", "routes:\n  chat:\n    integration:\n      type: mock\n      url: http://h/\n      headers: {X-A: b}",
			[]string{
				`wsgate.yaml:5: routes.chat.integration.url: only used by http integrations`,
				`wsgate.yaml:6: routes.chat.integration.headers: only used by http integrations`,
			}},
		{"mock status_code below 100", "routes:\n  chat:\n    integration:\n      type: mock\n      status_code: 99",
			[]string{`wsgate.yaml:5: routes.chat.integration.status_code: must be from 100 to 599, got 99`}},
		{"mock status_code above 599", "routes:\n  chat:\n    integration:\n      type: mock\n      status_code: 600",
			[]string{`wsgate.yaml:5: routes.chat.integration.status_code: must be from 100 to 599, got 600`}},
		{"mock status_code bounds", "routes:\n  a: {integration: {type: mock, status_code: 100}}\n  b: {integration: {type: mock, status_code: 599}}", nil},
		{"mock with empty body", "routes:\n  chat:\n    integration: {type: mock, body: ''}", nil},
		{"timeout below 50ms", "routes:\n  chat:\n    integration:\n      type: mock\n      timeout: 49ms",
			[]string{`wsgate.yaml:5: routes.chat.integration.timeout: must be from 50ms to 29s, got 49ms`}},
		{"timeout above 29s", "routes:\n  chat:\n    integration:\n      type: mock\n      timeout: 30s",
			[]string{`wsgate.yaml:5: routes.chat.integration.timeout: must be from 50ms to 29s, got 30s`}},
		{"timeout bounds", "routes:\n  a: {integration: {type: mock, timeout: 50ms}}\n  b: {integration: {type: mock, timeout: 29s}}", nil},

		// Management.
		{"management listen off", "management:\n  listen: \"off\"",
			[]string{`wsgate.yaml:2: management.listen: "off" is not an address; to turn the management API off, set management.enabled: false`}},
		{"management listen empty", "management:\n  listen: \"\"",
			[]string{`wsgate.yaml:2: management.listen: empty address; to turn the management API off, set management.enabled: false`}},
		{"management listen without port", "management:\n  listen: \"9090\"",
			[]string{`wsgate.yaml:2: management.listen: "9090" is not a host:port address such as ":8080" or "127.0.0.1:8080"`}},
		{"management listen same as listen, management set", "management:\n  listen: \"127.0.0.1:8080\"",
			[]string{`wsgate.yaml:2: management.listen: "127.0.0.1:8080" uses the same port as listen (":8080"); the management API needs its own`}},
		{"management listen same as listen, listen set", "listen: \"localhost:9090\"",
			[]string{`wsgate.yaml:1: listen: "localhost:9090" uses the same port as management.listen ("127.0.0.1:9090"); the management API needs its own`}},
		{"management on another host, same port", "listen: \"127.0.0.1:9090\"\nmanagement:\n  listen: \"127.0.0.2:9090\"", nil},
		{"management disabled on listen's port", "management:\n  listen: \"127.0.0.1:8080\"\n  enabled: false", nil},
		{"management on all interfaces without auth", "management:\n  listen: \":9090\"",
			[]string{`wsgate.yaml:2: management.listen: non-loopback address requires management.auth; set management.auth.bearer_tokens_env or management.auth.bearer_tokens_file, or listen on 127.0.0.1`}},
		{"management on another host without auth", "management:\n  listen: \"10.0.0.5:9090\"",
			[]string{`wsgate.yaml:2: management.listen: non-loopback address requires management.auth; set management.auth.bearer_tokens_env or management.auth.bearer_tokens_file, or listen on 127.0.0.1`}},
		{"management read_timeout negative", "management:\n  read_timeout: -1s",
			[]string{`wsgate.yaml:2: management.read_timeout: must be greater than 0, got -1s`}},
		{"management idle_timeout negative", "management:\n  idle_timeout: -1s",
			[]string{`wsgate.yaml:2: management.idle_timeout: must be greater than 0, got -1s`}},
		{"management body budget below a batch", "management:\n  max_body_bytes_in_flight: 10485759",
			[]string{`wsgate.yaml:2: management.max_body_bytes_in_flight: must be at least 10485760, the largest @batch body, got 10485759`}},
		{"management body budget of one batch", "management:\n  max_body_bytes_in_flight: 10485760", nil},
		{"management on all interfaces with env auth", "management:\n  listen: \":9090\"\n  auth: {bearer_tokens_env: WSGATE_MGMT_TOKEN}", nil},
		{"management on all interfaces with file auth", "management:\n  listen: \":9090\"\n  auth: {bearer_tokens_file: /etc/wsgate/tokens}", nil},
		{"management disabled on all interfaces without auth", "management:\n  listen: \":9090\"\n  enabled: false", nil},
		{"management on ::1 without auth", "management:\n  listen: \"[::1]:9090\"", nil},
		{"pprof on", "management:\n  pprof: true", nil},
		{"metrics off", "management:\n  metrics: false", nil},
		{"metrics unset with the management API off", "management:\n  enabled: false", nil},
		{"metrics with the management API off", "management:\n  enabled: false\n  metrics: true",
			[]string{`wsgate.yaml:3: management.metrics: is served on the management listener, which management.enabled: false turns off; set metrics: false or leave it out`}},
		{"ui off", "management:\n  ui: false", nil},
		{"ui with the management API off", "management:\n  enabled: false\n  ui: true",
			[]string{`wsgate.yaml:3: management.ui: is served on the management listener, which management.enabled: false turns off; set ui: false or leave it out`}},
		{"pprof off with the management API off", "management:\n  enabled: false\n  pprof: false", nil},
		{"message tails on", "management:\n  message_tail: true", nil},
		{"message tails with the management API off", "management:\n  enabled: false\n  message_tail: true",
			[]string{`wsgate.yaml:3: management.message_tail: tails are read through the management API, which management.enabled: false turns off`}},
		{"pprof with the management API off", "management:\n  enabled: false\n  pprof: true",
			[]string{`wsgate.yaml:3: management.pprof: is served on the management listener, which management.enabled: false turns off`}},
		{"bearer_tokens_env holding a token", "management:\n  auth:\n    bearer_tokens_env: \"s3cr3t-t0ken.value\"",
			[]string{`wsgate.yaml:3: management.auth.bearer_tokens_env: must be the name of an environment variable (letters, digits and _), not a token`}},

		// Registry and log.
		{"registry redis without url", "registry:\n  type: redis",
			[]string{`wsgate.yaml:1: registry.redis.url: required for registry type redis, e.g. redis://127.0.0.1:6379/0`}},
		{"registry redis", "registry:\n  type: redis\n  redis: {url: \"redis://127.0.0.1:6379/0\"}", nil},
		{"registry redis url scheme", "registry:\n  type: redis\n  redis:\n    url: http://x:1",
			[]string{`wsgate.yaml:4: registry.redis.url: must start with redis:// or rediss://`}},
		{"registry redis password in url", "registry:\n  type: redis\n  redis:\n    url: redis://:s3cret@x:1",
			[]string{`wsgate.yaml:4: registry.redis.url: holds a password; put it in the environment variable registry.redis.password_env names`}},
		{"registry nats without url", "registry:\n  type: nats",
			[]string{`wsgate.yaml:1: registry.nats.url: required for registry type nats, e.g. nats://127.0.0.1:4222`}},
		{"registry nats", "registry:\n  type: nats\n  nats: {url: \"nats://a:4222, nats://b:4222\"}", nil},
		{"registry nats url", "registry:\n  type: nats\n  nats:\n    url: a:4222",
			[]string{`wsgate.yaml:4: registry.nats.url: "a:4222" must be a URL such as nats://127.0.0.1:4222`}},
		{"registry prefix", "registry:\n  prefix: a.b",
			[]string{`wsgate.yaml:2: registry.prefix: "a.b" must be 1 to 32 letters, digits, - and _`}},
		{"registry node timeout", "registry:\n  heartbeat_interval: 2s\n  node_timeout: 3s",
			[]string{`wsgate.yaml:3: registry.node_timeout: 3s must be more than twice registry.heartbeat_interval (2s)`}},
		{"registry unknown", "registry:\n  type: etcd",
			[]string{`wsgate.yaml:2: registry.type: unknown registry type "etcd"; one of memory, redis, nats`}},
		{"log level unknown", "log:\n  level: verbose",
			[]string{`wsgate.yaml:2: log.level: unknown level "verbose"; one of debug, info, warn, error`}},
		{"log format unknown", "log:\n  format: xml",
			[]string{`wsgate.yaml:2: log.format: unknown format "xml"; one of text, json`}},
		{"log debug json", "log: {level: debug, format: json}", nil},

		// Many problems are all reported, ordered by line.
		{"every problem", "log:\n  level: loud\nlisten: nowhere\nlimits:\n  max_connections: -3\nstage: \"a b\"",
			[]string{
				`wsgate.yaml:2: log.level: unknown level "loud"; one of debug, info, warn, error`,
				`wsgate.yaml:3: listen: "nowhere" is not a host:port address such as ":8080" or "127.0.0.1:8080"`,
				`wsgate.yaml:5: limits.max_connections: must not be negative (0 means unlimited), got -3`,
				`wsgate.yaml:6: stage: "a b" must be 1 to 128 characters from A-Z, a-z, 0-9, _ and -`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.in, tt.want...)
		})
	}
}

func TestValidateTokenNotEchoed(t *testing.T) {
	_, err := Parse("wsgate.yaml", []byte("management:\n  auth:\n    bearer_tokens_env: \"s3cr3t-t0ken.value\""))
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("Parse error = %v; want an error that does not contain the value", err)
	}
}

func TestValidateHandBuilt(t *testing.T) {
	var zero Config
	if err := zero.Validate(); err != nil {
		t.Errorf("zero Config: Validate() = %v; want nil, zero fields mean defaults", err)
	}
	if zero.Routes != nil || zero.Listen != "" || zero.Management.Enabled != nil {
		t.Errorf("Validate changed its receiver: %+v", zero)
	}

	c := Config{
		Limits: Limits{MaxFrameBytes: 100},
		Routes: map[string]Route{"$connect": {Integration: Integration{Type: IntegrationHTTP}}},
	}
	got := messages(c.Validate())
	want := []string{
		"limits.max_frame_bytes: must be at least 125, got 100",
		"routes.$connect.integration.url: required for http integrations",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Validate() = %q; want %q", got, want)
	}
	if c.Routes["$connect"].Integration.Timeout != 0 {
		t.Errorf("Validate filled a default into the receiver's routes")
	}
}

func TestValidateErrorsAreErrorValues(t *testing.T) {
	_, err := Parse("wsgate.yaml", []byte("stage: x\nlisten: nowhere\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *Error) = false", err)
	}
	want := Error{File: "wsgate.yaml", Line: 2, Path: "listen", Msg: `"nowhere" is not a host:port address such as ":8080" or "127.0.0.1:8080"`}
	if *e != want {
		t.Errorf("first *Error = %+v; want %+v", *e, want)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Path: "a.b", Msg: "bad"}, "f.yaml:3: a.b: bad"},
		{Error{File: "f.yaml", Path: "a.b", Msg: "bad"}, "f.yaml: a.b: bad"},
		{Error{File: "f.yaml", Line: 3, Msg: "bad"}, "f.yaml:3: bad"},
		{Error{Line: 3, Path: "a", Msg: "bad"}, "line 3: a: bad"},
		{Error{Path: "a", Msg: "bad"}, "a: bad"},
		{Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q; want %q", tt.err, got, tt.want)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	tests := map[string]string{
		"10m": "10m", "2h": "2h", "2h30m": "2h30m", "90s": "1m30s", "30s": "30s",
		"50ms": "50ms", "1h0m1s": "1h0m1s", "-1s": "-1s", "0s": "0s",
	}
	for in, want := range tests {
		d, err := time.ParseDuration(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%s) = %q; want %q", in, got, want)
		}
	}
}

// TestLocalLambdaKeys checks the keys of a local function: build and its
// siblings, and the ranges Lambda allows.
func TestLocalLambdaKeys(t *testing.T) {
	route := func(lambda string) string {
		return "routes:\n  $default:\n    integration:\n      type: lambda\n      lambda: " + lambda + "\n"
	}
	checkProblems(t, route("{build: ./fn, name: fn, timeout: 3s, memory_size: 256}"))
	checkProblems(t, route("{build: ./fn, command: ./bin/fn}"),
		"wsgate.yaml:5: routes.$default.integration.lambda: set one of command (a local program), build (a Go package run locally) and function_name (the Invoke API)")
	checkProblems(t, route("{build: ./fn, timeout: 500ms}"),
		"wsgate.yaml:5: routes.$default.integration.lambda.timeout: must be from 1s to 15m (Lambda's), got 500ms")
	checkProblems(t, route("{build: ./fn, timeout: 16m}"),
		"wsgate.yaml:5: routes.$default.integration.lambda.timeout: must be from 1s to 15m (Lambda's), got 16m0s")
	checkProblems(t, route("{build: ./fn, memory_size: 64}"),
		"wsgate.yaml:5: routes.$default.integration.lambda.memory_size: must be from 128 to 10240 MB (Lambda's), got 64")
	checkProblems(t, route("{function_name: fn, timeout: 3s}"),
		"wsgate.yaml:5: routes.$default.integration.lambda.name: name, timeout and memory_size are for command and build")
}
