package route

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Expression is a compiled route selection expression. Safe for concurrent use.
//
// An expression is static text mixed with variables. A variable starts with
// "$" and names a value in the JSON message body: "$request.body" is the whole
// body and "$request.body.data.room" a member below it. Braces delimit a
// variable explicitly, as in "${request.body.service}/${request.body.action}";
// without braces a variable runs up to the first character that cannot
// continue its path, so "$request.body.action-x" names the member "action-x"
// and "${request.body.action}-x" is the action followed by "-x". "\$" is a
// literal dollar sign, so "\$default" is the
// static key "$default". A backslash before any other character is itself
// literal text.
//
// Below "$request.body" a path is a sequence of steps:
//
//   - ".name", where name is one or more of the characters A-Z a-z 0-9 _ -,
//     selects an object member;
//   - "['name']" or "[\"name\"]" selects a member whose name may contain any
//     character; inside the quotes a backslash makes the next character literal;
//   - "[0]" selects an array element by its zero-based index.
//
// A member step matches objects only and an index step matches arrays only.
//
// The zero value is not usable; call [ParseExpression].
type Expression struct {
	src   string
	parts []exprPart
	// root is the trie of every variable's path, or nil when the expression
	// has no variables.
	root  *exprNode
	nvars int
	// fixed is the key of an expression without variables.
	fixed string
	// static is the length of all static text, used to size results.
	static int
}

// exprPart is one piece of an expression: static text, or a variable.
type exprPart struct {
	text string // static text, used when v < 0
	v    int    // variable number, or -1
}

// exprStep is one step of a variable's path below request.body.
type exprStep struct {
	name  string // member name, used when index < 0
	index int    // array index, or -1
}

// exprNode is a node of the trie built from the paths of all variables of an
// expression. The root stands for the whole body.
type exprNode struct {
	members  []exprMemberEdge
	elements []exprElementEdge
	// v is the variable whose path ends at this node, or -1.
	v int
	// vars lists the variables whose paths end at or below this node. When the
	// body holds a duplicate member name, the later value replaces the earlier
	// one, so everything found under the earlier one is forgotten.
	vars []int
}

type exprMemberEdge struct {
	name string
	node *exprNode
}

type exprElementEdge struct {
	index int
	node  *exprNode
}

// ExpressionError reports why a selection expression could not be parsed.
type ExpressionError struct {
	// Expr is the expression as given to ParseExpression.
	Expr string
	// Offset is the byte offset in Expr where the problem was found.
	Offset int
	// Msg describes the problem.
	Msg string
}

func (e *ExpressionError) Error() string {
	return fmt.Sprintf("selection expression %q: at offset %d: %s", e.Expr, e.Offset, e.Msg)
}

// exprBodyRoot is the only variable root a route selection expression may use.
const exprBodyRoot = "request.body"

// ParseExpression compiles a route selection expression. The only variables
// allowed are $request.body and paths below it; anything else, an empty or
// unterminated variable, or an expression that is empty or not valid UTF-8 is
// reported as an [*ExpressionError].
func ParseExpression(s string) (*Expression, error) {
	p := exprParser{src: s}
	return p.parse()
}

type exprParser struct {
	src   string
	parts []exprPart
	root  *exprNode
	nvars int
}

func (p *exprParser) errorf(offset int, format string, args ...any) error {
	return &ExpressionError{Expr: p.src, Offset: offset, Msg: fmt.Sprintf(format, args...)}
}

