package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/destination"
)

// Publishing integrations (NATS, Redis) hand each event to a broker and
// answer once the broker has acknowledged it: a 200 response whose body is
// a small JSON acknowledgement, which the gateway sends to the client on
// routes with route_response. Every failure — the broker unreachable, slow
// beyond the timeout or refusing the message, a destination placeholder that
// cannot be resolved — is an ErrFailed error, answered like a failed http
// integration. A message is never acknowledged that the broker did not
// confirm.

// Payload is what a publishing integration sends.
type Payload int

const (
	// PayloadEvent sends the AWS event JSON, exactly as the http
	// integration POSTs it, so a worker written for a Lambda event reads it.
	PayloadEvent Payload = iota
	// PayloadBody sends the client's message alone (decoded from base64
	// when it was binary); the connection's identity travels beside it.
	PayloadBody
)

// payload returns what is sent for ev.
func (p Payload) payload(ev *Event) ([]byte, error) {
	if p == PayloadEvent {
		return encodeEvent(ev)
	}
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, fmt.Errorf("decode binary message: %w", err)
		}
		return b, nil
	}
	return []byte(ev.Body), nil
}

// encodeEvent returns the event JSON, byte for byte json.Marshal's.
func encodeEvent(ev *Event) ([]byte, error) {
	b, err := awsevent.AppendJSON(make([]byte, 0, eventSizeHint(ev)), ev, true)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return b, nil
}

// eventSizeHint is a capacity that holds most events in one allocation:
// the members every event has, plus the body.
func eventSizeHint(ev *Event) int {
	return 768 + len(ev.Body) + len(ev.Body)/8
}

// field is one item of the identity sent beside a message.
type field struct{ name, value string }

// identity returns the connection's identity as it travels beside a
// message, whatever the payload: NATS headers or Redis stream fields named
// by the second argument of each pair. The principal and the authorizer
// context (JSON of requestContext.authorizer) are left out when no
// authorizer ran.
func identity(ev *Event) []field {
	rc := &ev.RequestContext
	out := []field{
		{"connectionId", rc.ConnectionID},
		{"routeKey", rc.RouteKey},
		{"eventType", rc.EventType},
		{"requestId", rc.RequestID},
	}
	if ctx, ok := rc.Authorizer.(map[string]any); ok && ctx != nil {
		if p, ok := ctx["principalId"].(string); ok && p != "" {
			out = append(out, field{"principalId", p})
		}
		if b, err := json.Marshal(ctx); err == nil {
			out = append(out, field{"authorizer", string(b)})
		}
	}
	return out
}

// accepted is the acknowledgement a publishing integration answers with.
// Its JSON is the frame a client gets on a route with route_response:
//
//	{"status":"accepted","requestId":"…","subject":"…"}                       nats
//	{"status":"accepted","requestId":"…","subject":"…","stream":"…","sequence":N}  nats, jetstream
//	{"status":"accepted","requestId":"…","stream":"…","id":"1700000000000-0"}  redis stream
//	{"status":"accepted","requestId":"…","channel":"…","receivers":N}          redis channel
//
// requestId is the event's requestContext.requestId, which is also the
// message's id at the broker (the Nats-Msg-Id header, the requestId field).
type accepted struct {
	Status    string `json:"status"`
	RequestID string `json:"requestId"`
	Subject   string `json:"subject,omitempty"`
	Stream    string `json:"stream,omitempty"`
	Sequence  uint64 `json:"sequence,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	ID        string `json:"id,omitempty"`
	Channel   string `json:"channel,omitempty"`
	Receivers *int64 `json:"receivers,omitempty"`
}

func (a *accepted) response() *Response {
	a.Status = "accepted"
	b, _ := json.Marshal(a)
	return &Response{StatusCode: 200, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}
}

// expand fills a destination template from ev; a placeholder that cannot be
// resolved is an integration failure.
func expand(t *destination.Template, ev *Event, legal func(string) error) (string, error) {
	name, err := t.Expand(ev, legal)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return name, nil
}

// bound applies timeout to ctx; zero leaves ctx alone.
func bound(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout)
}

// publishFailed wraps a broker error as an integration failure. A deadline
// reached within the integration's own timeout (ctx still live) says so.
func publishFailed(ctx context.Context, what string, timeout time.Duration, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return failf("%s: not acknowledged within %v", what, timeout)
	}
	return failf("%s: %v", what, err)
}
