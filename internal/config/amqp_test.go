package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestValidateAMQPIntegration(t *testing.T) {
	at := func(line int, rest string) string {
		return "wsgate.yaml:" + strconv.Itoa(line) + ": routes.chat.integration." + rest
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"default exchange", chatRoute("type: amqp", "url: amqp://127.0.0.1:5672/", "routing_key: orders"), nil},
		{"default exchange written", chatRoute("type: amqp", "url: amqps://broker.example.com/prod", "exchange: ''", "routing_key: orders"), nil},
		{"everything", chatRoute("type: amqp", "url_env: AMQP_URL", "exchange: billing.v1", "declare: true", "exchange_type: fanout",
			"routing_key: 'invoices.{authorizer.tenant}.{body.items[0].id}'", "payload: body", "timeout: 5s"), nil},
		{"a user without a password", chatRoute("type: amqp", "url: 'amqp://wsgate@h:5672/%2f'", "routing_key: k"), []string{
			at(5, "url: names a user without a password; put the whole URL, with the password, in an environment variable and name it in url_env instead"),
		}},
		{"without url and routing_key", chatRoute("type: amqp"), []string{
			at(3, "url: required for amqp integrations (or url_env), e.g. amqp://127.0.0.1:5672/"),
			at(3, "routing_key: required for amqp integrations, e.g. orders.{principalId} (with the default exchange, the queue's name)"),
		}},
		{"url and url_env", chatRoute("type: amqp", "url: amqp://h/", "url_env: AMQP_URL", "routing_key: k"), []string{
			at(5, "url: set url or url_env, not both"),
		}},
		{"url of another scheme", chatRoute("type: amqp", "url: 'http://h:5672/'", "routing_key: k"), []string{
			at(5, "url: must start with amqp:// or amqps://"),
		}},
		{"url without host", chatRoute("type: amqp", "url: 'amqp:///vhost'", "routing_key: k"), []string{
			at(5, "url: is not a URL such as amqp://127.0.0.1:5672/ (a vhost after the slash)"),
		}},
		{"url not parsed", chatRoute("type: amqp", "url: 'amqp://u:s3cret@h:5672/%zz'", "routing_key: k"), []string{
			at(5, "url: is not a URL such as amqp://127.0.0.1:5672/ (a vhost after the slash)"),
		}},
		{"url with a password", chatRoute("type: amqp", "url: 'amqp://wsgate:s3cret@h:5672/'", "routing_key: k"), []string{
			at(5, "url: holds a password; put the whole URL in an environment variable and name it in url_env instead"),
		}},
		{"url_env holding a URL", chatRoute("type: amqp", "url_env: 'amqp://h/'", "routing_key: k"), []string{
			at(5, "url_env: must be the name of an environment variable (letters, digits and _), not its value"),
		}},
		{"exchange name", chatRoute("type: amqp", "url: amqp://h/", "exchange: 'bad name'", "routing_key: k"), []string{
			at(6, `exchange: "bad name" must be at most 255 letters, digits, -, _, . and :`),
		}},
		{"exchange name too long", chatRoute("type: amqp", "url: amqp://h/", "exchange: "+strings.Repeat("x", 256), "routing_key: k"), []string{
			at(6, `exchange: "`+strings.Repeat("x", 256)+`" must be at most 255 letters, digits, -, _, . and :`),
		}},
		{"declare the default exchange", chatRoute("type: amqp", "url: amqp://h/", "declare: true", "routing_key: k"), []string{
			at(6, `declare: declares the exchange named by exchange; the default exchange ("") always exists and cannot be declared`),
		}},
		{"declare a reserved exchange", chatRoute("type: amqp", "url: amqp://h/", "exchange: amq.topic", "declare: true", "routing_key: k"), []string{
			at(6, `exchange: "amq.topic": names starting with amq. are reserved to the broker and cannot be declared`),
		}},
		{"a reserved exchange without declare", chatRoute("type: amqp", "url: amqp://h/", "exchange: amq.topic", "routing_key: k"), nil},
		{"exchange_type without declare", chatRoute("type: amqp", "url: amqp://h/", "exchange: x", "exchange_type: topic", "routing_key: k"), []string{
			at(7, "exchange_type: only used with declare: true; without it wsgate declares nothing and the exchange must exist"),
		}},
		{"unknown exchange_type", chatRoute("type: amqp", "url: amqp://h/", "exchange: x", "declare: true", "exchange_type: x-delayed", "routing_key: k"), []string{
			at(8, `exchange_type: unknown exchange type "x-delayed"; one of direct, fanout, topic, headers`),
		}},
		{"routing_key with an unknown placeholder", chatRoute("type: amqp", "url: amqp://h/", "routing_key: 'k.{user}'"), []string{
			at(6, "routing_key: unknown placeholder {user}; one of {connectionId}, {routeKey}, {principalId}, {authorizer.KEY}, {body.PATH} (write {{ and }} for literal braces)"),
		}},
		{"routing_key with an unterminated placeholder", chatRoute("type: amqp", "url: amqp://h/", "routing_key: 'k.{body.room'"), []string{
			at(6, "routing_key: unterminated placeholder at offset 2 (write {{ for a literal brace)"),
		}},
		{"routing_key too long", chatRoute("type: amqp", "url: amqp://h/", "routing_key: "+strings.Repeat("k", 256)), []string{
			at(6, "routing_key: is 256 bytes long; a routing key holds at most 255"),
		}},
		{"unknown payload", chatRoute("type: amqp", "url: amqp://h/", "routing_key: k", "payload: raw"), []string{
			at(7, `payload: unknown payload "raw"; one of event (the AWS event JSON), body (the client's message alone)`),
		}},
		{"timeout", chatRoute("type: amqp", "url: amqp://h/", "routing_key: k", "timeout: 30s"), []string{
			at(7, "timeout: must be from 50ms to 29s, got 30s"),
		}},
		{"other types' keys", chatRoute("type: amqp", "url: amqp://h/", "routing_key: k", "subject: s", "jetstream: true", "stream: s",
			"channel: c", "maxlen: 5", "password_env: P", "token_env: T", "credentials_file: f", "headers: {X-A: b}", "status_code: 200", "body: ok", "lambda: {command: ./x}"), []string{
			at(7, "subject: only used by nats integrations"),
			at(8, "jetstream: only used by nats integrations"),
			at(9, "stream: only used by nats and redis integrations"),
			at(10, "channel: only used by redis integrations"),
			at(11, "maxlen: only used by redis integrations"),
			at(12, "password_env: only used by redis integrations"),
			at(13, "token_env: only used by nats integrations"),
			at(14, "credentials_file: only used by nats integrations"),
			at(15, "headers: only used by http integrations"),
			at(16, "status_code: only used by mock integrations"),
			at(17, "body: only used by mock integrations"),
			at(18, "lambda: only used by lambda integrations"),
		}},
		{"amqp keys on other types", chatRoute("type: nats", "url: nats://h:4222", "subject: s", "exchange: x", "routing_key: k", "exchange_type: topic"), []string{
			at(7, "exchange: only used by amqp integrations"),
			at(8, "routing_key: only used by amqp integrations"),
			at(9, "exchange_type: only used by amqp integrations"),
		}},
		{"an empty exchange on http", chatRoute("type: http", "url: http://h/", "exchange: ''"), []string{
			at(6, "exchange: only used by amqp integrations"),
		}},
		{"misspelt key", chatRoute("type: amqp", "url: amqp://h/", "routing_key: k", "routingkey: k"), []string{
			`wsgate.yaml:7: unknown key "routingkey" in routes.chat.integration; did you mean "routing_key"?`,
		}},
		{"$connect and $disconnect", "routes:\n  $connect: {integration: {type: amqp, url: 'amqp://h/', routing_key: connects}}\n  $disconnect: {integration: {type: amqp, url: 'amqp://h/', exchange: events, routing_key: '{routeKey}'}}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.in, tt.want...)
		})
	}
}

func TestAMQPDefaults(t *testing.T) {
	c, err := Parse("wsgate.yaml", []byte(chatRoute("type: amqp", "url: amqp://h/", "exchange: x", "declare: true", "routing_key: k")))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Routes["chat"].Integration
	if in.Payload != PayloadEvent || in.Timeout.String() != "29s" || in.ExchangeType != "topic" {
		t.Errorf("defaults: %+v", in)
	}
	c, err = Parse("wsgate.yaml", []byte(chatRoute("type: amqp", "url: amqp://h/", "routing_key: k")))
	if err != nil {
		t.Fatal(err)
	}
	if in := c.Routes["chat"].Integration; in.Exchange != "" || in.ExchangeType != "" || in.Declare {
		t.Errorf("defaults without declare: %+v", in)
	}
}
