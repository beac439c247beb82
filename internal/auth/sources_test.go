package auth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		expr string
		want Source
		ok   bool
	}{
		{"route.request.querystring.Auth", Source{Kind: SourceQuery, Name: "Auth"}, true},
		{"route.request.header.X-Auth", Source{Kind: SourceHeader, Name: "X-Auth"}, true},
		{"route.request.cookie.session", Source{Kind: SourceCookie, Name: "session"}, true},
		{"stageVariables.tenant", Source{Kind: SourceStageVariable, Name: "tenant"}, true},
		{"route.request.subprotocol", Source{Kind: SourceSubprotocol}, true},
		{"route.request.querystring.", Source{}, false},
		{"route.request.body.token", Source{}, false},
		{"", Source{}, false},
	}
	for _, tt := range tests {
		got, err := ParseSource(tt.expr)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSource(%q) error = %v; want ok = %v", tt.expr, err, tt.ok)
			continue
		}
		if tt.ok && (got.Kind != tt.want.Kind || got.Name != tt.want.Name || got.Expr != tt.expr) {
			t.Errorf("ParseSource(%q) = %+v; want %+v", tt.expr, got, tt.want)
		}
	}
}

// TestSourceValues: a repeated query parameter, header or cookie has all its
// values, in order, in Values, and the last as its Value; the subprotocol
// source's Value is the first offered item that is not a real protocol.
func TestSourceValues(t *testing.T) {
	req := &Request{
		Query: url.Values{"Auth": {"x", "y"}, "one": {"1"}, "empty": {"a", ""}},
		Header: http.Header{
			"X-Auth": {"h1", "h2"},
			"Cookie": {"session=c1; theme=dark", "session=c2", "other=1; session=c3"},
		},
		Subprotocols:   []string{"chat", "tok-1", "Chat", "tok-2"},
		StageVariables: map[string]string{"tenant": "acme", "blank": ""},
	}
	protocols := []string{"chat"}
	tests := []struct {
		expr   string
		values []string
		value  string
	}{
		{"route.request.querystring.Auth", []string{"x", "y"}, "y"},
		{"route.request.querystring.one", []string{"1"}, "1"},
		{"route.request.querystring.empty", []string{"a", ""}, ""},
		{"route.request.querystring.absent", nil, ""},
		{"route.request.querystring.auth", nil, ""}, // query names are case-sensitive
		{"route.request.header.X-Auth", []string{"h1", "h2"}, "h2"},
		{"route.request.header.x-auth", []string{"h1", "h2"}, "h2"}, // header names are not
		{"route.request.header.Absent", nil, ""},
		// Cookie lines are one list: joined, as the events' headers show them.
		{"route.request.header.Cookie", []string{"session=c1; theme=dark", "session=c2", "other=1; session=c3"}, "session=c1; theme=dark; session=c2; other=1; session=c3"},
		{"route.request.cookie.session", []string{"c1", "c2", "c3"}, "c3"},
		{"route.request.cookie.theme", []string{"dark"}, "dark"},
		{"route.request.cookie.absent", []string{}, ""},
		{"stageVariables.tenant", []string{"acme"}, "acme"},
		{"stageVariables.blank", []string{""}, ""},
		{"stageVariables.absent", nil, ""},
		{"route.request.subprotocol", []string{"tok-1", "tok-2"}, "tok-1"},
	}
	for _, tt := range tests {
		src, err := ParseSource(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := src.Values(req, protocols); !slices.Equal(got, tt.values) {
			t.Errorf("%s: Values() = %q; want %q", tt.expr, got, tt.values)
		}
		if got := src.Value(req, protocols); got != tt.value {
			t.Errorf("%s: Value() = %q; want %q", tt.expr, got, tt.value)
		}
	}
}

func TestReadSources(t *testing.T) {
	parse := func(exprs ...string) []Source {
		var out []Source
		for _, e := range exprs {
			s, err := ParseSource(e)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	sources := parse("route.request.header.Authorization", "route.request.querystring.Auth")
	req := func(auth []string, q string) *Request {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		return &Request{Header: http.Header{"Authorization": auth}, Query: v}
	}

	r := req([]string{"Bearer old", "Bearer new"}, "Auth=a&Auth=b")
	vals, err := ReadSources(r, sources, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := CacheKey(vals)
	if r.Token != "new" || !slices.Equal(r.SourceValues, []string{"Bearer new", "b"}) {
		t.Errorf("Token %q, SourceValues %q; want the last values", r.Token, r.SourceValues)
	}
	if want := CacheKey([][]string{{"Bearer old", "Bearer new"}, {"a", "b"}}); key != want {
		t.Errorf("key = %s; want the key of every value %s", key, want)
	}
	for _, other := range []*Request{
		req([]string{"Bearer new"}, "Auth=b"),
		req([]string{"Bearer new"}, "Auth=a&Auth=b"),
		req([]string{"Bearer old", "Bearer new"}, "Auth=b"),
		req([]string{"Bearer new", "Bearer old", "Bearer new"}, "Auth=a&Auth=b"),
	} {
		vals, err := ReadSources(other, sources, nil)
		if err != nil {
			t.Fatal(err)
		}
		if CacheKey(vals) == key {
			t.Errorf("%q %q shares the cache key of another list of values", other.Header["Authorization"], other.Query["Auth"])
		}
	}

	for _, tt := range []struct {
		name string
		r    *Request
		want string
	}{
		{"header missing", req(nil, "Auth=a"), "route.request.header.Authorization"},
		{"last header empty", req([]string{"Bearer x", ""}, "Auth=a"), "route.request.header.Authorization"},
		{"query missing", req([]string{"Bearer x"}, ""), "route.request.querystring.Auth"},
		{"last query value empty", req([]string{"Bearer x"}, "Auth=a&Auth="), "route.request.querystring.Auth"},
	} {
		_, err := ReadSources(tt.r, sources, nil)
		var d *Denial
		if !errors.As(err, &d) || d.Status != http.StatusUnauthorized || d.Reason != "identity source "+tt.want+" is missing or empty" {
			t.Errorf("%s: ReadSources() = %v; want a 401 naming %s", tt.name, err, tt.want)
		}
	}
	// An earlier empty value does not matter: the last one counts.
	if _, err := ReadSources(req([]string{"", "Bearer x"}, "Auth=&Auth=a"), sources, nil); err != nil {
		t.Errorf("earlier values empty: %v", err)
	}
	// No sources: nothing to read, and every request shares one key.
	r = req(nil, "")
	if vals, err := ReadSources(r, nil, nil); err != nil || r.Token != "" || len(r.SourceValues) != 0 || CacheKey(vals) != CacheKey(nil) {
		t.Errorf("no sources: values %q, err %v, Token %q", vals, err, r.Token)
	}
}

func TestBearer(t *testing.T) {
	header := Source{Kind: SourceHeader, Name: "Authorization"}
	query := Source{Kind: SourceQuery, Name: "token"}
	for _, tt := range []struct {
		src  Source
		in   string
		want string
	}{
		{header, "Bearer abc", "abc"},
		{header, "bearer abc", "abc"},
		{header, "Bearer ", "Bearer "},
		{header, "Basic abc", "Basic abc"},
		{header, "abc", "abc"},
		{query, "Bearer abc", "Bearer abc"},
	} {
		if got := bearer(tt.src, tt.in); got != tt.want {
			t.Errorf("bearer(%v, %q) = %q; want %q", tt.src.Kind, tt.in, got, tt.want)
		}
	}
}