func (p *exprParser) parse() (*Expression, error) {
	s := p.src
	if s == "" {
		return nil, p.errorf(0, "expression is empty")
	}
	if !utf8.ValidString(s) {
		off := 0
		for off < len(s) {
			r, size := utf8.DecodeRuneInString(s[off:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			off += size
		}
		return nil, p.errorf(off, "expression is not valid UTF-8")
	}
	var text strings.Builder
	static := 0
	flush := func() {
		if text.Len() > 0 {
			static += text.Len()
			p.parts = append(p.parts, exprPart{text: text.String(), v: -1})
			text.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '$':
			text.WriteByte('$')
			i += 2
		case s[i] == '$':
			flush()
			steps, next, err := p.variable(i)
			if err != nil {
				return nil, err
			}
			p.parts = append(p.parts, exprPart{v: p.add(steps)})
			i = next
		default:
			text.WriteByte(s[i])
			i++
		}
	}
	flush()
	e := &Expression{src: s, parts: p.parts, root: p.root, nvars: p.nvars, static: static}
	if e.root == nil {
		e.fixed = e.parts[0].text
	}
	return e, nil
}

// variable parses the variable starting with the "$" at start and returns its
// path and the offset just past it.
func (p *exprParser) variable(start int) ([]exprStep, int, error) {
	s := p.src
	i := start + 1
	braced := i < len(s) && s[i] == '{'
	if braced {
		i++
	}
	name := s[i : i+exprNameLen(s[i:])]
	if name != exprBodyRoot && !strings.HasPrefix(name, exprBodyRoot+".") {
		switch {
		case braced && i == len(s):
			return nil, 0, p.errorf(start, `unterminated "${"`)
		case braced && s[i] == '}':
			return nil, 0, p.errorf(start, `empty variable "${}"`)
		case name == "" && i == len(s):
			return nil, 0, p.errorf(start, `lone "$" at the end of the expression (write \$ for a literal dollar sign)`)
		case name == "":
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, 0, p.errorf(start, `%q followed by %q does not start a variable (write \$ for a literal dollar sign)`, s[start:i], r)
		}
		shown := s[start : i+len(name)]
		if braced && i+len(name) < len(s) && s[i+len(name)] == '}' {
			shown += "}"
		}
		return nil, 0, p.errorf(start, "unsupported variable %q: only $request.body and paths below it are allowed (write \\$ for a literal dollar sign)", shown)
	}
	steps, i, err := p.path(start, i+len(exprBodyRoot))
	if err != nil {
		return nil, 0, err
	}
	if braced {
		if i == len(s) {
			return nil, 0, p.errorf(start, `unterminated "${": missing "}"`)
		}
		if s[i] != '}' {
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, 0, p.errorf(i, `unexpected %q in variable %q: expected "}"`, r, s[start:i])
		}
		i++
	}
	return steps, i, nil
}

// path parses the path steps starting at i, for the variable starting at
// start, and returns them with the offset of the first character after them.
func (p *exprParser) path(start, i int) ([]exprStep, int, error) {
	s := p.src
	var steps []exprStep
	for i < len(s) {
		switch s[i] {
		case '.':
			n := exprSegmentLen(s[i+1:])
			if n == 0 {
				return nil, 0, p.errorf(i+1, "empty path segment after %q: a member name is one or more of A-Z a-z 0-9 _ - (use ['name'] for other names)", s[start:i+1])
			}
			steps = append(steps, exprStep{name: s[i+1 : i+1+n], index: -1})
			i += 1 + n
		case '[':
			step, next, err := p.bracket(i)
			if err != nil {
				return nil, 0, err
			}
			steps = append(steps, step)
			i = next
		default:
			return steps, i, nil
		}
	}
	return steps, i, nil
}

// bracket parses the bracket step starting with the "[" at start.
func (p *exprParser) bracket(start int) (exprStep, int, error) {
	s := p.src
	i := start + 1
	if i == len(s) {
		return exprStep{}, 0, p.errorf(start, `unterminated "["`)
	}
	switch c := s[i]; {
	case c == '\'' || c == '"':
		var name strings.Builder
		i++
		for {
			if i == len(s) {
				return exprStep{}, 0, p.errorf(start, "unterminated quoted name %q", s[start:])
			}
			if s[i] == c {
				i++
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			name.WriteByte(s[i])
			i++
		}
		if i == len(s) || s[i] != ']' {
			return exprStep{}, 0, p.errorf(i, `expected "]" after quoted name %q`, s[start:i])
		}
		return exprStep{name: name.String(), index: -1}, i + 1, nil
	case '0' <= c && c <= '9':
		j := i
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		if j == len(s) || s[j] != ']' {
			return exprStep{}, 0, p.errorf(j, `expected "]" after array index %q`, s[start:j])
		}
		n, err := strconv.Atoi(s[i:j])
		if err != nil {
			return exprStep{}, 0, p.errorf(i, "array index %s is out of range", s[i:j])
		}
		return exprStep{index: n}, j + 1, nil
	default:
		end := strings.IndexByte(s[start:], ']')
		shown := s[start:]
		if end >= 0 {
			shown = s[start : start+end+1]
		}
		return exprStep{}, 0, p.errorf(start, "unsupported bracket step %q: expected a quoted name such as ['name'] or an array index such as [0]", shown)
	}
}

// add records a variable with the given path and returns its number. Equal
// paths share one number, so the body is searched for each path once.
func (p *exprParser) add(steps []exprStep) int {
	if p.root == nil {
		p.root = &exprNode{v: -1}
	}
	nodes := []*exprNode{p.root}
	n := p.root
	for _, st := range steps {
		n = n.child(st)
		nodes = append(nodes, n)
	}
	if n.v < 0 {
		n.v = p.nvars
		p.nvars++
		for _, m := range nodes {
			m.vars = append(m.vars, n.v)
		}
	}
	return n.v
}

// child returns the node reached from n by st, adding it if needed.
func (n *exprNode) child(st exprStep) *exprNode {
	if st.index < 0 {
		for _, e := range n.members {
			if e.name == st.name {
				return e.node
			}
		}
		c := &exprNode{v: -1}
		n.members = append(n.members, exprMemberEdge{name: st.name, node: c})
		return c
	}
	for _, e := range n.elements {
		if e.index == st.index {
			return e.node
		}
	}
	c := &exprNode{v: -1}
	n.elements = append(n.elements, exprElementEdge{index: st.index, node: c})
	return c
}

// member returns the child of n for the object member whose name is the JSON
// string quoted, or nil. flags are those reported by bodyScanner.str.
func (n *exprNode) member(quoted []byte, flags int) *exprNode {
	raw := quoted[1 : len(quoted)-1]
	if flags == 0 || (flags == scanNonASCII && utf8.Valid(raw)) {
		for i := range n.members {
			if string(raw) == n.members[i].name {
				return n.members[i].node
			}
		}
		return nil
	}
	// Decoding a copy keeps quoted, and with it the scanner, off the heap.
	name := exprDecodeString(bytes.Clone(quoted))
	for i := range n.members {
		if name == n.members[i].name {
			return n.members[i].node
		}
	}
	return nil
}

// element returns the child of n for array element i, or nil.
func (n *exprNode) element(i int) *exprNode {
	for k := range n.elements {
		if n.elements[k].index == i {
			return n.elements[k].node
		}
	}
	return nil
}

// exprNameLen returns the length of the leading run of s that may form a
// variable name: segment characters and dots.
func exprNameLen(s string) int {
	i := 0
	for i < len(s) && (exprSegmentChar(s[i]) || s[i] == '.') {
		i++
	}
	return i
}

// exprSegmentLen returns the length of the leading run of s that may form a
// dotted path segment.
func exprSegmentLen(s string) int {
	i := 0
	for i < len(s) && exprSegmentChar(s[i]) {
		i++
	}
	return i
}

func exprSegmentChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// String returns the expression as it was given to [ParseExpression].
func (e *Expression) String() string {
	return e.src
}

// Evaluate returns the route key for a text message body. ok is false when body is not valid JSON
// (the caller then uses $default). A JSON body that is not an object, or a path that is missing,
// evaluates that variable to "".
//
// Validity is judged on the whole body exactly as [json.Valid] judges it,
// including its limit of 10000 nested arrays and objects. When a member name
// appears more than once in an object, the last one wins, as with
// [json.Unmarshal].
//
// The value a variable finds is turned into text as follows:
//
//   - a string is its decoded text, with escapes resolved and invalid UTF-8
//     replaced by U+FFFD as [json.Unmarshal] does;
//   - a number is its JSON text exactly as written, so 1.0 stays "1.0" and
//     large integers keep every digit;
//   - true and false are "true" and "false";
//   - null, like a missing value, is "";
//   - an array is its elements, each turned into text by these rules, joined
//     by ", " and wrapped in brackets: ["a",1,null] gives "[a, 1, ]";
//   - an object is its members as name=value, values turned into text by these
//     rules, joined by ", " in document order and wrapped in braces:
//     {"a":1,"b":{"c":true}} gives "{a=1, b={c=true}}". A duplicated name
//     keeps the position of its first occurrence and the value of its last.
//
// Evaluate reads body in one pass and does not retain it. For an expression
// of at most eight distinct variables, none of which finds an array, an object
// or a string with escapes, the returned string is its only allocation.
func (e *Expression) Evaluate(body []byte) (key string, ok bool) {
	if e.root == nil {
		s := bodyScanner{data: body}
		if !s.document(nil) {
			return "", false
		}
		return e.fixed, true
	}
	var buf [8]exprSpan
	var spans []exprSpan
	if e.nvars <= len(buf) {
		spans = buf[:e.nvars]
	} else {
		spans = make([]exprSpan, e.nvars)
	}
	s := bodyScanner{data: body, spans: spans}
	if !s.document(e.root) {
		return "", false
	}
	if len(e.parts) == 1 {
		sp := spans[e.parts[0].v]
		if sp.end == 0 {
			return "", true
		}
		return exprStringify(body[sp.start:sp.end]), true
	}
	size := e.static
	for _, sp := range spans {
		size += sp.end - sp.start
	}
	var b strings.Builder
	b.Grow(size)
	for _, pt := range e.parts {
		if pt.v < 0 {
			b.WriteString(pt.text)
			continue
		}
		if sp := spans[pt.v]; sp.end != 0 {
			exprWriteValue(&b, body[sp.start:sp.end])
		}
	}
	return b.String(), true
}

// exprStringify returns the text of the JSON value raw, which must be valid.
func exprStringify(raw []byte) string {
	switch raw[0] {
	case '"':
		return exprDecodeString(raw)
	case 'n':
		return ""
	case 't':
		return "true"
	case 'f':
		return "false"
	case '[', '{':
		var b strings.Builder
		exprWriteValue(&b, raw)
		return b.String()
	default:
		return string(raw)
	}
}

// exprWriteValue writes the text of the JSON value raw, which must be valid,
// to b.
func exprWriteValue(b *strings.Builder, raw []byte) {
	switch raw[0] {
	case '[', '{':
		s := bodyScanner{data: raw}
		t := s.tree()
		t.write(b)
	default:
		exprWriteScalar(b, raw)
	}
}

func exprWriteScalar(b *strings.Builder, raw []byte) {
	switch raw[0] {
	case '"':
		inner := raw[1 : len(raw)-1]
		if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			b.Write(inner)
			return
		}
		b.WriteString(exprDecodeString(raw))
	case 'n':
	default:
		b.Write(raw)
	}
}

// exprDecodeString returns the text of the JSON string quoted, which must be
// valid.
func exprDecodeString(quoted []byte) string {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		// Unreachable for a string the scanner accepted.
		return string(inner)
	}
	return s
}

// exprTree is a JSON value held only as long as it takes to turn an array or
// object into text. Scalars keep their JSON text.
type exprTree struct {
	kind  byte // '[' for an array, '{' for an object, 0 for a scalar
	raw   []byte
	names []string // member names of an object, parallel to items
	items []exprTree
}

// tree reads the valid JSON value at s.pos into a exprTree, applying the
// rule that a duplicated member name keeps its first position and last value.
func (s *bodyScanner) tree() exprTree {
	start := s.pos
	switch s.data[s.pos] {
	case '[':
		t := exprTree{kind: '['}
		s.pos++
		s.skipSpace()
		for s.data[s.pos] != ']' {
			t.items = append(t.items, s.tree())
			s.skipSpace()
			if s.data[s.pos] == ',' {
				s.pos++
				s.skipSpace()
			}
		}
		s.pos++
		return t
	case '{':
		t := exprTree{kind: '{'}
		var index map[string]int
		s.pos++
		s.skipSpace()
		for s.data[s.pos] != '}' {
			keyStart := s.pos
			s.str()
			name := exprDecodeString(s.data[keyStart:s.pos])
			s.skipSpace()
			s.pos++ // ':'
			s.skipSpace()
			v := s.tree()
			if i, dup := t.lookup(index, name); dup {
				t.items[i] = v
			} else {
				t.names = append(t.names, name)
				t.items = append(t.items, v)
				if index != nil {
					index[name] = len(t.names) - 1
				} else if len(t.names) == 16 {
					index = make(map[string]int)
					for i, n := range t.names {
						index[n] = i
					}
				}
			}
			s.skipSpace()
			if s.data[s.pos] == ',' {
				s.pos++
				s.skipSpace()
			}
		}
		s.pos++
		return t
	default:
		s.parse(nil)
		return exprTree{raw: s.data[start:s.pos]}
	}
}

func (t *exprTree) lookup(index map[string]int, name string) (int, bool) {
	if index != nil {
		i, ok := index[name]
		return i, ok
	}
	for i, n := range t.names {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

func (t *exprTree) write(b *strings.Builder) {
	switch t.kind {
	case '[':
		b.WriteByte('[')
		for i := range t.items {
			if i > 0 {
				b.WriteString(", ")
			}
			t.items[i].write(b)
		}
		b.WriteByte(']')
	case '{':
		b.WriteByte('{')
		for i := range t.items {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(t.names[i])
			b.WriteByte('=')
			t.items[i].write(b)
		}
		b.WriteByte('}')
	default:
		exprWriteScalar(b, t.raw)
	}
}
