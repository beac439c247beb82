package config

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/wsgate/wsgate/internal/destination"
)

// IntegrationAMQP publishes to a RabbitMQ exchange (AMQP 0-9-1), with
// publisher confirms.
const IntegrationAMQP IntegrationType = "amqp"

// exchangeNamePattern is what an AMQP exchange name may be: RabbitMQ's
// letters, digits, hyphen, underscore, period and colon, at most 255 bytes
// (a short string). The empty name is the default exchange.
var exchangeNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{0,255}$`)

// exchangeTypes are the exchange types declare may create.
var exchangeTypes = []string{"direct", "fanout", "topic", "headers"}

// maxRoutingKeyBytes bounds a routing key: an AMQP short string.
const maxRoutingKeyBytes = 255

// amqpIntegration checks the keys of an amqp integration.
func (k *checker) amqpIntegration(path string, in Integration) {
	switch {
	case in.URL != "" && in.URLEnv != "":
		k.add(path+".url", "set url or url_env, not both")
	case in.URL == "" && in.URLEnv == "":
		k.add(path+".url", "required for amqp integrations (or url_env), e.g. amqp://127.0.0.1:5672/")
	case in.URL != "":
		k.amqpURL(path+".url", in.URL)
	}
	k.envName(path+".url_env", in.URLEnv)

	if !exchangeNamePattern.MatchString(in.Exchange) {
		k.add(path+".exchange", "%q must be at most 255 letters, digits, -, _, . and :", in.Exchange)
	}
	switch {
	case in.Declare && in.Exchange == "":
		k.add(path+".declare", `declares the exchange named by exchange; the default exchange ("") always exists and cannot be declared`)
	case in.Declare && strings.HasPrefix(in.Exchange, "amq."):
		k.add(path+".exchange", "%q: names starting with amq. are reserved to the broker and cannot be declared", in.Exchange)
	}
	if in.ExchangeType != "" {
		if !in.Declare {
			k.add(path+".exchange_type", "only used with declare: true; without it wsgate declares nothing and the exchange must exist")
		} else if !slices.Contains(exchangeTypes, in.ExchangeType) {
			k.add(path+".exchange_type", "unknown exchange type %q; one of %s", in.ExchangeType, strings.Join(exchangeTypes, ", "))
		}
	}

	if in.RoutingKey == "" {
		k.add(path+".routing_key", "required for amqp integrations, e.g. orders.{principalId} (with the default exchange, the queue's name)")
	} else if t, err := destination.Parse(in.RoutingKey); err != nil {
		k.add(path+".routing_key", "%v", err)
	} else if n := len(t.Mask("")); n > maxRoutingKeyBytes {
		k.add(path+".routing_key", "is %d bytes long; a routing key holds at most %d", n, maxRoutingKeyBytes)
	}
	k.payload(path, in.Payload)
}

// amqpURL checks an amqp:// or amqps:// URL at path. The URL is never
// echoed: a mistyped one may hold a password.
func (k *checker) amqpURL(path, raw string) {
	u, err := url.Parse(raw)
	switch {
	case !strings.HasPrefix(raw, "amqp://") && !strings.HasPrefix(raw, "amqps://"):
		k.add(path, "must start with amqp:// or amqps://")
	case err != nil || u.Host == "":
		k.add(path, "is not a URL such as amqp://127.0.0.1:5672/ (a vhost after the slash)")
	case u.User == nil:
	default:
		if _, has := u.User.Password(); has {
			k.add(path, "holds a password; put the whole URL in an environment variable and name it in url_env instead")
		} else {
			// The client library would log in with the password guest.
			k.add(path, "names a user without a password; put the whole URL, with the password, in an environment variable and name it in url_env instead")
		}
	}
}
