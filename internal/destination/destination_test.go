package destination

import (
	"errors"
	"strings"
	"testing"
)

func event(body string, authorizer map[string]any) *Event {
	ev := &Event{Body: body}
	ev.RequestContext.ConnectionID = "L0SM9cOFvHcCIhw="
	ev.RequestContext.RouteKey = "sendmessage"
	if authorizer != nil {
		ev.RequestContext.Authorizer = authorizer
	}
	return ev
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty name"},
		{"chat.{connectionid}", "unknown placeholder {connectionid}"},
		{"chat.{principalId", "unterminated placeholder at offset 5"},
		{"chat.}x", "unmatched } at offset 5"},
		{"chat.{authorizer.}", "placeholder {authorizer.}: name an authorizer context key"},
		{"chat.{body}", "unknown placeholder {body}"},
		{"chat.{body.a b}", "placeholder {body.a b}: not a path into the message"},
		{"chat.{body.a.}", "placeholder {body.a.}: not a path into the message"},
		{"chat.{body.[0]}", "placeholder {body.[0]}: not a path into the message"},
		{"chat.{}", "unknown placeholder {}"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestExpand(t *testing.T) {
	auth := map[string]any{"principalId": "alice", "tenant": "acme", "integrationLatency": int64(3)}
	tests := []struct {
		tmpl, body string
		auth       map[string]any
		want       string
	}{
		{"chat", "", nil, "chat"},
		{"chat.{{literal}}", "", nil, "chat.{literal}"},
		{"room{{{body.room}}}", `{"room":"lobby"}`, nil, "room{lobby}"},
		{"conn.{connectionId}", "", nil, "conn.L0SM9cOFvHcCIhw="},
		{"{routeKey}-in", "", nil, "sendmessage-in"},
		{"user.{principalId}", "", auth, "user.alice"},
		{"t.{authorizer.tenant}.{principalId}", "", auth, "t.acme.alice"},
		{"lat.{authorizer.integrationLatency}", "", auth, "lat.3"},
		{"room.{body.room}", `{"room":"lobby"}`, nil, "room.lobby"},
		{"room.{body.meta.room}", `{"meta":{"room":"r1"}}`, nil, "room.r1"},
		{"item.{body.items[1].id}", `{"items":[{"id":1},{"id":22}]}`, nil, "item.22"},
		{"q.{body['a b']}", `{"a b":"x"}`, nil, "q.x"},
		{"n.{body.n}", `{"n":42}`, nil, "n.42"},
	}
	for _, tt := range tests {
		tm, err := Parse(tt.tmpl)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.tmpl, err)
		}
		got, err := tm.Expand(event(tt.body, tt.auth), nil)
		if err != nil || got != tt.want {
			t.Errorf("%q.Expand = %q, %v; want %q", tt.tmpl, got, err, tt.want)
		}
	}
}

func TestExpandFailures(t *testing.T) {
	noDots := func(v string) error {
		if strings.Contains(v, ".") {
			return errors.New("dot")
		}
		return nil
	}
	tests := []struct {
		tmpl, body string
		auth       map[string]any
		binary     bool
		want       string
	}{
		{"user.{principalId}", "", nil, false, "placeholder {principalId}: no authorizer context"},
		{"user.{principalId}", "", map[string]any{"principalId": ""}, false, "placeholder {principalId}: no value"},
		{"t.{authorizer.tenant}", "", map[string]any{"principalId": "a"}, false, "placeholder {authorizer.tenant}: the authorizer context has no such key"},
		{"room.{body.room}", `not json`, nil, false, "placeholder {body.room}: the message is not JSON"},
		{"room.{body.room}", `{"other":1}`, nil, false, "placeholder {body.room}: no value"},
		{"room.{body.room}", `{"room":null}`, nil, false, "placeholder {body.room}: no value"},
		{"room.{body.room}", `{"room":"a.b"}`, nil, false, "placeholder {body.room}: dot"},
		{"room.{body.room}", `{"room":"a\nb"}`, nil, false, "placeholder {body.room}: the value holds a control character"},
		{"room.{body.room}", `{"room":"` + strings.Repeat("x", MaxValueBytes+1) + `"}`, nil, false, "longer than 256 bytes"},
		{"room.{body.room}", `eyJyb29tIjoieCJ9`, nil, true, "placeholder {body.room}: the message is binary"},
	}
	for _, tt := range tests {
		tm, err := Parse(tt.tmpl)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.tmpl, err)
		}
		ev := event(tt.body, tt.auth)
		ev.IsBase64Encoded = tt.binary
		got, err := tm.Expand(ev, noDots)
		var pe *Error
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q.Expand(%q) = %q, %v; want an *Error containing %q", tt.tmpl, tt.body, got, err, tt.want)
		}
		if err != nil && strings.Contains(tt.body, `"room":"`) && strings.Contains(err.Error(), "a.b") {
			t.Errorf("error %q repeats the client's value", err)
		}
	}
}

func TestMask(t *testing.T) {
	tm, err := Parse("a.{principalId}.x-{body.r}.{{z}}")
	if err != nil {
		t.Fatal(err)
	}
	if got := tm.Mask("*"); got != "a.*.x-*.{z}" {
		t.Errorf("Mask = %q", got)
	}
	if tm.Static() {
		t.Error("Static() = true for a template with placeholders")
	}
	if st, _ := Parse("a.b"); !st.Static() {
		t.Error("Static() = false for a literal")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"chat.{principalId}", "{body.a[0]['x']}", "{{}}", "{authorizer.k}.{routeKey}", "}{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := Parse(s)
		if err != nil {
			return
		}
		if tm.String() != s {
			t.Fatalf("String() = %q, want %q", tm.String(), s)
		}
		_, _ = tm.Expand(event(`{"a":[{"x":"1"}]}`, map[string]any{"principalId": "p", "k": "v"}), nil)
	})
}
