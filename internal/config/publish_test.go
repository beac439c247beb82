package config

import (
	"strconv"
	"strings"
	"testing"
)

// chatRoute is a config with one route "chat" whose integration section is
// the given lines, indented below "integration:" (line 3), so the first of
// them is on line 4.
func chatRoute(lines ...string) string {
	return "routes:\n  chat:\n    integration:\n      " + strings.Join(lines, "\n      ")
}

func TestValidatePublishingIntegrations(t *testing.T) {
	const p = "wsgate.yaml:%d: routes.chat.integration."
	at := func(line int, rest string) string {
		return strings.Replace(p, "%d", strconv.Itoa(line), 1) + rest
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		// nats
		{"nats", chatRoute("type: nats", "url: nats://127.0.0.1:4222", "subject: chat.{principalId}"), nil},
		{"nats everything", chatRoute("type: nats", "url_env: NATS_URL", "subject: 'orders.{authorizer.tenant}.{body.items[0].id}'",
			"jetstream: true", "declare: true", "stream: ORDERS", "token_env: NATS_TOKEN", "payload: body", "timeout: 5s"), nil},
		{"nats credentials file", chatRoute("type: nats", "url: 'nats://a:4222,nats://b:4222'", "subject: s", "credentials_file: /etc/wsgate/nats.creds"), nil},
		{"nats without url and subject", chatRoute("type: nats"), []string{
			at(3, "url: required for nats integrations (or url_env), e.g. nats://127.0.0.1:4222"),
			at(3, "subject: required for nats integrations, e.g. chat.{routeKey}"),
		}},
		{"nats url and url_env", chatRoute("type: nats", "url: nats://h:4222", "url_env: NATS_URL", "subject: s"), []string{
			at(5, "url: set url or url_env, not both"),
		}},
		{"nats url not a url", chatRoute("type: nats", "url: 'h:4222'", "subject: s"), []string{
			at(5, "url: is not a URL such as nats://127.0.0.1:4222 (several separated by commas)"),
		}},
		{"nats url with a password", chatRoute("type: nats", "url: 'nats://u:s3cret@h:4222'", "subject: s"), []string{
			at(5, "url: holds credentials; put a token in the environment variable token_env names, or use credentials_file"),
		}},
		{"nats url_env holding a URL", chatRoute("type: nats", "url_env: 'nats://h:4222'", "subject: s"), []string{
			at(5, "url_env: must be the name of an environment variable (letters, digits and _), not its value"),
		}},
		{"nats token and credentials", chatRoute("type: nats", "url: nats://h:4222", "subject: s", "token_env: T", "credentials_file: c.creds"), []string{
			at(7, "token_env: set token_env or credentials_file, not both"),
		}},
		{"nats subject with a wildcard", chatRoute("type: nats", "url: nats://h:4222", "subject: 'chat.>'"), []string{
			at(6, `subject: "chat.>" holds a wildcard; messages are published to one subject`),
		}},
		{"nats subject with an empty token", chatRoute("type: nats", "url: nats://h:4222", "subject: 'chat..{routeKey}'"), []string{
			at(6, `subject: "chat..x" has an empty token (a leading, trailing or double dot)`),
		}},
		{"nats subject with an unknown placeholder", chatRoute("type: nats", "url: nats://h:4222", "subject: 'chat.{user}'"), []string{
			at(6, "subject: unknown placeholder {user}; one of {connectionId}, {routeKey}, {principalId}, {authorizer.KEY}, {body.PATH} (write {{ and }} for literal braces)"),
		}},
		{"nats subject with an unterminated placeholder", chatRoute("type: nats", "url: nats://h:4222", "subject: 'chat.{body.room'"), []string{
			at(6, "subject: unterminated placeholder at offset 5 (write {{ for a literal brace)"),
		}},
		{"nats declare without jetstream", chatRoute("type: nats", "url: nats://h:4222", "subject: s", "declare: true", "stream: S"), []string{
			at(7, "declare: only with jetstream: true (core NATS has no streams)"),
		}},
		{"nats declare without stream", chatRoute("type: nats", "url: nats://h:4222", "subject: s", "jetstream: true", "declare: true"), []string{
			at(3, "stream: required with declare: true: the name of the JetStream stream to create"),
		}},
		{"nats stream without declare", chatRoute("type: nats", "url: nats://h:4222", "subject: s", "jetstream: true", "stream: S"), []string{
			at(8, "stream: only used with declare: true; without it the stream that captures the subject must exist"),
		}},
		{"nats stream name", chatRoute("type: nats", "url: nats://h:4222", "subject: s", "jetstream: true", "declare: true", "stream: 'a.b'"), []string{
			at(9, `stream: "a.b" must be 1 to 255 letters, digits, - and _`),
		}},
		{"nats unknown payload", chatRoute("type: nats", "url: nats://h:4222", "subject: s", "payload: raw"), []string{
			at(7, `payload: unknown payload "raw"; one of event (the AWS event JSON), body (the client's message alone)`),
		}},
		{"nats with redis and http keys", chatRoute("type: nats", "url: nats://h:4222", "subject: s", "channel: c", "maxlen: 5", "password_env: P", "headers: {X-A: b}", "status_code: 200"), []string{
			at(7, "channel: only used by redis integrations"),
			at(8, "maxlen: only used by redis integrations"),
			at(9, "password_env: only used by redis integrations"),
			at(10, "headers: only used by http integrations"),
			at(11, "status_code: only used by mock integrations"),
		}},
		{"nats misspelt key", chatRoute("type: nats", "url: nats://h:4222", "subject: s", "jetsream: true"), []string{
			`wsgate.yaml:7: unknown key "jetsream" in routes.chat.integration; did you mean "jetstream"?`,
		}},

		// http2
		{"http http2", chatRoute("type: http", "url: http://127.0.0.1:3000/chat", "http2: true"), nil},
		{"mock http2", chatRoute("type: mock", "http2: true"), []string{
			at(5, "http2: only used by http integrations"),
		}},
		{"nats http2", chatRoute("type: nats", "url: nats://h:4222", "subject: s", "http2: false"), []string{
			at(7, "http2: only used by http integrations"),
		}},

		// redis
		{"redis stream", chatRoute("type: redis", "url: redis://127.0.0.1:6379/0", "stream: 'chat:{principalId}'", "maxlen: 10000", "payload: body", "password_env: REDIS_PASSWORD"), nil},
		{"redis channel", chatRoute("type: redis", "url: rediss://h:6380", "channel: 'room:{body.room}'"), nil},
		{"redis without url and destination", chatRoute("type: redis"), []string{
			at(3, "url: required for redis integrations, e.g. redis://127.0.0.1:6379/0"),
			at(3, "stream: required for redis integrations: set stream (XADD) or channel (PUBLISH)"),
		}},
		{"redis stream and channel", chatRoute("type: redis", "url: redis://h:1", "stream: s", "channel: c"), []string{
			at(6, "stream: set stream (XADD) or channel (PUBLISH), not both"),
		}},
		{"redis url scheme", chatRoute("type: redis", "url: http://h:1", "stream: s"), []string{
			at(5, "url: must start with redis:// or rediss://"),
		}},
		{"redis url with a password", chatRoute("type: redis", "url: 'redis://:s3cret@h:1'", "stream: s"), []string{
			at(5, "url: holds a password; put it in the environment variable routes.chat.integration.password_env names"),
		}},
		{"redis negative maxlen", chatRoute("type: redis", "url: redis://h:1", "stream: s", "maxlen: -1"), []string{
			at(7, "maxlen: must not be negative (0 means no trimming), got -1"),
		}},
		{"redis channel with maxlen and body", chatRoute("type: redis", "url: redis://h:1", "channel: c", "maxlen: 5", "payload: body"), []string{
			at(7, "maxlen: trims a stream; a channel keeps nothing"),
			at(8, "payload: a channel message has no fields to carry the connectionId beside the body; use payload: event, or a stream"),
		}},
		{"redis bad placeholder", chatRoute("type: redis", "url: redis://h:1", "stream: 's:{body}'"), []string{
			at(6, "stream: unknown placeholder {body}; one of {connectionId}, {routeKey}, {principalId}, {authorizer.KEY}, {body.PATH} (write {{ and }} for literal braces)"),
		}},
		{"redis with nats keys", chatRoute("type: redis", "url: redis://h:1", "stream: s", "subject: x", "jetstream: true", "url_env: U", "token_env: T", "credentials_file: f", "declare: true", "body: ok", "lambda: {command: ./x}"), []string{
			at(7, "subject: only used by nats integrations"),
			at(8, "jetstream: only used by nats integrations"),
			at(9, "url_env: only used by nats and amqp integrations"),
			at(10, "token_env: only used by nats integrations"),
			at(11, "credentials_file: only used by nats integrations"),
			at(12, "declare: only used by nats and amqp integrations"),
			at(13, "body: only used by mock integrations"),
			at(14, "lambda: only used by lambda integrations"),
		}},

		// The publishing keys on the other types.
		{"http with publishing keys", chatRoute("type: http", "url: http://h/", "subject: s", "stream: x", "payload: body", "jetstream: false"), []string{
			at(6, "subject: only used by nats integrations"),
			at(7, "stream: only used by nats and redis integrations"),
			at(9, "jetstream: only used by nats integrations"),
		}},
		{"mock with channel", chatRoute("type: mock", "channel: c"), []string{
			at(5, "channel: only used by redis integrations"),
		}},
		{"nats on $connect and $disconnect", "routes:\n  $connect: {integration: {type: nats, url: 'nats://h:1', subject: connects, jetstream: true}}\n  $disconnect: {integration: {type: redis, url: 'redis://h:1', stream: disconnects}}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.in, tt.want...)
		})
	}
}

func TestPublishingDefaults(t *testing.T) {
	c, err := Parse("wsgate.yaml", []byte(chatRoute("type: nats", "url: nats://h:1", "subject: s")))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Routes["chat"].Integration
	if in.Payload != PayloadEvent || in.Timeout.String() != "29s" || in.JetStream || in.Declare {
		t.Errorf("defaults: %+v", in)
	}
}
