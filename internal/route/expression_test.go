package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// awsPayload is the message of the example table in the AWS documentation on
// selection expressions.
const awsPayload = `{"service":"chat","action":"join","data":{"room":"room1234"}}`

func mustParse(t testing.TB, expr string) *Expression {
	t.Helper()
	e, err := ParseExpression(expr)
	if err != nil {
		t.Fatalf("ParseExpression(%q): %v", expr, err)
	}
	return e
}

func TestEvaluateAWSExamples(t *testing.T) {
	tests := []struct {
		expr string
		want string
	}{
		{`$request.body.action`, "join"},
		{`${request.body.action}`, "join"},
		{`${request.body.service}/${request.body.action}`, "chat/join"},
		{`${request.body.action}-${request.body.invalidPath}`, "join-"},
		{`action`, "action"},
		{`\$default`, "$default"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, ok := mustParse(t, tt.expr).Evaluate([]byte(awsPayload))
			if !ok || got != tt.want {
				t.Errorf("Evaluate = %q, %v; want %q, true", got, ok, tt.want)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name string
		expr string
		body string
		want string
	}{
		// Paths.
		{"nested", `$request.body.data.room`, awsPayload, "room1234"},
		{"nested braced", `${request.body.data.room}`, awsPayload, "room1234"},
		{"nested missing leaf", `$request.body.data.floor`, awsPayload, ""},
		{"path through string", `$request.body.action.x`, awsPayload, ""},
		{"path through number", `$request.body.n.x`, `{"n":1}`, ""},
		{"path through null", `$request.body.n.x`, `{"n":null}`, ""},
		{"three levels", `$request.body.a.b.c`, `{"a":{"x":0,"b":{"y":[1,{"c":"no"}],"c":"deep"}}}`, "deep"},
		{"same name at other depth", `$request.body.a.b`, `{"b":"top","a":{"c":{"b":"inner"},"b":"here"}}`, "here"},
		{"hyphen and underscore", `$request.body.x-y_z`, `{"x-y_z":"ok"}`, "ok"},
		{"digits as member", `$request.body.0`, `{"0":"zero"}`, "zero"},
		{"digits do not index arrays", `$request.body.a.0`, `{"a":["x"]}`, ""},
		{"empty member name", `$request.body['']`, `{"":"empty"}`, "empty"},
		{"member names are case sensitive", `$request.body.Action`, awsPayload, ""},

		// Array indexes.
		{"index", `$request.body.items[1]`, `{"items":["a","b","c"]}`, "b"},
		{"index zero", `$request.body.items[0]`, `{"items":["a","b","c"]}`, "a"},
		{"index out of range", `$request.body.items[3]`, `{"items":["a","b","c"]}`, ""},
		{"index into object", `$request.body.items[0]`, `{"items":{"0":"a"}}`, ""},
		{"index then member", `$request.body.items[1].id`, `{"items":[{"id":1},{"id":2}]}`, "2"},
		{"nested indexes", `$request.body.m[1][0]`, `{"m":[[1,2],[3,4]]}`, "3"},
		{"index on root array", `$request.body[1]`, `["a","b"]`, "b"},
		{"index leading zero", `$request.body[01]`, `["a","b"]`, "b"},

		// Bracketed names.
		{"single quoted", `$request.body['name with spaces']`, `{"name with spaces":"v"}`, "v"},
		{"double quoted", `$request.body["name"]`, `{"name":"v"}`, "v"},
		{"quoted dot", `$request.body['a.b']`, `{"a.b":"flat","a":{"b":"nested"}}`, "flat"},
		{"quoted then dotted", `$request.body['a b'].c`, `{"a b":{"c":"v"}}`, "v"},
		{"escaped quote", `$request.body['it\'s']`, `{"it's":"v"}`, "v"},
		{"escaped double quote", `$request.body["say \"hi\""]`, `{"say \"hi\"":"v"}`, "v"},
		{"escaped backslash", `$request.body['a\\b']`, `{"a\\b":"v"}`, "v"},
		{"brace inside braced name", `${request.body['a}b']}`, `{"a}b":"v"}`, "v"},
		{"non-ASCII name", `$request.body['é']`, `{"é":"v"}`, "v"},

		// Unbraced variables end where the path ends.
		{"slash after variable", `$request.body.action/x`, awsPayload, "join/x"},
		{"space after variable", `$request.body.action x`, awsPayload, "join x"},
		{"hyphen continues the name", `$request.body.action-x`, awsPayload, ""},
		{"static before variable", `v1:$request.body.action`, awsPayload, "v1:join"},
		{"braces allow hyphen after", `${request.body.action}-x`, awsPayload, "join-x"},
		{"adjacent variables", `${request.body.service}${request.body.action}`, awsPayload, "chatjoin"},
		{"repeated variable", `${request.body.action}.${request.body.action}`, awsPayload, "join.join"},
		{"parent and child", `${request.body.data}|${request.body.data.room}`, awsPayload, "{room=room1234}|room1234"},
		{"more variables than inline spans", `$request.body.a $request.body.b $request.body.c $request.body.d $request.body.e $request.body.f $request.body.g $request.body.h $request.body.i $request.body.j`,
			`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10}`, "1 2 3 4 5 6 7 8 9 10"},

		// Static text and escapes.
		{"escaped dollar mid text", `a\$b`, awsPayload, "a$b"},
		{"backslash kept", `a\b`, awsPayload, `a\b`},
		{"escaped dollar before variable", `\$$request.body.action`, awsPayload, "$join"},
		{"double backslash then escape", `\\$default`, awsPayload, `\$default`},
		{"escaped variable", `\$request.body.action`, awsPayload, "$request.body.action"},

		// Strings.
		{"unicode escape", `$request.body.s`, `{"s":"caf\u00e9"}`, "café"},
		{"surrogate pair", `$request.body.s`, `{"s":"\ud83d\ude00"}`, "😀"},
		{"lone surrogate", `$request.body.s`, `{"s":"a\ud800b"}`, "a\uFFFDb"},
		{"escapes", `$request.body.s`, `{"s":"a\"b\\c\/d\n\te"}`, "a\"b\\c/d\n\te"},
		{"raw UTF-8", `$request.body.s`, `{"s":"日本語"}`, "日本語"},
		{"invalid UTF-8", `$request.body.s`, "{\"s\":\"a\xffb\"}", "a\uFFFDb"},
		{"escaped member name", `$request.body.action`, `{"act\u0069on":"esc"}`, "esc"},
		{"escaped non-ASCII member name", `$request.body['é']`, `{"\u00e9":"v"}`, "v"},
		{"invalid UTF-8 member name", `$request.body['a` + "\uFFFD" + `']`, "{\"a\xff\":\"v\"}", "v"},
		{"empty string", `$request.body.s`, `{"s":""}`, ""},
		{"escapes in multi-variable key", `${request.body.a}/${request.body.b}`, `{"a":"x\u0041","b":"\u00e9"}`, "xA/é"},

		// Numbers, booleans, null.
		{"integer", `$request.body.n`, `{"n":42}`, "42"},
		{"negative", `$request.body.n`, `{"n":-7}`, "-7"},
		{"zero", `$request.body.n`, `{"n":0}`, "0"},
		{"trailing zero kept", `$request.body.n`, `{"n":1.0}`, "1.0"},
		{"exponent kept", `$request.body.n`, `{"n":-1.5E+10}`, "-1.5E+10"},
		{"big integer kept", `$request.body.n`, `{"n":10000000000000000000}`, "10000000000000000000"},
		{"true", `$request.body.b`, `{"b":true}`, "true"},
		{"false", `$request.body.b`, `{"b":false}`, "false"},
		{"null", `$request.body.x`, `{"x":null}`, ""},
		{"null in multi-variable key", `a${request.body.x}b`, `{"x":null}`, "ab"},
		{"number in multi-variable key", `${request.body.v}.${request.body.n}`, `{"v":"v","n":2.50}`, "v.2.50"},

		// Arrays and objects.
		{"array", `$request.body.a`, `{"a":["item1","item2"]}`, "[item1, item2]"},
		{"array of scalars", `$request.body.a`, `{"a":[1, "two", true, false, null, 1.0]}`, "[1, two, true, false, , 1.0]"},
		{"empty array", `$request.body.a`, `{"a":[]}`, "[]"},
		{"nested arrays", `$request.body.a`, `{"a":[[1,2],[],[[3]]]}`, "[[1, 2], [], [[3]]]"},
		{"object", `$request.body.o`, `{"o":{"b":1,"a":"x"}}`, "{b=1, a=x}"},
		{"empty object", `$request.body.o`, `{"o":{}}`, "{}"},
		{"nested object", `$request.body.o`, `{"o":{"a":{"b":[1,{"c":null}]},"d":"e"}}`, "{a={b=[1, {c=}]}, d=e}"},
		{"whitespace in composite", `$request.body.o`, "{\"o\" : { \"a\" : [ 1 , 2 ] , \"b\" : { } } }", "{a=[1, 2], b={}}"},
		{"escaped names in object", `$request.body.o`, `{"o":{"\u0061":"\u0062"}}`, "{a=b}"},
		{"composite in multi-variable key", `${request.body.a}:${request.body.o}`, `{"a":[1,2],"o":{"k":"v"}}`, "[1, 2]:{k=v}"},
		{"array in template text", `x${request.body.data}y`, awsPayload, "x{room=room1234}y"},

		// Whole body.
		{"whole body object", `$request.body`, `{"a":1,"b":"c"}`, "{a=1, b=c}"},
		{"whole body braced", `${request.body}`, `{"a":1}`, "{a=1}"},
		{"whole body string", `$request.body`, `"hello"`, "hello"},
		{"whole body number", `$request.body`, ` 12.50 `, "12.50"},
		{"whole body null", `$request.body`, `null`, ""},
		{"whole body array", `$request.body`, `[1,[2]]`, "[1, [2]]"},

		// Bodies that are JSON but not objects.
		{"string body", `$request.body.action`, `"join"`, ""},
		{"number body", `$request.body.action`, `42`, ""},
		{"null body", `$request.body.action`, `null`, ""},
		{"true body", `$request.body.action`, `true`, ""},
		{"array body", `$request.body.action`, `[{"action":"join"}]`, ""},
		{"static with non-object body", `static`, `[1]`, "static"},
		{"missing in two-variable key", `${request.body.a}/${request.body.b}`, `[]`, "/"},

		// Duplicate member names: the last one wins.
		{"duplicate", `$request.body.action`, `{"action":"first","action":"last"}`, "last"},
		{"duplicate replaces subtree", `$request.body.a.b`, `{"a":{"b":1},"a":{"c":2}}`, ""},
		{"duplicate replaced by scalar", `$request.body.a.b`, `{"a":{"b":1},"a":3}`, ""},
		{"duplicate subtree found again", `$request.body.a.b`, `{"a":{"b":1},"a":{"b":2}}`, "2"},
		{"duplicate inner", `$request.body.a.b`, `{"a":{"b":1,"b":2}}`, "2"},
		{"duplicate array", `$request.body.a[0]`, `{"a":["x"],"a":[]}`, ""},
		{"duplicate to null", `$request.body.a`, `{"a":"x","a":null}`, ""},
		{"duplicate with parent variable", `${request.body.a}|${request.body.a.b}`, `{"a":{"b":1},"a":{"b":2,"c":3}}`, "{b=2, c=3}|2"},
		{"duplicate in stringified object", `$request.body.o`, `{"o":{"x":1,"y":2,"x":3}}`, "{x=3, y=2}"},
		{"duplicate of escaped name", `$request.body.o`, `{"o":{"x":1,"\u0078":2}}`, "{x=2}"},
		{"duplicate in large stringified object", `$request.body.o`,
			`{"o":{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k1":"a","k16":"b","k17":17}}`,
			"{k0=0, k1=a, k2=2, k3=3, k4=4, k5=5, k6=6, k7=7, k8=8, k9=9, k10=10, k11=11, k12=12, k13=13, k14=14, k15=15, k16=b, k17=17}"},

		// Whitespace.
		{"surrounding whitespace", `$request.body.action`, " \t\r\n{ \"action\" : \"join\" } \n", "join"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.body)) {
				t.Fatalf("test body %q is not valid JSON", tt.body)
			}
			got, ok := mustParse(t, tt.expr).Evaluate([]byte(tt.body))
			if !ok || got != tt.want {
				t.Errorf("%s on %s = %q, %v; want %q, true", tt.expr, tt.body, got, ok, tt.want)
			}
		})
	}
}

