package asyncapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
)

// pushes describes what backends send through the management API: to one
// connection, to a user's connections, to a topic's subscribers. Without
// the management API there are none.
func (b *builder) pushes() {
	if !b.cfg.Management.IsEnabled() {
		return
	}
	push := func(target, title, call, summary, desc string) {
		ch := "push:" + target
		b.doc.Channels[ch] = Channel{
			Address:     b.cfg.UpgradePath(),
			Title:       title,
			Description: desc,
			Messages: map[string]Message{"push": {
				Name: "Push", Title: title,
				Summary: "The body of a management call " + call + ", delivered as it is: text, or binary when the body is not UTF-8.",
				Payload: anyPayload,
			}},
		}
		b.doc.Operations[ch] = Operation{
			Action: "send", Channel: channelRef(ch), Summary: summary,
			Messages: []Ref{messageRef(ch, "push")},
		}
	}
	push("@connections", "push to a connection", "POST /@connections/{connectionId}",
		"A backend sends a message to one connection.",
		"API Gateway's @connections API (PostToConnection).")
	push("@users", "push to a user", "POST /@users/{principalId}",
		"A backend sends a message to every connection of a principal.",
		"Every connection whose authorizer gave this principalId gets the message, on whichever node it is.")
	desc := "Every connection subscribed to the topic gets the message. The management API subscribes a connection to any topic (PUT /@connections/{connectionId}/topics/{topic})."
	var subs, unsubs []string
	for _, k := range routeOrder(b.cfg.Routes) {
		switch b.cfg.Routes[k].Builtin {
		case config.BuiltinSubscribe:
			subs = append(subs, k)
		case config.BuiltinUnsubscribe:
			unsubs = append(unsubs, k)
		}
	}
	if len(subs) > 0 {
		desc += fmt.Sprintf(" Clients subscribe themselves through route %s", strings.Join(subs, ", "))
		if len(unsubs) > 0 {
			desc += fmt.Sprintf(" (and unsubscribe through %s)", strings.Join(unsubs, ", "))
		}
		if len(b.cfg.Topics.Allow) > 0 {
			desc += " to the topics matching " + strings.Join(b.cfg.Topics.Allow, ", ") +
				" (x-wsgate-topics-allow: `*` matches one path segment, a trailing `/*` any rest, `{principalId}` the connection's own principal)."
		} else {
			desc += "; topics.allow is empty, so that route refuses every topic."
		}
	}
	push("@topics", "publish to a topic", "POST /@topics/{topic}",
		"A backend publishes a message to a topic's subscribers.", desc)
	if len(subs) > 0 && len(b.cfg.Topics.Allow) > 0 {
		ch := b.doc.Channels["push:@topics"]
		ch.TopicsAllow = slices.Clone(b.cfg.Topics.Allow)
		b.doc.Channels["push:@topics"] = ch
	}
}

// frame is an error frame: its message, when the gateway sends it, and
// whether it names a messageId (Bad request body) instead of a requestId.
type frame struct {
	key, message, when string
	messageID          bool
}

// errors describes the error frames the gateway sends, the socket staying
// open; only those the configuration can produce.
func (b *builder) errors() {
	c := b.cfg
	frames := []frame{
		{"Forbidden", "Forbidden", "No route matches the message and there is no $default route, the route's require rule refuses the connection, or a built-in route refuses the request.", false},
		{"InternalServerError", "Internal server error", "The route's integration failed.", false},
	}
	throttled := c.Throttling.Enabled()
	models, subscribe := false, false
	for _, rt := range c.Routes {
		throttled = throttled || rt.Throttling.Enabled()
		models = models || rt.HasModel()
		subscribe = subscribe || rt.Builtin == config.BuiltinSubscribe
	}
	if models {
		frames = append(frames, frame{"BadRequestBody", "Bad request body", "The message does not match its route's model.", true})
	}
	if throttled {
		frames = append(frames, frame{"TooManyRequests", "Too Many Requests", "The message is over its route's throttling.", false})
	}
	if c.Limits.MessagesPerSecond.Enabled() {
		frames = append(frames, frame{"LimitExceeded", "Limit Exceeded", "The connection sends more messages than limits.messages_per_second allows.", false})
	}
	if subscribe {
		frames = append(frames, frame{"SubscriptionLimitExceeded", "Subscription limit exceeded",
			fmt.Sprintf("The connection asks for more than %d subscriptions (limits.max_subscriptions_per_connection).", c.Limits.MaxSubscriptionsPerConnection), false})
	}
	ch := Channel{
		Address:     c.UpgradePath(),
		Title:       "error frames",
		Description: "Frames the gateway answers a message with when it goes no further; the connection stays open. The text is API Gateway's, byte for byte.",
		Messages:    map[string]Message{},
	}
	op := Operation{Action: "send", Channel: channelRef("errors"), Summary: "The gateway refuses a client's message."}
	for _, f := range frames {
		id := "requestId"
		example := map[string]any{"message": f.message, "connectionId": "L0SM9cOFvHcCIhw=", id: "L0SM9FnJvHcF3Ww="}
		if f.messageID {
			id = "messageId"
			example = map[string]any{"message": f.message, "connectionId": "L0SM9cOFvHcCIhw=", id: "f0e3c7a1-5b2d-4e8f-9a6c-1d2b3c4d5e6f"}
		}
		ch.Messages[f.key] = Message{
			Name: f.key, Title: f.message, Summary: f.when,
			Payload: map[string]any{
				"type":     "object",
				"required": []string{"message", "connectionId", id},
				"properties": map[string]any{
					"message":      map[string]any{"const": f.message},
					"connectionId": map[string]any{"type": "string"},
					id:             map[string]any{"type": "string"},
				},
			},
			Examples: []any{map[string]any{"payload": example}},
		}
		op.Messages = append(op.Messages, messageRef("errors", f.key))
	}
	b.doc.Channels["errors"] = ch
	b.doc.Operations["errors"] = op
}
