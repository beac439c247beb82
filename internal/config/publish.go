package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/wsgate/wsgate/internal/destination"
)

// The publishing integration types: they publish each event to a broker
// and answer once the broker has acknowledged it.
const (
	// IntegrationNATS publishes to a NATS subject, or to a JetStream
	// stream with jetstream: true.
	IntegrationNATS IntegrationType = "nats"
	// IntegrationRedis appends to a Redis stream (XADD) or publishes to a
	// Redis channel (PUBLISH).
	IntegrationRedis IntegrationType = "redis"
)

// Payload is what a publishing integration sends.
type Payload string

// The values of Payload.
const (
	// PayloadEvent sends the AWS event JSON an http integration receives.
	PayloadEvent Payload = "event"
	// PayloadBody sends the client's message alone; the connection's
	// identity goes in NATS headers or Redis stream fields.
	PayloadBody Payload = "body"
)

// streamNamePattern is what a JetStream stream name may be.
var streamNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// integrationKey is a key of the integration section and the types that use
// it.
type integrationKey struct {
	name  string
	set   bool
	types []IntegrationType
}

// publishKeys lists the keys of the publishing integrations, and url, with
// whether in sets them.
func publishKeys(in Integration) []integrationKey {
	nats := []IntegrationType{IntegrationNATS}
	redis := []IntegrationType{IntegrationRedis}
	both := []IntegrationType{IntegrationNATS, IntegrationRedis}
	postgres := []IntegrationType{IntegrationPostgres}
	amqp := []IntegrationType{IntegrationAMQP}
	return []integrationKey{
		{"url", in.URL != "", []IntegrationType{IntegrationHTTP, IntegrationNATS, IntegrationRedis, IntegrationAMQP}},
		{"url_env", in.URLEnv != "", []IntegrationType{IntegrationNATS, IntegrationAMQP}},
		{"subject", in.Subject != "", nats},
		{"jetstream", in.JetStream, nats},
		{"declare", in.Declare, []IntegrationType{IntegrationNATS, IntegrationAMQP}},
		{"token_env", in.TokenEnv != "", nats},
		{"credentials_file", in.CredentialsFile != "", nats},
		{"password_env", in.PasswordEnv != "", redis},
		{"stream", in.Stream != "", both},
		{"channel", in.Channel != "", redis},
		{"maxlen", in.MaxLen != 0, redis},
		{"dsn_env", in.DSNEnv != "", postgres},
		{"table", in.Table != "", postgres},
		{"payload", in.Payload != "", append([]IntegrationType{IntegrationHTTP, IntegrationNATS, IntegrationRedis, IntegrationAMQP, IntegrationPostgres}, awsTypes...)},
		{"http2", in.HTTP2, []IntegrationType{IntegrationHTTP}},
		{"endpoint", in.Endpoint != "", awsTypes},
		{"region", in.Region != "", awsTypes},
		{"access_key_id", in.AccessKeyID != "", awsTypes},
		{"secret_access_key_env", in.SecretAccessKeyEnv != "", awsTypes},
		{"session_token_env", in.SessionTokenEnv != "", awsTypes},
		{"credentials", in.Credentials != "", awsTypes},
		{"queue_url", in.QueueURL != "", []IntegrationType{IntegrationSQS}},
		{"topic_arn", in.TopicARN != "", []IntegrationType{IntegrationSNS}},
		{"message_group_id", in.MessageGroupID != "", []IntegrationType{IntegrationSQS, IntegrationSNS}},
		{"event_bus", in.EventBus != "", []IntegrationType{IntegrationEventBridge}},
		{"source", in.Source != "", []IntegrationType{IntegrationEventBridge}},
		{"detail_type", in.DetailType != "", []IntegrationType{IntegrationEventBridge}},
		{"exchange", in.Exchange != "", amqp},
		{"routing_key", in.RoutingKey != "", amqp},
		{"exchange_type", in.ExchangeType != "", amqp},
	}
}

// foreignKeys reports the keys in sets that its type does not use: the
// publishing keys on every type, and the http, mock and lambda keys on the
// publishing types (the other types report those themselves).
func (k *checker) foreignKeys(path string, in Integration) {
	keys := publishKeys(in)
	if in.Type == IntegrationNATS || in.Type == IntegrationRedis || in.Type == IntegrationAMQP || in.Type == IntegrationPostgres || isAWSPublish(in.Type) {
		keys = append(keys,
			integrationKey{"headers", len(in.Headers) > 0, []IntegrationType{IntegrationHTTP}},
			integrationKey{"status_code", in.StatusCode != 0, []IntegrationType{IntegrationMock}},
			integrationKey{"body", in.Body != nil, []IntegrationType{IntegrationMock}},
			integrationKey{"lambda", in.Lambda.Command != "" || in.Lambda.FunctionName != "" || k.src.has(path+".lambda"), []IntegrationType{IntegrationLambda}})
	} else {
		keys = keys[1:] // url: the http and mock checks report it
	}
	for _, key := range keys {
		if !key.set && !k.src.has(path+"."+key.name) {
			continue
		}
		used := false
		for _, t := range key.types {
			used = used || t == in.Type
		}
		if !used {
			k.add(path+"."+key.name, "only used by %s integrations", typeList(key.types))
		}
	}
}

