package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestValidateAWSPublishingIntegrations(t *testing.T) {
	const p = "wsgate.yaml:%d: routes.chat.integration."
	at := func(line int, rest string) string {
		return strings.Replace(p, "%d", strconv.Itoa(line), 1) + rest
	}
	const (
		queue = "queue_url: https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
		fifo  = "queue_url: https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo"
		local = "endpoint: http://127.0.0.1:4566"
		key   = "access_key_id: AKIAIOSFODNN7EXAMPLE"
		env   = "secret_access_key_env: AWS_SECRET_ACCESS_KEY"
		topic = "topic_arn: arn:aws:sns:eu-west-1:123456789012:orders"
	)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		// sqs
		{"sqs", chatRoute("type: sqs", queue, "region: eu-west-1", key, env, "session_token_env: AWS_SESSION_TOKEN"), nil},
		{"sqs fifo local unsigned", chatRoute("type: sqs", local, fifo, "message_group_id: '{authorizer.tenant}-{principalId}'", "payload: body", "timeout: 5s"), nil},
		{"sqs standard queue with a group", chatRoute("type: sqs", local, queue, "message_group_id: '{principalId}'"), nil},
		{"sqs without queue and credentials", chatRoute("type: sqs"), []string{
			at(3, "access_key_id: required to reach AWS, which refuses unsigned requests (with secret_access_key_env, or credentials: environment for AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); only a local endpoint may take unsigned ones"),
			at(3, "queue_url: required for sqs integrations, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/orders"),
		}},
		{"sqs fifo without group", chatRoute("type: sqs", local, fifo), []string{
			at(3, "message_group_id: required for a FIFO queue, e.g. {principalId}"),
		}},
		{"sqs queue url not one", chatRoute("type: sqs", local, "queue_url: https://h/orders"), []string{
			at(6, `queue_url: "https://h/orders" is not a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/orders`),
		}},
		{"sqs queue url with a placeholder", chatRoute("type: sqs", local, "queue_url: 'https://h/123456789012/{principalId}'"), []string{
			at(6, "queue_url: placeholders are not supported here; a route sends to one queue"),
		}},
		{"sqs bad group", chatRoute("type: sqs", local, fifo, "message_group_id: 'a b{principalId}'"), []string{
			at(7, "message_group_id: must be at most 128 letters, digits and punctuation marks"),
		}},
		{"sqs unknown placeholder in group", chatRoute("type: sqs", local, fifo, "message_group_id: '{user}'"), []string{
			at(7, "message_group_id: unknown placeholder {user}; one of {connectionId}, {routeKey}, {principalId}, {authorizer.KEY}, {body.PATH} (write {{ and }} for literal braces)"),
		}},
		{"sqs credentials from the environment", chatRoute("type: sqs", queue, "credentials: environment"), nil},
		{"sqs credentials from the environment, local endpoint", chatRoute("type: sqs", local, queue, "credentials: environment"), nil},
		{"sqs credentials not environment", chatRoute("type: sqs", queue, "credentials: instance"), []string{
			at(6, `credentials: "instance": the only value is environment`),
		}},
		{"sqs credentials from the environment and keys", chatRoute("type: sqs", queue, "credentials: environment", key, env, "session_token_env: T"), []string{
			at(6, "credentials: environment takes the keys from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; drop access_key_id, secret_access_key_env and session_token_env, or this key"),
		}},
		{"credentials on http", chatRoute("type: http", "url: http://h/", "credentials: environment"), []string{
			at(6, "credentials: only used by sqs, sns and eventbridge integrations"),
		}},
		{"sqs credentials half set", chatRoute("type: sqs", queue, key), []string{
			"wsgate.yaml:3: routes.chat.integration: set both access_key_id and secret_access_key_env, or neither",
		}},
		{"sqs secret pasted and bad key", chatRoute("type: sqs", queue, "access_key_id: akia", "secret_access_key_env: 'wJalrXUtnFEMI/K7MDENG'"), []string{
			at(6, "access_key_id: does not look like an AWS access key id (16+ upper-case letters and digits)"),
			at(7, "secret_access_key_env: must be the name of an environment variable (letters, digits and _), not its value"),
		}},
		{"sqs session token alone", chatRoute("type: sqs", local, queue, "session_token_env: T"), []string{
			at(7, "session_token_env: only with access_key_id and secret_access_key_env"),
		}},
		{"sqs endpoint and region", chatRoute("type: sqs", "endpoint: 'http://u:p@h:1'", queue, "region: Europe"), []string{
			at(5, "endpoint: holds credentials; sign with access_key_id and secret_access_key_env instead"),
			at(7, `region: "Europe" is not an AWS region name such as us-east-1`),
		}},
		{"sqs endpoint not a url", chatRoute("type: sqs", "endpoint: 'localhost:4566'", queue), []string{
			at(5, `endpoint: "localhost:4566" must be an absolute http:// or https:// URL`),
		}},
		{"sqs with other types' keys", chatRoute("type: sqs", local, queue, "url: http://h/", "topic_arn: x", "source: s", "subject: x", "lambda: {function_name: f}"), []string{
			at(7, "url: only used by http, nats, redis and amqp integrations"),
			at(8, "topic_arn: only used by sns integrations"),
			at(9, "source: only used by eventbridge integrations"),
			at(10, "subject: only used by nats integrations"),
			at(11, "lambda: only used by lambda integrations"),
		}},
		{"sqs body on $connect", "routes:\n  $connect: {integration: {type: sqs, endpoint: 'http://h:1', queue_url: 'http://h:1/123456789012/q', payload: body}}", []string{
			`wsgate.yaml:2: routes.$connect.integration.payload: $connect and $disconnect carry no message, and SQS refuses an empty one; use payload: event`,
		}},

		// sns
		{"sns", chatRoute("type: sns", topic, key, env, "payload: body"), nil},
		{"sns fifo", chatRoute("type: sns", local, "topic_arn: arn:aws:sns:us-east-1:123456789012:orders.fifo", "message_group_id: '{body.order}'"), nil},
		{"sns without topic", chatRoute("type: sns", local), []string{
			at(3, "topic_arn: required for sns integrations, e.g. arn:aws:sns:us-east-1:123456789012:orders"),
		}},
		{"sns bad topic", chatRoute("type: sns", local, "topic_arn: 'arn:aws:sns:us-east-1:123456789012:{principalId}'"), []string{
			at(6, `topic_arn: "arn:aws:sns:us-east-1:123456789012:{principalId}" is not a topic ARN such as arn:aws:sns:us-east-1:123456789012:orders (no placeholders)`),
		}},
		{"sns group on a standard topic", chatRoute("type: sns", local, topic, "message_group_id: g"), []string{
			at(7, "message_group_id: only for a FIFO topic (its name ends in .fifo)"),
		}},
		{"sns fifo without group", chatRoute("type: sns", local, "topic_arn: arn:aws:sns:us-east-1:123456789012:t.fifo"), []string{
			at(3, "message_group_id: required for a FIFO topic, e.g. {principalId}"),
		}},

		// eventbridge
		{"eventbridge", chatRoute("type: eventbridge", "source: wsgate", key, env), nil},
		{"eventbridge everything", chatRoute("type: eventbridge", local, "event_bus: 'arn:aws:events:us-east-1:123456789012:event-bus/chat'",
			"source: com.example.chat", "detail_type: 'chat {routeKey} {authorizer.tenant}'", "payload: body"), nil},
		{"eventbridge without source", chatRoute("type: eventbridge", local), []string{
			at(3, "source: required for eventbridge integrations, e.g. wsgate"),
		}},
		{"eventbridge reserved source, bad bus and detail type", chatRoute("type: eventbridge", local, "source: aws.s3", "event_bus: 'my bus'", "detail_type: '{x}'", "message_group_id: g"), []string{
			at(6, `source: "aws.s3": sources starting with aws. are reserved for AWS services`),
			at(7, `event_bus: "my bus" is not an event bus name or ARN (no placeholders)`),
			at(8, "detail_type: unknown placeholder {x}; one of {connectionId}, {routeKey}, {principalId}, {authorizer.KEY}, {body.PATH} (write {{ and }} for literal braces)"),
			at(9, "message_group_id: only used by sqs and sns integrations"),
		}},
		{"eventbridge body on $connect", "routes:\n  $connect: {integration: {type: eventbridge, endpoint: 'http://h:1', source: s, payload: body}}", nil},

		// The AWS keys on the other types.
		{"http with aws keys", chatRoute("type: http", "url: http://h/", "region: us-east-1", "queue_url: q", "access_key_id: AKIAIOSFODNN7EXAMPLE"), []string{
			at(6, "region: only used by sqs, sns and eventbridge integrations"),
			at(7, "queue_url: only used by sqs integrations"),
			at(8, "access_key_id: only used by sqs, sns and eventbridge integrations"),
		}},
		{"nats with payload and event_bus", chatRoute("type: nats", "url: nats://h:1", "subject: s", "payload: body", "event_bus: b"), []string{
			at(8, "event_bus: only used by eventbridge integrations"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.in, tt.want...)
		})
	}
}

