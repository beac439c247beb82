package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/wsgate/wsgate/internal/awsevent"
)

// SourceKind is where an identity source reads from.
type SourceKind int

// The identity source kinds.
const (
	SourceQuery SourceKind = iota
	SourceHeader
	SourceCookie
	SourceStageVariable
	SourceSubprotocol
)

// Source is one parsed identity source.
type Source struct {
	Kind SourceKind
	Name string
	Expr string // as written
}

// ParseSource parses route.request.querystring.NAME,
// route.request.header.NAME, route.request.cookie.NAME, stageVariables.NAME
// or route.request.subprotocol.
func ParseSource(expr string) (Source, error) {
	prefixes := []struct {
		p string
		k SourceKind
	}{
		{"route.request.querystring.", SourceQuery},
		{"route.request.header.", SourceHeader},
		{"route.request.cookie.", SourceCookie},
		{"stageVariables.", SourceStageVariable},
	}
	for _, p := range prefixes {
		if name, ok := strings.CutPrefix(expr, p.p); ok && name != "" {
			return Source{Kind: p.k, Name: name, Expr: expr}, nil
		}
	}
	if expr == "route.request.subprotocol" {
		return Source{Kind: SourceSubprotocol, Expr: expr}, nil
	}
	return Source{}, fmt.Errorf("%q is not an identity source", expr)
}

// Values returns every value of the source in r, in the order the client
// sent them: each occurrence of a query parameter, each line of a header,
// each cookie of that name across the Cookie headers, and each offered
// subprotocol that is not one of protocols, the real subprotocols. A stage
// variable has at most one value. The cache key covers all of them, because
// a REQUEST authorizer sees all of them (multiValueQueryStringParameters,
// multiValueHeaders, the Cookie header).
func (s Source) Values(r *Request, protocols []string) []string {
	switch s.Kind {
	case SourceQuery:
		return r.Query[s.Name]
	case SourceHeader:
		return r.Header.Values(s.Name)
	case SourceCookie:
		cs := (&http.Request{Header: r.Header}).CookiesNamed(s.Name)
		vs := make([]string, len(cs))
		for i, c := range cs {
			vs[i] = c.Value
		}
		return vs
	case SourceStageVariable:
		if v, ok := r.StageVariables[s.Name]; ok {
			return []string{v}
		}
	case SourceSubprotocol:
		var vs []string
		for _, p := range r.Subprotocols {
			if !containsFold(protocols, p) {
				vs = append(vs, p)
			}
		}
		return vs
	}
	return nil
}

// Value returns the source's value in r: the one the presence check tests,
// the authorizer decides on and the events show in their single-valued maps.
// Of a repeated query parameter, header or cookie it is the last, as AWS puts
// the last value of a repeated parameter in queryStringParameters; several
// Cookie header lines are joined, as in the events' headers
// (awsevent.HeaderValue). Of the subprotocol list it is the first offered
// item that is not one of protocols, the real subprotocols.
func (s Source) Value(r *Request, protocols []string) string {
	return s.pick(s.Values(r, protocols))
}

// pick returns the value that counts among values, as Value describes.
func (s Source) pick(values []string) string {
	switch {
	case len(values) == 0:
		return ""
	case s.Kind == SourceSubprotocol:
		return values[0]
	case s.Kind == SourceHeader:
		return awsevent.HeaderValue(s.Name, values)
	}
	return values[len(values)-1]
}

// ReadSources reads sources from req: it sets req.SourceValues to the value
// of each (Value) and req.Token to the first one's, with "Bearer " stripped
// from a header, and returns every value of every source (Values), of
// which CacheKey makes the authorizer cache's key; it is left to the caller,
// as without a cache no key is needed. A source whose value is missing or
// empty is a 401 naming the source, before any authorizer runs, as in AWS.
func ReadSources(req *Request, sources []Source, protocols []string) (values [][]string, err error) {
	all := make([][]string, len(sources))
	req.SourceValues = make([]string, len(sources))
	for i, src := range sources {
		all[i] = src.Values(req, protocols)
		v := src.pick(all[i])
		if v == "" {
			return nil, Unauthorized("identity source " + src.Expr + " is missing or empty")
		}
		req.SourceValues[i] = v
	}
	if len(sources) > 0 {
		req.Token = bearer(sources[0], req.SourceValues[0])
	}
	return all, nil
}

// bearer strips "Bearer " from a header source's value.
func bearer(src Source, v string) string {
	if src.Kind == SourceHeader && len(v) > 7 && (v[:7] == "Bearer " || v[:7] == "bearer ") {
		return v[7:]
	}
	return v
}

// lastValue returns the last value of the query parameter name, or "".
func lastValue(q url.Values, name string) string {
	return Source{Kind: SourceQuery, Name: name}.Value(&Request{Query: q}, nil)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