func TestEvaluateInvalidJSON(t *testing.T) {
	bodies := []string{
		``,
		` `,
		`join`,
		`{"action":"join"`,
		`{"action":"join",`,
		`{"action":"join"}}`,
		`{"action":"join"} {}`,
		`{"action":"join"}x`,
		`{"action":"join",}`,
		`{,}`,
		`{"action" "join"}`,
		`{"action":}`,
		`{action:"join"}`,
		`{'action':'join'}`,
		`{"action":"join\q"}`,
		`{"action":"join\u12"}`,
		`{"action":"join\u12g4"}`,
		"{\"action\":\"jo\x01in\"}",
		"{\"action\":\"join\"}\x00",
		"\xef\xbb\xbf{\"action\":\"join\"}",
		`{"action":"join`,
		`{"action":"join\"}`,
		`{"n":01}`,
		`{"n":1.}`,
		`{"n":.5}`,
		`{"n":-}`,
		`{"n":+1}`,
		`{"n":1e}`,
		`{"n":1e+}`,
		`{"n":NaN}`,
		`{"n":Infinity}`,
		`{"b":tru}`,
		`{"b":True}`,
		`{"b":nul}`,
		`[1,]`,
		`[1 2]`,
		`[`,
		`]`,
		`"unterminated`,
		`{"a":[1,2}`,
		`{"a":{"b":1]}`,
		`{"data":{"room":"x"},"action":"join"` + strings.Repeat(" ", 100),
	}
	exprs := []string{`$request.body.action`, `static`, `$request.body`, `${request.body.data.room}/${request.body.n}`}
	for _, body := range bodies {
		if json.Valid([]byte(body)) {
			t.Fatalf("test body %q is valid JSON", body)
		}
		for _, expr := range exprs {
			got, ok := mustParse(t, expr).Evaluate([]byte(body))
			if ok || got != "" {
				t.Errorf("%s on %q = %q, %v; want \"\", false", expr, body, got, ok)
			}
		}
	}
}