func TestAWSPublishingDefaults(t *testing.T) {
	c, err := Parse("wsgate.yaml", []byte(chatRoute("type: eventbridge", "endpoint: http://127.0.0.1:1", "source: wsgate")))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Routes["chat"].Integration
	if in.Region != "us-east-1" || in.EventBus != "default" || in.DetailType != "{routeKey}" || in.Payload != PayloadEvent || in.Timeout.String() != "29s" {
		t.Errorf("defaults: %+v", in)
	}
	c, err = Parse("wsgate.yaml", []byte(chatRoute("type: sqs", "endpoint: http://127.0.0.1:1", "queue_url: http://127.0.0.1:1/000000000000/q")))
	if err != nil {
		t.Fatal(err)
	}
	if in := c.Routes["chat"].Integration; in.Region != "us-east-1" || in.EventBus != "" || in.DetailType != "" || in.Payload != PayloadEvent {
		t.Errorf("sqs defaults: %+v", in)
	}
}

// A refused AWS integration URL is not quoted when it holds credentials,
// as the endpoint check already does for a well-formed one and the amqp,
// nats and redis checks do for theirs: the problem names the key, never
// the password.
func TestAWSPublishURLsWithCredentialsNotEchoed(t *testing.T) {
	const secret = "wJalrXUtnFEMIK7MDENG"
	for name, in := range map[string]string{
		"queue_url with credentials": chatRoute("type: sqs", "endpoint: http://127.0.0.1:4566",
			"queue_url: 'https://AKIAIOSFODNN7EXAMPLE:"+secret+"@sqs.eu-west-1.amazonaws.com/123456789012/orders'"),
		"endpoint with credentials, wrong scheme": chatRoute("type: sqs",
			"endpoint: 'htp://AKIAIOSFODNN7EXAMPLE:"+secret+"@127.0.0.1:4566'",
			"queue_url: https://sqs.eu-west-1.amazonaws.com/123456789012/orders"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("wsgate.yaml", []byte(in))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the problem quotes the password: %v", err)
			}
		})
	}
}
