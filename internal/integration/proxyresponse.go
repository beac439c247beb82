package integration

import (
	"unicode/utf8"
)

// quickProxyResponse decodes the common shape of a proxy response without
// reflection: one JSON object whose members are among statusCode (a
// three-digit status from 100 to 599), body (a string), headers (an object
// of strings) and isBase64Encoded (true or false), each at most once. It
// reports ok only for such input, and then returns exactly what
// parseProxyResponse's general decoding returns; anything else (other
// members, null values, surrogate escapes, invalid UTF-8, multiValueHeaders)
// is left to that general path. trimmed has no leading or trailing space.
func quickProxyResponse(trimmed []byte) (*Response, bool) {
	p := proxyScanner{b: trimmed}
	if !p.byte('{') {
		return nil, false
	}
	out := &Response{}
	var seen uint8
	const (
		seenStatus = 1 << iota
		seenBody
		seenHeaders
		seenBase64
	)
	for more := true; more; {
		p.space()
		key, ok := p.rawKey()
		if !ok || !p.colon() {
			return nil, false
		}
		var bit uint8
		switch string(key) {
		case "statusCode":
			bit = seenStatus
			out.StatusCode, ok = p.status()
		case "body":
			bit = seenBody
			out.Body, ok = p.string()
		case "headers":
			bit = seenHeaders
			out.Headers, ok = p.stringMap()
		case "isBase64Encoded":
			bit = seenBase64
			out.IsBase64Encoded, ok = p.boolean()
		default:
			return nil, false
		}
		if !ok || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		if more, ok = p.next(); !ok {
			return nil, false
		}
	}
	if seen&seenStatus == 0 || p.i != len(p.b) {
		return nil, false
	}
	return out, true
}

// proxyScanner reads the JSON of a proxy response from b at i.
type proxyScanner struct {
	b []byte
	i int
}

func (p *proxyScanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c when it comes next.
func (p *proxyScanner) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// rawKey reads a member name that has no escapes.
func (p *proxyScanner) rawKey() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// status reads a status code from 100 to 599, written as three digits.
func (p *proxyScanner) status() (int, bool) {
	if p.i+3 > len(p.b) {
		return 0, false
	}
	d := p.b[p.i : p.i+3]
	if d[0] < '1' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9' {
		return 0, false
	}
	p.i += 3
	if p.i < len(p.b) {
		if c := p.b[p.i]; (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0'), true
}

func (p *proxyScanner) boolean() (bool, bool) {
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// string reads a JSON string of valid UTF-8. Escapes are decoded, except
// \u escapes of surrogates, which it refuses.
func (p *proxyScanner) string() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	// The common case: no escapes.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			if !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	buf := make([]byte, 0, len(p.b)-start)
	buf = append(buf, p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(buf) {
				return "", false
			}
			return string(buf), true
		case c < 0x20:
			return "", false
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return "", false
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(p.b[p.i:])
			if !ok || utf8.RuneLen(r) < 0 || (r >= 0xD800 && r <= 0xDFFF) {
				return "", false
			}
			p.i += 4
			buf = utf8.AppendRune(buf, r)
		default:
			return "", false
		}
	}
	return "", false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// stringMap reads an object whose values are strings; a repeated name
// keeps its last value, as encoding/json does.
func (p *proxyScanner) stringMap() (map[string]string, bool) {
	if !p.byte('{') {
		return nil, false
	}
	m := make(map[string]string)
	p.space()
	if p.byte('}') {
		return m, true
	}
	for more := true; more; {
		p.space()
		k, ok := p.string()
		if !ok || !p.colon() {
			return nil, false
		}
		v, ok := p.string()
		if !ok {
			return nil, false
		}
		m[k] = v
		if more, ok = p.next(); !ok {
			return nil, false
		}
	}
	return m, true
}

// colon reads the colon after a member name, with the space around it.
func (p *proxyScanner) colon() bool {
	p.space()
	if !p.byte(':') {
		return false
	}
	p.space()
	return true
}

// next reads what follows a member's value: a comma (more members follow)
// or the closing brace, after optional space. ok is false for anything
// else.
func (p *proxyScanner) next() (more, ok bool) {
	p.space()
	if p.byte('}') {
		return false, true
	}
	return true, p.byte(',')
}
