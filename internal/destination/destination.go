// Package destination expands the names that publishing integrations send
// to — a NATS subject, a Redis stream or channel — from templates holding
// placeholders filled from each event, so that one route fans messages out
// by user, tenant or connection.
//
// A template is literal text with placeholders in braces:
//
//	{connectionId}      requestContext.connectionId
//	{routeKey}          requestContext.routeKey
//	{principalId}       the authorizer's principalId
//	{authorizer.KEY}    the authorizer context value KEY, as a string
//	{body.PATH}         the value at PATH in the client's JSON message, as
//	                    the route selection expression $request.body.PATH
//	                    reads it (nested members, ['quoted names'], [0]
//	                    indexes)
//
// "{{" and "}}" stand for literal braces. A placeholder that cannot be
// resolved — no authorizer ran, the key is absent, the message is not JSON
// or has no value there, the value is empty — or that resolves to a value
// the destination cannot hold is an error, never an empty or partial name.
package destination

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/internal/route"
)

// bodyPath is the path of a {body.PATH} placeholder: member, quoted member
// and index steps, and nothing after them that the selection-expression
// grammar would read as literal text.
var bodyPath = regexp.MustCompile(`^(\.[A-Za-z0-9_-]+|\[[0-9]+\]|\['([^'\\]|\\.)*'\]|\["([^"\\]|\\.)*"\])+$`)

// MaxValueBytes bounds the value one placeholder may resolve to.
const MaxValueBytes = 256

// Event is the event a template is expanded from.
type Event = events.APIGatewayWebsocketProxyRequest

// Template is a parsed destination name. It is immutable and safe for
// concurrent use.
type Template struct {
	src   string
	parts []part
}

type kind int

const (
	literal kind = iota
	connectionID
	routeKey
	principalID
	authorizer
	body
)

type part struct {
	kind kind
	// text is the literal text, or the placeholder as written.
	text string
	// key is the authorizer context key.
	key string
	// expr reads the body path.
	expr *route.Expression
}

// Parse parses a template. Its errors say what is wrong in the words a
// configuration error needs.
func Parse(s string) (*Template, error) {
	t := &Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{kind: literal, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '{' && strings.HasPrefix(s[i:], "{{"):
			lit.WriteByte('{')
			i += 2
		case c == '}' && strings.HasPrefix(s[i:], "}}"):
			lit.WriteByte('}')
			i += 2
		case c == '}':
			return nil, fmt.Errorf("unmatched } at offset %d (write }} for a literal brace)", i)
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unterminated placeholder at offset %d (write {{ for a literal brace)", i)
			}
			p, err := placeholder(s[i : i+end+1])
			if err != nil {
				return nil, err
			}
			flush()
			t.parts = append(t.parts, p)
			i += end + 1
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	if len(t.parts) == 0 {
		return nil, errors.New("empty name")
	}
	return t, nil
}

// placeholder parses one "{…}".
func placeholder(text string) (part, error) {
	name := text[1 : len(text)-1]
	switch {
	case name == "connectionId":
		return part{kind: connectionID, text: text}, nil
	case name == "routeKey":
		return part{kind: routeKey, text: text}, nil
	case name == "principalId":
		return part{kind: principalID, text: text}, nil
	case strings.HasPrefix(name, "authorizer."):
		key := strings.TrimPrefix(name, "authorizer.")
		if key == "" || strings.ContainsAny(key, "{ \t") {
			return part{}, fmt.Errorf("placeholder %s: name an authorizer context key, as in {authorizer.tenantId}", text)
		}
		return part{kind: authorizer, text: text, key: key}, nil
	case strings.HasPrefix(name, "body.") || strings.HasPrefix(name, "body["):
		path := strings.TrimPrefix(name, "body")
		expr, err := route.ParseExpression("$request.body" + path)
		if err != nil || !bodyPath.MatchString(path) {
			return part{}, fmt.Errorf("placeholder %s: not a path into the message such as {body.tenant} or {body.items[0].id}", text)
		}
		return part{kind: body, text: text, expr: expr}, nil
	}
	return part{}, fmt.Errorf("unknown placeholder %s; one of {connectionId}, {routeKey}, {principalId}, {authorizer.KEY}, {body.PATH} (write {{ and }} for literal braces)", text)
}

// String returns the template as written.
func (t *Template) String() string { return t.src }

// Static reports whether the template has no placeholder.
func (t *Template) Static() bool {
	for _, p := range t.parts {
		if p.kind != literal {
			return false
		}
	}
	return true
}

// Mask returns the template with every placeholder replaced by mark, for
// checking the literal text of a name and for deriving patterns that match
// every expansion.
func (t *Template) Mask(mark string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.kind == literal {
			b.WriteString(p.text)
		} else {
			b.WriteString(mark)
		}
	}
	return b.String()
}

// Error is a placeholder that could not be expanded. Its message names the
// placeholder and why, never the value, which comes from the client.
type Error struct {
	Placeholder string
	Reason      string
}

func (e *Error) Error() string {
	return "placeholder " + e.Placeholder + ": " + e.Reason
}

// Expand fills the template's placeholders from ev. Every value must be
// non-empty UTF-8 of at most MaxValueBytes without control characters, and
// pass legal, the destination's own rule (nil: none); otherwise Expand
// returns an *Error.
func (t *Template) Expand(ev *Event, legal func(string) error) (string, error) {
	if len(t.parts) == 1 && t.parts[0].kind == literal {
		return t.parts[0].text, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.kind == literal {
			b.WriteString(p.text)
			continue
		}
		v, err := p.value(ev)
		if err == nil {
			err = check(v, legal)
		}
		if err != nil {
			return "", &Error{Placeholder: p.text, Reason: err.Error()}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func (p part) value(ev *Event) (string, error) {
	switch p.kind {
	case connectionID:
		return ev.RequestContext.ConnectionID, nil
	case routeKey:
		return ev.RequestContext.RouteKey, nil
	case principalID, authorizer:
		key := p.key
		if p.kind == principalID {
			key = "principalId"
		}
		ctx, _ := ev.RequestContext.Authorizer.(map[string]any)
		if ctx == nil {
			return "", errors.New("no authorizer context (the connection was not authorized)")
		}
		v, ok := ctx[key]
		if !ok || v == nil {
			return "", errors.New("the authorizer context has no such key")
		}
		if s, ok := v.(string); ok {
			return s, nil
		}
		return fmt.Sprint(v), nil
	case body:
		if ev.IsBase64Encoded {
			return "", errors.New("the message is binary, not JSON")
		}
		v, ok := p.expr.Evaluate([]byte(ev.Body))
		if !ok {
			return "", errors.New("the message is not JSON")
		}
		return v, nil
	}
	return "", errors.New("unknown placeholder")
}

func check(v string, legal func(string) error) error {
	switch {
	case v == "":
		return errors.New("no value (absent, empty or null)")
	case len(v) > MaxValueBytes:
		return fmt.Errorf("the value is longer than %d bytes", MaxValueBytes)
	case !utf8.ValidString(v):
		return errors.New("the value is not valid UTF-8")
	case strings.ContainsFunc(v, unicode.IsControl):
		return errors.New("the value holds a control character")
	}
	if legal != nil {
		return legal(v)
	}
	return nil
}
