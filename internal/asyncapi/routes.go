package asyncapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/model"
)

// anyPayload is the payload of a message the gateway does not constrain.
var anyPayload = map[string]any{}

// channelRef and messageRef are Reference Objects to a channel and to one
// of its messages; keys are escaped as JSON Pointer and URI fragment
// require.
func channelRef(ch string) Ref { return Ref{"#/channels/" + pointer(ch)} }

func messageRef(ch, msg string) Ref {
	return Ref{"#/channels/" + pointer(ch) + "/messages/" + pointer(msg)}
}

func pointer(s string) string {
	s = strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
	return url.PathEscape(s)
}

// routeOrder puts $connect, $disconnect and $default first, then the
// custom routes in alphabetical order.
func routeOrder(routes map[string]config.Route) []string {
	var keys []string
	for _, k := range []string{config.RouteConnect, config.RouteDisconnect, config.RouteDefault} {
		if _, ok := routes[k]; ok {
			keys = append(keys, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(routes)) {
		if !strings.HasPrefix(k, "$") {
			keys = append(keys, k)
		}
	}
	return keys
}

// selector matches a route selection expression that names one member of
// the body, the common "$request.body.action": then a custom route's
// messages are known to carry the route key there.
var selector = regexp.MustCompile(`^\$request\.body\.([A-Za-z_][A-Za-z0-9_-]*)$`)

func (b *builder) routes() error {
	c := b.cfg
	field := ""
	if m := selector.FindStringSubmatch(c.RouteSelectionExpression); m != nil {
		field = m[1]
	}
	for _, key := range routeOrder(c.Routes) {
		rt := c.Routes[key]
		if err := b.route(key, &rt, field); err != nil {
			return err
		}
	}
	if c.Authorizer.Type == config.AuthJWT && c.Authorizer.JWT.RefreshRoute != "" {
		b.refresh(field)
	}
	return nil
}

func (b *builder) route(key string, rt *config.Route, field string) error {
	ck := routeChannel(key)
	ch := Channel{Address: b.cfg.UpgradePath(), Title: "route " + key}
	op := Operation{Action: "receive", Channel: channelRef(ck), RouteKey: key}
	switch key {
	case config.RouteConnect:
		ch.Description = "The WebSocket handshake. Its integration (" + integrationName(rt) +
			") decides the upgrade: a 2xx answer lets the client in, any other status refuses the handshake with it, a failure with 502."
		ch.Bindings = map[string]any{"ws": b.handshakeBinding()}
		op.Summary = "A client connects."
		b.doc.Channels[ck] = ch
		b.doc.Operations[ck] = op
		return nil
	case config.RouteDisconnect:
		ch.Description = "The end of a connection, whoever closed it. Its integration (" + integrationName(rt) +
			") is told after the socket is gone: nothing reaches the client."
		op.Summary = "A connection ends."
		b.doc.Channels[ck] = ch
		b.doc.Operations[ck] = op
		return nil
	}
	var desc []string
	switch key {
	case config.RouteDefault:
		desc = append(desc, "Messages no other route selects, and messages that are not JSON.")
	default:
		if field != "" {
			desc = append(desc, fmt.Sprintf("Messages whose `%s` is %q.", field, key))
		} else {
			desc = append(desc, fmt.Sprintf("Messages for which `%s` yields %q.", b.cfg.RouteSelectionExpression, key))
		}
	}
	if rt.Builtin != "" {
		desc = append(desc, fmt.Sprintf("Built-in: %s the sending connection to the message's `topic` (allowed by topics.allow).", rt.Builtin))
	} else {
		desc = append(desc, "Integration: "+integrationName(rt)+".")
	}
	if len(rt.Require) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(rt.Require)) {
			parts = append(parts, fmt.Sprintf("%s in [%s]", k, strings.Join(rt.Require[k], ", ")))
		}
		desc = append(desc, "Only connections whose authorizer context has "+strings.Join(parts, " and ")+"; others get the Forbidden frame.")
	}
	if rt.HasModel() {
		desc = append(desc, "A message that does not match its model gets the Bad request body frame and goes no further.")
	}
	ch.Description = strings.Join(desc, " ")
	msgs, err := b.requestMessages(key, rt, field)
	if err != nil {
		return err
	}
	ch.Messages = msgs
	for _, name := range slices.Sorted(maps.Keys(msgs)) {
		op.Messages = append(op.Messages, messageRef(ck, name))
	}
	switch {
	case rt.Builtin != "":
		ch.Messages["reply"] = Message{
			Name: "TopicReply", Title: string(rt.Builtin) + " reply",
			Summary: "The gateway's answer once the subscription is changed.",
			Payload: map[string]any{
				"type":     "object",
				"required": []string{"action", "topic", "status"},
				"properties": map[string]any{
					"action": map[string]any{"const": string(rt.Builtin)},
					"topic":  map[string]any{"type": "string"},
					"status": map[string]any{"const": string(rt.Builtin) + "d"},
				},
			},
		}
		op.Reply = &Reply{Channel: channelRef(ck), Messages: []Ref{messageRef(ck, "reply")}}
	case rt.RouteResponse:
		ch.Messages["reply"] = Message{
			Name: "RouteResponse", Title: "route response",
			Summary: "The integration's response body, sent back to the client when it is not empty.",
			Payload: anyPayload,
		}
		op.Reply = &Reply{Channel: channelRef(ck), Messages: []Ref{messageRef(ck, "reply")}}
	}
	op.Summary = "A client sends a message to route " + key + "."
	b.doc.Channels[ck] = ch
	b.doc.Operations[ck] = op
	return nil
}