// typeList names types as "a", "a and b" or "a, b and c".
func typeList(types []IntegrationType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func (k *checker) payload(path string, p Payload) {
	switch p {
	case PayloadEvent, PayloadBody:
	default:
		k.add(path+".payload", "unknown payload %q; one of event (the AWS event JSON), body (the client's message alone)", p)
	}
}

// natsIntegration checks the keys of a nats integration.
func (k *checker) natsIntegration(path string, in Integration) {
	switch {
	case in.URL != "" && in.URLEnv != "":
		k.add(path+".url", "set url or url_env, not both")
	case in.URL == "" && in.URLEnv == "":
		k.add(path+".url", "required for nats integrations (or url_env), e.g. nats://127.0.0.1:4222")
	}
	for _, u := range strings.Split(in.URL, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		parsed, err := url.Parse(u)
		switch {
		case err != nil || !strings.Contains(u, "://") || parsed.Host == "":
			// The URL is not echoed: it may hold credentials.
			k.add(path+".url", "is not a URL such as nats://127.0.0.1:4222 (several separated by commas)")
		case parsed.User != nil:
			k.add(path+".url", "holds credentials; put a token in the environment variable token_env names, or use credentials_file")
		}
	}
	k.envName(path+".url_env", in.URLEnv)
	k.envName(path+".token_env", in.TokenEnv)
	if in.TokenEnv != "" && in.CredentialsFile != "" {
		k.add(path+".token_env", "set token_env or credentials_file, not both")
	}
	if in.Subject == "" {
		k.add(path+".subject", "required for nats integrations, e.g. chat.{routeKey}")
	} else if t, err := destination.Parse(in.Subject); err != nil {
		k.add(path+".subject", "%v", err)
	} else if err := subjectPattern(t.Mask("x")); err != nil {
		k.add(path+".subject", "%v", err)
	}
	switch {
	case in.Declare && !in.JetStream:
		k.add(path+".declare", "only with jetstream: true (core NATS has no streams)")
	case in.Declare && in.Stream == "":
		k.add(path+".stream", "required with declare: true: the name of the JetStream stream to create")
	case in.Stream != "" && !in.Declare:
		k.add(path+".stream", "only used with declare: true; without it the stream that captures the subject must exist")
	}
	if in.Stream != "" && !streamNamePattern.MatchString(in.Stream) {
		k.add(path+".stream", "%q must be 1 to 255 letters, digits, - and _", in.Stream)
	}
	k.payload(path, in.Payload)
}

// subjectPattern checks a NATS subject to publish to, its placeholders
// masked.
func subjectPattern(s string) error {
	for _, tok := range strings.Split(s, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("%q has an empty token (a leading, trailing or double dot)", s)
		case strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("%q holds a wildcard; messages are published to one subject", s)
		case strings.ContainsAny(tok, " \t\r\n\x00"):
			return fmt.Errorf("%q holds white space", s)
		}
	}
	return nil
}

// redisIntegration checks the keys of a redis integration.
func (k *checker) redisIntegration(path string, in Integration) {
	if in.URL == "" {
		k.add(path+".url", "required for redis integrations, e.g. redis://127.0.0.1:6379/0")
	} else {
		k.redisURL(path+".url", in.URL, path+".password_env")
	}
	k.envName(path+".password_env", in.PasswordEnv)
	switch {
	case in.Stream != "" && in.Channel != "":
		k.add(path+".stream", "set stream (XADD) or channel (PUBLISH), not both")
	case in.Stream == "" && in.Channel == "":
		k.add(path+".stream", "required for redis integrations: set stream (XADD) or channel (PUBLISH)")
	}
	for _, key := range []struct{ name, value string }{{"stream", in.Stream}, {"channel", in.Channel}} {
		if key.value == "" {
			continue
		}
		if _, err := destination.Parse(key.value); err != nil {
			k.add(path+"."+key.name, "%v", err)
		}
	}
	if in.MaxLen < 0 {
		k.add(path+".maxlen", "must not be negative (0 means no trimming), got %d", in.MaxLen)
	}
	if in.Channel != "" && in.MaxLen != 0 {
		k.add(path+".maxlen", "trims a stream; a channel keeps nothing")
	}
	if in.Channel != "" && in.Payload == PayloadBody {
		k.add(path+".payload", "a channel message has no fields to carry the connectionId beside the body; use payload: event, or a stream")
	}
	k.payload(path, in.Payload)
}

// redisURL checks a redis:// URL at path; passwordEnv is the key a password
// belongs in instead.
func (k *checker) redisURL(path, raw, passwordEnv string) {
	switch {
	case !strings.HasPrefix(raw, "redis://") && !strings.HasPrefix(raw, "rediss://"):
		k.add(path, "must start with redis:// or rediss://")
	default:
		if u, err := url.Parse(raw); err != nil || u.Host == "" {
			k.add(path, "is not a redis://host:port URL")
		} else if _, has := u.User.Password(); has {
			k.add(path, "holds a password; put it in the environment variable %s names", passwordEnv)
		}
	}
}

// envName reports a value at path that is not an environment variable name.
// The value is not echoed: a secret pasted there by mistake must not reach
// logs.
func (k *checker) envName(path, name string) {
	if name != "" && !envNamePattern.MatchString(name) {
		k.add(path, "must be the name of an environment variable (letters, digits and _), not its value")
	}
}