func TestEvaluateDepth(t *testing.T) {
	nested := func(depth int, open, close, leaf string) []byte {
		return []byte(strings.Repeat(open, depth) + leaf + strings.Repeat(close, depth))
	}
	e := mustParse(t, `$request.body`)
	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"arrays at limit", nested(exprMaxDepth, "[", "]", "")},
		{"arrays past limit", nested(exprMaxDepth+1, "[", "]", "")},
		{"objects at limit", nested(exprMaxDepth, `{"a":`, "}", "1")},
		{"objects past limit", nested(exprMaxDepth+1, `{"a":`, "}", "1")},
		{"mixed at limit", append(append([]byte(`{"a":`), nested(exprMaxDepth-1, "[", "]", "")...), '}')},
		{"mixed past limit", append(append([]byte(`{"a":`), nested(exprMaxDepth, "[", "]", "")...), '}')},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ok := e.Evaluate(tt.body)
			if want := json.Valid(tt.body); ok != want {
				t.Errorf("ok = %v; json.Valid = %v", ok, want)
			}
		})
	}

	// A path 200 members deep, inside a document 1000 levels deep.
	var expr strings.Builder
	expr.WriteString("$request.body")
	for range 200 {
		expr.WriteString(".a")
	}
	body := nested(1000, `{"x":0,"a":`, "}", `"bottom"`)
	got, ok := mustParse(t, expr.String()).Evaluate(body)
	if !ok || got != strings.Repeat(`{x=0, a=`, 800)+`bottom`+strings.Repeat("}", 800) {
		t.Errorf("deep path: got %.40q…, %v", got, ok)
	}
	got, ok = mustParse(t, `$request.body.a.a.a.x`).Evaluate(body)
	if !ok || got != "0" {
		t.Errorf("deep path: got %q, %v; want \"0\", true", got, ok)
	}
}