// routeChannel is the key of a route's channel and of its operation:
// "route:" and the route key, apart from the gateway's own channels.
func routeChannel(key string) string { return "route:" + key }

// requestMessages returns the messages a client sends on route key: one per
// model of a model selection expression, else one.
func (b *builder) requestMessages(key string, rt *config.Route, field string) (map[string]Message, error) {
	base := map[string]any{}
	if field != "" && !strings.HasPrefix(key, "$") {
		base = map[string]any{
			"type":       "object",
			"required":   []string{field},
			"properties": map[string]any{field: map[string]any{"const": key}},
		}
	}
	if rt.Builtin != "" {
		props := map[string]any{"topic": map[string]any{"type": "string", "minLength": 1}}
		if field != "" {
			props[field] = map[string]any{"const": key}
		}
		req := []string{"topic"}
		if field != "" {
			req = []string{field, "topic"}
		}
		base = map[string]any{"type": "object", "required": req, "properties": props}
		return map[string]Message{"request": {Name: "TopicRequest", Title: string(rt.Builtin), Payload: base}}, nil
	}
	switch {
	case rt.ModelFile != "", rt.Model.IsSet():
		at, s := "model", rt.Model
		if rt.ModelFile != "" {
			at, s = "model_file", config.Schema{File: rt.ModelFile}
		}
		p, err := b.modelPayload(key, at, s)
		if err != nil {
			return nil, err
		}
		return map[string]Message{"request": {Name: "Request", Title: key + " message", Payload: p}}, nil
	case len(rt.Models) > 0:
		out := map[string]Message{}
		for _, name := range slices.Sorted(maps.Keys(rt.Models)) {
			p, err := b.modelPayload(key, "models."+name, rt.Models[name])
			if err != nil {
				return nil, err
			}
			// Names that differ only in characters a key cannot hold
			// ("a b", "a_b") get distinct keys: none replaces another.
			mk := "model-" + nonKey.ReplaceAllString(name, "_")
			for i := 2; ; i++ {
				if _, taken := out[mk]; !taken {
					break
				}
				mk = fmt.Sprintf("model-%s-%d", nonKey.ReplaceAllString(name, "_"), i)
			}
			out[mk] = Message{
				Name:    "Request",
				Title:   "model " + name,
				Summary: fmt.Sprintf("The message when `%s` yields %q.", rt.ModelSelectionExpression, name),
				Payload: p,
			}
		}
		return out, nil
	}
	return map[string]Message{"request": {Name: "Request", Title: key + " message", Payload: base}}, nil
}

