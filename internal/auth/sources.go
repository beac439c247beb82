package auth

import (
	"fmt"
	"net/http"
	"strings"
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

// Value returns the source's value in r. protocols are the real subprotocols:
// a subprotocol source yields the first offered item that is not one of
// them.
func (s Source) Value(r *Request, protocols []string) string {
	switch s.Kind {
	case SourceQuery:
		return r.Query.Get(s.Name)
	case SourceHeader:
		return r.Header.Get(s.Name)
	case SourceCookie:
		return Cookie(r.Header, s.Name)
	case SourceStageVariable:
		return r.StageVariables[s.Name]
	case SourceSubprotocol:
		for _, p := range r.Subprotocols {
			if !containsFold(protocols, p) {
				return p
			}
		}
	}
	return ""
}

// Cookie returns the value of the named cookie in h, or "".
func Cookie(h http.Header, name string) string {
	req := http.Request{Header: h}
	c, err := req.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
