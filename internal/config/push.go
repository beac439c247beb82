package config

import (
	"fmt"
	"strings"

	"github.com/wsgate/wsgate/internal/topic"
)

// Builtin names an action the gateway performs itself instead of calling
// an integration.
type Builtin string

// The built-in route actions.
const (
	// BuiltinSubscribe subscribes the sending connection to the message's
	// "topic", when Topics.Allow permits it.
	BuiltinSubscribe Builtin = "subscribe"
	// BuiltinUnsubscribe ends that subscription.
	BuiltinUnsubscribe Builtin = "unsubscribe"
)

// Topics configures topic subscriptions made by clients themselves.
type Topics struct {
	// Allow lists the topic patterns a client may subscribe itself to: "*"
	// matches within one path segment, a trailing "/*" any rest, and
	// "{principalId}" the connection's own principal (user/{principalId}/*).
	// Default: none, so the built-in subscribe route refuses every topic;
	// the management API can subscribe connections to any topic.
	Allow []string `yaml:"allow"`
}

// UserLimitPolicy says which connection gives way when a user is over
// MaxConnectionsPerUser.
type UserLimitPolicy string

// The user-limit policies.
const (
	// RefuseNewest refuses the new connection with 429.
	RefuseNewest UserLimitPolicy = "refuse_newest"
	// CloseOldest admits the new connection and closes the user's oldest
	// with 4008.
	CloseOldest UserLimitPolicy = "close_oldest"
)

// RateLimit is a token bucket: Rate per second, Burst at once.
type RateLimit struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// Enabled reports whether the limit applies.
func (r RateLimit) Enabled() bool { return r.Rate > 0 }

func (k *checker) push(c *Config) {
	for i, p := range c.Topics.Allow {
		if p == "" {
			k.add(fmt.Sprintf("topics.allow[%d]", i), "%q is not a topic pattern", p)
			continue
		}
		// A pattern is shaped like the topics it matches: with its
		// wildcards filled in, it must be a valid topic, or it matches
		// none. Topic names may hold the ASCII space, so patterns may too;
		// other white space is unprintable and topic.Check refuses it.
		filled := strings.NewReplacer("{principalId}", "p", "*", "x").Replace(p)
		if err := topic.Check(filled); err != nil {
			k.add(fmt.Sprintf("topics.allow[%d]", i), "%q matches no topic: %v", p, err)
		}
	}
	l := c.Limits
	if l.MaxConnectionsPerUser < 0 {
		k.add("limits.max_connections_per_user", "must not be negative (0 means unlimited), got %d", l.MaxConnectionsPerUser)
	}
	if l.MaxSubscriptionsPerConnection < 0 {
		k.add("limits.max_subscriptions_per_connection", "must be at least 1, got %d", l.MaxSubscriptionsPerConnection)
	}
	switch l.UserLimitPolicy {
	case RefuseNewest, CloseOldest:
	default:
		k.add("limits.user_limit_policy", "unknown policy %q; one of refuse_newest, close_oldest", l.UserLimitPolicy)
	}
	k.rate("limits.messages_per_second", l.MessagesPerSecond)
	k.rate("management.rate_limit", c.Management.RateLimit)
}

func (k *checker) rate(p string, r RateLimit) {
	if r.Rate < 0 {
		k.add(p+".rate", "must not be negative (0 means unlimited)")
	}
	if r.Rate > 0 && r.Burst < 1 {
		k.add(p+".burst", "must be at least 1 when rate is set")
	}
}