// modelPayload is the Multi Format Schema Object of a model: the schema
// with the JSON Schema draft it is validated as.
func (b *builder) modelPayload(key, at string, s config.Schema) (any, error) {
	doc := s.Doc
	if s.File != "" {
		if b.opts.ReadFile == nil {
			return map[string]any{"description": "The model in " + s.File + "."}, nil
		}
		data, err := b.opts.ReadFile(s.File)
		if err != nil {
			return nil, fmt.Errorf("routes.%s.%s: %w", key, at, err)
		}
		// Numbers stay as written (json.Number), as the gateway reads
		// and validates them: float64 would round an integer beyond 2^53
		// and refuse one beyond its range.
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("routes.%s.%s: %s: %w", key, at, s.File, err)
		}
	}
	return map[string]any{"schemaFormat": schemaFormat(doc), "schema": doc}, nil
}

// schemaFormat names the JSON Schema draft of a model: the one the gateway
// validates it as (model.DraftName).
func schemaFormat(doc any) string {
	return "application/schema+json;version=" + model.DraftName(doc)
}

// refresh describes the JWT authorizer's built-in token refresh route.
func (b *builder) refresh(field string) {
	key := b.cfg.Authorizer.JWT.RefreshRoute
	if _, taken := b.cfg.Routes[key]; taken {
		return
	}
	props := map[string]any{"token": map[string]any{"type": "string", "minLength": 1}}
	req := []string{"token"}
	if field != "" {
		props[field] = map[string]any{"const": key}
		req = []string{field, "token"}
	}
	ck := routeChannel(key)
	b.doc.Channels[ck] = Channel{
		Address: b.cfg.UpgradePath(),
		Title:   "token refresh",
		Description: "Built-in: a fresh token for the same principal extends the connection past the old token's expiry. " +
			"A token that does not verify, is for another principal, or has no exp gets the Forbidden frame.",
		Messages: map[string]Message{
			"request": {Name: "RefreshRequest", Title: "token refresh", Payload: map[string]any{"type": "object", "required": req, "properties": props}},
			"reply": {Name: "RefreshReply", Title: "token refreshed", Payload: map[string]any{
				"type":     "object",
				"required": []string{"action", "expiresAt"},
				"properties": map[string]any{
					"action":    map[string]any{"const": key},
					"expiresAt": map[string]any{"type": "string", "format": "date-time"},
				},
			}},
		},
	}
	b.doc.Operations[ck] = Operation{
		Action: "receive", Channel: channelRef(ck), RouteKey: key,
		Summary:  "A client refreshes its token.",
		Messages: []Ref{messageRef(ck, "request")},
		Reply:    &Reply{Channel: channelRef(ck), Messages: []Ref{messageRef(ck, "reply")}},
	}
}

// handshakeBinding is the WebSockets channel binding of the handshake: the
// query parameters and headers the authorizer reads.
func (b *builder) handshakeBinding() map[string]any {
	a := b.cfg.Authorizer
	query := map[string]any{}
	headers := map[string]any{}
	var qreq, hreq []string
	if a.Type != config.AuthNone && a.Type != "" {
		for _, src := range a.IdentitySources {
			kind, name, _ := strings.Cut(strings.TrimPrefix(src, "route.request."), ".")
			switch kind {
			case "querystring":
				query[name] = map[string]any{"type": "string", "description": "Identity source " + src + "."}
				qreq = append(qreq, name)
			case "header":
				headers[name] = map[string]any{"type": "string", "description": "Identity source " + src + "."}
				hreq = append(hreq, name)
			}
		}
		if a.CSRF.Query != "" {
			query[a.CSRF.Query] = map[string]any{"type": "string", "description": "Double-submit CSRF token, equal to the cookie " + a.CSRF.Cookie + "."}
			qreq = append(qreq, a.CSRF.Query)
		}
	}
	out := map[string]any{"method": "GET"}
	if len(query) > 0 {
		out["query"] = map[string]any{"type": "object", "properties": query, "required": qreq}
	}
	if len(headers) > 0 {
		out["headers"] = map[string]any{"type": "object", "properties": headers, "required": hreq}
	}
	return out
}

// integrationName says what kind of backend a route has. Its address is
// left out: the document is for the API's clients, the backends are the
// operator's.
func integrationName(rt *config.Route) string {
	if rt.Integration.Type == "" {
		return "none"
	}
	return string(rt.Integration.Type)
}
