package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Where wsgate's publishing integrations put the identity beside the
// message (docs/integrations.md): NATS headers, Redis stream fields.
const (
	natsConnectionIDHeader = "Wsgate-Connection-Id"
	natsEventTypeHeader    = "Wsgate-Event-Type"
	natsRequestIDHeader    = "Wsgate-Request-Id"

	redisConnectionIDField = "connectionId"
	redisEventTypeField    = "eventType"
	redisRequestIDField    = "requestId"
	redisEventField        = "event"
	redisBodyField         = "body"
)

// errNoConnectionID is a message that names no connection to answer.
var errNoConnectionID = errors.New("no connection id")

// fromEvent reads the AWS event JSON an http integration receives, which
// payload: event publishes.
func fromEvent(data []byte) (delivery, error) {
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(data, &ev); err != nil {
		return delivery{}, fmt.Errorf("not an AWS event JSON: %w", err)
	}
	d := delivery{
		connectionID: ev.RequestContext.ConnectionID,
		eventType:    ev.RequestContext.EventType,
		requestID:    ev.RequestContext.RequestID,
		body:         []byte(ev.Body),
	}
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return delivery{}, fmt.Errorf("isBase64Encoded, but the body is not base64: %w", err)
		}
		d.body = b
	}
	if d.connectionID == "" {
		return delivery{}, fmt.Errorf("%w in requestContext.connectionId", errNoConnectionID)
	}
	return d, nil
}

// fromBody is a payload: body message, the identity found by lookup.
func fromBody(body []byte, lookup func(name string) string, idName, typeName, requestName string) (delivery, error) {
	d := delivery{
		connectionID: lookup(idName),
		eventType:    lookup(typeName),
		requestID:    lookup(requestName),
		body:         body,
	}
	if d.connectionID == "" {
		return delivery{}, fmt.Errorf("%w in %s", errNoConnectionID, idName)
	}
	return d, nil
}

// fromRedisEntry reads a stream entry of a redis integration: the identity
// fields, then event or body, whichever the route's payload is.
func fromRedisEntry(values map[string]any) (delivery, error) {
	field := func(name string) string {
		s, _ := values[name].(string)
		return s
	}
	if ev, ok := values[redisEventField].(string); ok {
		return fromEvent([]byte(ev))
	}
	if body, ok := values[redisBodyField].(string); ok {
		return fromBody([]byte(body), field, redisConnectionIDField, redisEventTypeField, redisRequestIDField)
	}
	return delivery{}, errors.New("the entry has neither an event nor a body field")
}

// amqpHeader returns the string value of the header whose name is name in
// any case: AMQP header names are case-sensitive, and publishers other than
// wsgate may spell the identity's names otherwise.
func amqpHeader(headers map[string]any, name string) string {
	str := func(v any) string {
		switch v := v.(type) {
		case string:
			return v
		case []byte:
			return string(v)
		}
		return ""
	}
	if v, ok := headers[name]; ok {
		return str(v)
	}
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return str(v)
		}
	}
	return ""
}