func TestParseExpression(t *testing.T) {
	tests := []struct {
		expr  string
		parts int
		vars  int
	}{
		{`$request.body.action`, 1, 1},
		{`${request.body.action}`, 1, 1},
		{`$request.body`, 1, 1},
		{`action`, 1, 0},
		{`\$default`, 1, 0},
		{`a\$b\$c`, 1, 0},
		{`${request.body.service}/${request.body.action}`, 3, 2},
		{`${request.body.a}${request.body.a}`, 2, 1},
		{`${request.body.a}|${request.body.a.b}|${request.body}`, 5, 3},
		{`$request.body.items[0]['x y']["z"].w`, 1, 1},
		{`x $request.body.a y`, 3, 1},
	}
	for _, tt := range tests {
		e := mustParse(t, tt.expr)
		if len(e.parts) != tt.parts || e.nvars != tt.vars {
			t.Errorf("ParseExpression(%q): %d parts, %d variables; want %d, %d", tt.expr, len(e.parts), e.nvars, tt.parts, tt.vars)
		}
		if e.String() != tt.expr {
			t.Errorf("String() = %q; want %q", e.String(), tt.expr)
		}
	}
}

func TestParseExpressionErrors(t *testing.T) {
	tests := []struct {
		expr   string
		offset int
		msg    string // a substring of the message
	}{
		{``, 0, `expression is empty`},
		{"a\xffb", 1, `not valid UTF-8`},
		{`$context.requestId`, 0, `unsupported variable "$context.requestId"`},
		{`$request.header.x-api-key`, 0, `unsupported variable "$request.header.x-api-key"`},
		{`${context.authorizer.principalId}`, 0, `unsupported variable "${context.authorizer.principalId}"`},
		{`$request.querystring.a`, 0, `unsupported variable`},
		{`$default`, 0, `unsupported variable "$default"`},
		{`x-$request.bodyx`, 2, `unsupported variable "$request.bodyx"`},
		{`$request.body-x`, 0, `unsupported variable "$request.body-x"`},
		{`$Request.body.action`, 0, `unsupported variable`},
		{`${}`, 0, `empty variable "${}"`},
		{`${`, 0, `unterminated "${"`},
		{`a${request.body.action`, 1, `unterminated "${"`},
		{`${request.body.action `, 21, `unexpected ' '`},
		{`${ request.body.action }`, 0, `"${" followed by ' ' does not start a variable`},
		{`$`, 0, `lone "$"`},
		{`action$`, 6, `lone "$"`},
		{`$ x`, 0, `"$" followed by ' '`},
		{`$$request.body.a`, 0, `"$" followed by '$'`},
		{`$request.body..a`, 14, `empty path segment after "$request.body."`},
		{`$request.body.`, 14, `empty path segment`},
		{`$request.body.action.`, 21, `empty path segment after "$request.body.action."`},
		{`$request.body.a./x`, 16, `empty path segment`},
		{`$request.body.['a']`, 14, `empty path segment`},
		{`${request.body.}`, 15, `empty path segment`},
		{`$request.body.a.$request.body.b`, 16, `empty path segment`},
		{`$request.body[`, 13, `unterminated "["`},
		{`$request.body[]`, 13, `unsupported bracket step "[]"`},
		{`$request.body[*]`, 13, `unsupported bracket step "[*]"`},
		{`$request.body[-1]`, 13, `unsupported bracket step "[-1]"`},
		{`$request.body[?(@.a)]`, 13, `unsupported bracket step`},
		{`$request.body[a]`, 13, `unsupported bracket step "[a]"`},
		{`$request.body['a`, 13, `unterminated quoted name`},
		{`$request.body['a\']`, 13, `unterminated quoted name`},
		{`$request.body['a'`, 17, `expected "]" after quoted name "['a'"`},
		{`$request.body['a'x]`, 17, `expected "]"`},
		{`$request.body[0`, 15, `expected "]" after array index "[0"`},
		{`$request.body[1,2]`, 15, `expected "]"`},
		{`$request.body[99999999999999999999999]`, 14, `out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := ParseExpression(tt.expr)
			if err == nil {
				t.Fatalf("ParseExpression(%q) = %v, nil; want an error", tt.expr, e.parts)
			}
			var ee *ExpressionError
			if !errors.As(err, &ee) {
				t.Fatalf("error %v is %T; want *ExpressionError", err, err)
			}
			if ee.Expr != tt.expr || ee.Offset != tt.offset || !strings.Contains(ee.Msg, tt.msg) {
				t.Errorf("error %q at offset %d; want offset %d and a message containing %q", ee.Msg, ee.Offset, tt.offset, tt.msg)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("%q", tt.expr)) || !strings.Contains(msg, fmt.Sprintf("offset %d", tt.offset)) {
				t.Errorf("Error() = %q; want it to name the expression and the offset", msg)
			}
			if msg != strings.ToLower(msg[:1])+msg[1:] {
				t.Errorf("Error() = %q; want a lowercase message", msg)
			}
		})
	}
}

func TestEvaluateConcurrent(t *testing.T) {
	e := mustParse(t, `${request.body.service}/${request.body.action}`)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				body := fmt.Sprintf(`{"service":"s%d","action":"a%d"}`, g, i)
				want := fmt.Sprintf("s%d/a%d", g, i)
				if got, ok := e.Evaluate([]byte(body)); !ok || got != want {
					t.Errorf("Evaluate(%s) = %q, %v; want %q", body, got, ok, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEvaluateDoesNotRetainBody(t *testing.T) {
	e := mustParse(t, `$request.body.action`)
	body := []byte(`{"action":"join"}`)
	got, _ := e.Evaluate(body)
	copy(body, bytes.Repeat([]byte("x"), len(body)))
	if got != "join" {
		t.Errorf("result changed to %q after the body was overwritten", got)
	}
}

func TestEvaluateAllocations(t *testing.T) {
	body := []byte(`{"action":"sendmessage","data":{"room":"room1234","text":"hello there"}}`)
	tests := []struct {
		expr string
		max  float64
	}{
		{`$request.body.action`, 1},
		{`$request.body.missing`, 0},
		{`\$default`, 0},
		{`${request.body.data.room}/${request.body.action}`, 1},
	}
	for _, tt := range tests {
		e := mustParse(t, tt.expr)
		if n := testing.AllocsPerRun(100, func() { e.Evaluate(body) }); n > tt.max {
			t.Errorf("%s: %v allocations per Evaluate; want at most %v", tt.expr, n, tt.max)
		}
	}
}

// referenceEvaluate evaluates e on body with encoding/json. It reports false
// when a variable finds an object, whose member order encoding/json does not
// keep.
func referenceEvaluate(t *testing.T, e *Expression, body []byte) (string, bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		t.Fatalf("decoding valid body %q: %v", body, err)
	}
	paths := make([][]exprStep, e.nvars)
	var walk func(n *exprNode, path []exprStep)
	walk = func(n *exprNode, path []exprStep) {
		if n.v >= 0 {
			paths[n.v] = path
		}
		for _, m := range n.members {
			walk(m.node, append(path[:len(path):len(path)], exprStep{name: m.name, index: -1}))
		}
		for _, el := range n.elements {
			walk(el.node, append(path[:len(path):len(path)], exprStep{index: el.index}))
		}
	}
	if e.root != nil {
		walk(e.root, nil)
	}
	var b strings.Builder
	for _, pt := range e.parts {
		if pt.v < 0 {
			b.WriteString(pt.text)
			continue
		}
		v := doc
		for _, st := range paths[pt.v] {
			switch c := v.(type) {
			case map[string]any:
				if st.index >= 0 {
					v = nil
				} else {
					v = c[st.name]
				}
			case []any:
				if st.index >= 0 && st.index < len(c) {
					v = c[st.index]
				} else {
					v = nil
				}
			default:
				v = nil
			}
		}
		s, ok := referenceStringify(v)
		if !ok {
			return "", false
		}
		b.WriteString(s)
	}
	return b.String(), true
}

func referenceStringify(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case json.Number:
		return string(v), true
	case bool:
		return fmt.Sprint(v), true
	case []any:
		items := make([]string, len(v))
		for i, item := range v {
			s, ok := referenceStringify(item)
			if !ok {
				return "", false
			}
			items[i] = s
		}
		return "[" + strings.Join(items, ", ") + "]", true
	default:
		return "", false
	}
}

var fuzzExprs = []string{
	`$request.body.action`,
	`${request.body.service}/${request.body.action}`,
	`$request.body`,
	`$request.body.a.b[1]['c d']`,
	`$request.body[0].x`,
	`\$default`,
}

func FuzzEvaluate(f *testing.F) {
	for _, body := range []string{
		awsPayload,
		`{"action":"x"`,
		`{"action":"x","action":{"y":[1,2.0,"z",null,true]}}`,
		`{"a":{"b":[0,{"c d":"v"}]},"a":{"b":[1,2]}}`,
		`[{"x":"\u00e9\ud83d\ude00"},1]`,
		"{\"action\":\"\xff\"}",
		`{"act\u0069on":-0.5e-3}`,
		`  "str"  `,
		`[[[[[]]]]]`,
		`{"":{}}`,
	} {
		for _, expr := range fuzzExprs {
			f.Add([]byte(body), expr)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, expr string) {
		e, err := ParseExpression(expr)
		if err != nil {
			e = mustParse(t, fuzzExprs[len(expr)%len(fuzzExprs)])
		}
		got, ok := e.Evaluate(body)
		if want := json.Valid(body); ok != want {
			t.Fatalf("%s on %q: ok = %v; json.Valid = %v", e, body, ok, want)
		}
		if !ok {
			if got != "" {
				t.Fatalf("%s on %q: key %q with ok = false", e, body, got)
			}
			return
		}
		if want, comparable := referenceEvaluate(t, e, body); comparable && got != want {
			t.Fatalf("%s on %q = %q; encoding/json gives %q", e, body, got, want)
		}
	})
}

func FuzzParseExpression(f *testing.F) {
	for _, s := range []string{
		`$request.body.action`,
		`${request.body.action}-${request.body.invalidPath}`,
		`\$default`,
		`action`,
		`$request.body['a b'][0]["c\"d"].e-f_g`,
		`${request.body['}']}`,
		`${`,
		`$request.body..a`,
		`$context.requestId`,
		`a\b\$c$`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpression(s)
		if err != nil {
			var ee *ExpressionError
			if !errors.As(err, &ee) || ee.Offset < 0 || ee.Offset > len(s) {
				t.Fatalf("ParseExpression(%q): error %#v", s, err)
			}
			return
		}
		if e.String() != s {
			t.Fatalf("String() = %q; want %q", e.String(), s)
		}
		got, ok := e.Evaluate([]byte(awsPayload))
		if !ok {
			t.Fatalf("%s: not ok on a valid body", s)
		}
		if e.nvars == 0 && !strings.Contains(strings.ReplaceAll(s, `\$`, "$"), got) {
			t.Fatalf("static expression %q evaluated to %q", s, got)
		}
	})
}

// largeBody returns an object of about size bytes whose "action" member comes
// first or last.
func largeBody(size int, actionFirst bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{`)
	if actionFirst {
		b.WriteString(`"action":"sendmessage",`)
	}
	b.WriteString(`"items":[`)
	for i := 0; b.Len() < size-100; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item number %d","price":%d.99,"tags":["a","b\u00e9"],"ok":true,"note":null}`, i, i, i)
	}
	b.WriteString(`]`)
	if !actionFirst {
		b.WriteString(`,"action":"sendmessage"`)
	}
	b.WriteString(`}`)
	return b.Bytes()
}

func BenchmarkEvaluate(b *testing.B) {
	small := []byte(`{"action":"sendmessage","data":{"room":"room1234","text":"hello there, how are you?"}}`)
	benchmarks := []struct {
		name string
		expr string
		body []byte
	}{
		{"small", `$request.body.action`, small},
		{"small/two-variables", `${request.body.data.room}/${request.body.action}`, small},
		{"small/static", `\$default`, small},
		{"100KiB/action-first", `$request.body.action`, largeBody(100<<10, true)},
		{"100KiB/action-last", `$request.body.action`, largeBody(100<<10, false)},
	}
	for _, bm := range benchmarks {
		e := mustParse(b, bm.expr)
		if key, ok := e.Evaluate(bm.body); !ok || key == "" {
			b.Fatalf("%s: Evaluate = %q, %v", bm.name, key, ok)
		}
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.body)))
			for b.Loop() {
				e.Evaluate(bm.body)
			}
		})
	}
}

// BenchmarkJSONValid measures encoding/json on the same bodies, for scale.
func BenchmarkJSONValid(b *testing.B) {
	for _, bm := range []struct {
		name string
		body []byte
	}{
		{"small", []byte(`{"action":"sendmessage","data":{"room":"room1234","text":"hello there, how are you?"}}`)},
		{"100KiB", largeBody(100<<10, true)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.body)))
			for b.Loop() {
				json.Valid(bm.body)
			}
		})
	}
}
