package route

// exprSpan is where a variable's value lies in the body. The zero value means
// the value was not found: no value can end at offset 0.
type exprSpan struct {
	start, end int
}

// exprMaxDepth is the number of nested arrays and objects beyond which
// encoding/json rejects a document.
const exprMaxDepth = 10000

// Flags reported by bodyScanner.str.
const (
	scanEscaped  = 1 << iota // the string contains a backslash escape
	scanNonASCII             // the string contains bytes >= 0x80
)

// bodyScanner validates a JSON document in one pass and records where the
// values of an expression's variables lie.
type bodyScanner struct {
	data  []byte
	pos   int
	depth int
	// spans holds one entry per variable of the expression being evaluated.
	spans []exprSpan
}

// document reports whether s.data is exactly one valid JSON value, surrounded
// by optional whitespace, and records the values below root.
func (s *bodyScanner) document(root *exprNode) bool {
	s.skipSpace()
	if !s.value(root) {
		return false
	}
	s.skipSpace()
	return s.pos == len(s.data)
}

// value reads the value at s.pos. n is the expression node the value stands
// for, or nil when no variable is at or below it.
func (s *bodyScanner) value(n *exprNode) bool {
	if n == nil {
		return s.parse(nil)
	}
	for _, v := range n.vars {
		s.spans[v] = exprSpan{}
	}
	start := s.pos
	if !s.parse(n) {
		return false
	}
	if n.v >= 0 {
		s.spans[n.v] = exprSpan{start, s.pos}
	}
	return true
}

func (s *bodyScanner) parse(n *exprNode) bool {
	if s.pos >= len(s.data) {
		return false
	}
	switch s.data[s.pos] {
	case '{':
		return s.object(n)
	case '[':
		return s.array(n)
	case '"':
		_, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

func (s *bodyScanner) object(n *exprNode) bool {
	if s.depth++; s.depth > exprMaxDepth {
		return false
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return true
	}
	for {
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return false
		}
		keyStart := s.pos
		flags, ok := s.str()
		if !ok {
			return false
		}
		var child *exprNode
		if n != nil && len(n.members) > 0 {
			child = n.member(s.data[keyStart:s.pos], flags)
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		s.skipSpace()
		if !s.value(child) {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case '}':
			s.pos++
			s.depth--
			return true
		default:
			return false
		}
	}
}

func (s *bodyScanner) array(n *exprNode) bool {
	if s.depth++; s.depth > exprMaxDepth {
		return false
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return true
	}
	for i := 0; ; i++ {
		var child *exprNode
		if n != nil && len(n.elements) > 0 {
			child = n.element(i)
		}
		if !s.value(child) {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case ']':
			s.pos++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// str reads the string at s.pos, which starts with a quote.
func (s *bodyScanner) str() (flags int, ok bool) {
	data := s.data
	i := s.pos + 1
	for i < len(data) {
		c := data[i]
		if scanPlain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			s.pos = i + 1
			return flags, true
		case c == '\\':
			flags |= scanEscaped
			if i+1 >= len(data) {
				return 0, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || !scanIsHex(data[i+2]) || !scanIsHex(data[i+3]) || !scanIsHex(data[i+4]) || !scanIsHex(data[i+5]) {
					return 0, false
				}
				i += 6
			default:
				return 0, false
			}
		case c < 0x20:
			return 0, false
		default:
			flags |= scanNonASCII
			i++
		}
	}
	return 0, false
}

// scanPlain marks the bytes a string may contain that need no further look:
// printable ASCII other than the quote and the backslash.
var scanPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func scanIsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func scanIsDigit(c byte) bool {
	return '0' <= c && c <= '9'
}

func (s *bodyScanner) literal(lit string) bool {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

// number reads a number with the JSON grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *bodyScanner) number() bool {
	data := s.data
	i := s.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	if i >= len(data) {
		return false
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i++
		for i < len(data) && scanIsDigit(data[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !scanIsDigit(data[i]) {
			return false
		}
		for i < len(data) && scanIsDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !scanIsDigit(data[i]) {
			return false
		}
		for i < len(data) && scanIsDigit(data[i]) {
			i++
		}
	}
	s.pos = i
	return true
}

func (s *bodyScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}
