// Package redact removes credentials from message text before the gateway
// keeps a copy of it for an operator to read (the inspector's message
// tails).
//
// Message replaces, in any input:
//   - the value of every JSON object key whose lower-cased name contains
//     token, secret, password, passwd, authorization, cookie, apikey,
//     api_key, api-key, jwt, session or credential, whatever the value
//     (string, number, object, array), with the string "[redacted]";
//   - every JWT-shaped substring (three base64url segments separated by
//     dots, the first starting "eyJ") and every "Bearer <credential>", with
//     [redacted].
//
// The input need not be valid JSON: a quoted key followed by a colon is
// treated as a key wherever it appears, an unterminated value runs to the
// end of the input, and JSON string escapes are decoded before keys are
// compared and before strings are searched for JWTs, so that an escaped
// secret is found too; a string that holds JSON (a body encoded twice) is
// redacted as a message itself. The cost is at most the input's length
// times the depth of such nesting (each level at least doubles the
// escapes its quotes need, so the depth is below log2 of the length), and
// no input makes it panic.
//
// URL drops the user information of a URL a log line names.
package redact

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// Mark replaces every secret.
const Mark = "[redacted]"

// sensitive are the key name parts whose values are secrets.
var sensitive = []string{"token", "secret", "password", "passwd", "authorization", "cookie",
	"apikey", "api_key", "api-key", "jwt", "session", "credential"}

// SensitiveKey reports whether an object key's value is redacted.
func SensitiveKey(name string) bool {
	var buf [64]byte
	lower := buf[:0]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower = append(lower, c)
	}
	for _, s := range sensitive {
		if bytes.Contains(lower, []byte(s)) {
			return true
		}
	}
	return false
}

// Message returns data with its secrets replaced (see the package
// comment). data is not modified; when nothing is replaced the result may
// be data itself.
func Message(data []byte) []byte {
	return Text(keys(data))
}

// keys replaces the values of sensitive keys and the secrets inside
// escaped strings.
func keys(data []byte) []byte {
	if bytes.IndexByte(data, '"') < 0 {
		return data
	}
	out := make([]byte, 0, len(data))
	i := 0
	for i < len(data) {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			out = append(out, data[i:]...)
			break
		}
		out = append(out, data[i:i+q]...)
		start := i + q
		end, closed := stringEnd(data, start)
		lit := data[start:end]
		// A key is a closed string followed by a colon.
		j := end
		for closed && j < len(data) && isSpace(data[j]) {
			j++
		}
		if closed && j < len(data) && data[j] == ':' {
			if SensitiveKey(unquote(lit[1 : len(lit)-1])) {
				out = append(out, lit...)
				out = append(out, data[end:j+1]...)
				k := j + 1
				for k < len(data) && isSpace(data[k]) {
					out = append(out, data[k])
					k++
				}
				out = append(out, '"')
				out = append(out, Mark...)
				out = append(out, '"')
				i = valueEnd(data, k)
				continue
			}
		}
		out = appendString(out, lit, closed)
		i = end
	}
	return out
}

// appendString appends the string literal lit (quotes included, the
// closing one only when closed), redacted when it holds escapes whose
// decoding reveals a JWT, a bearer credential or, in JSON carried as a
// string (a "body" encoded twice), a sensitive key. Each level of such
// nesting at least doubles the backslashes its quotes need, so the
// recursion is shallow.
func appendString(out, lit []byte, closed bool) []byte {
	if bytes.IndexByte(lit, '\\') < 0 {
		return append(out, lit...)
	}
	body := lit[1:]
	if closed {
		body = body[:len(body)-1]
	}
	plain := unquote(body)
	red := Message([]byte(plain))
	if string(red) == plain {
		return append(out, lit...)
	}
	return appendQuoted(out, red)
}

// appendQuoted appends s as a JSON string literal; invalid UTF-8 becomes
// U+FFFD.
func appendQuoted(out, s []byte) []byte {
	out = append(out, '"')
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		s = s[n:]
		switch {
		case r == '"' || r == '\\':
			out = append(out, '\\', byte(r))
		case r < 0x20:
			out = append(out, `\u00`...)
			out = append(out, "0123456789abcdef"[r>>4], "0123456789abcdef"[r&0xf])
		default:
			out = utf8.AppendRune(out, r)
		}
	}
	return append(out, '"')
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// stringEnd returns the index just past the string literal that starts
// with the quote at data[start], and whether it is closed; an unclosed one
// runs to the end of data.
func stringEnd(data []byte, start int) (int, bool) {
	for i := start + 1; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return len(data), false
}

// valueEnd returns the index just past the JSON value that starts at
// data[k] (or at the first non-space after it): a string, an object or
// array up to its matching bracket, or a scalar up to the next delimiter.
// Whatever is unterminated runs to the end of data.
func valueEnd(data []byte, k int) int {
	if k >= len(data) {
		return k
	}
	switch data[k] {
	case '"':
		end, _ := stringEnd(data, k)
		return end
	case '{', '[':
		depth := 0
		for i := k; i < len(data); i++ {
			switch data[i] {
			case '"':
				end, _ := stringEnd(data, i)
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(data)
	}
	for i := k; i < len(data); i++ {
		switch data[i] {
		case ',', '}', ']', '\n', '\r':
			return i
		}
	}
	return len(data)
}

// unquote decodes the body of a JSON string literal (without its
// quotes). Invalid escapes are kept as they are.
func unquote(s []byte) string {
	if bytes.IndexByte(s, '\\') < 0 {
		return string(s)
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			out = append(out, c)
			continue
		}
		i++
		switch s[i] {
		case '"', '\\', '/':
			out = append(out, s[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := hex4(s[i+1:])
			if n == 0 {
				out = append(out, '\\', 'u')
				continue
			}
			i += n
			if utf16.IsSurrogate(r) {
				if len(s) > i+2 && s[i+1] == '\\' && s[i+2] == 'u' {
					if r2, n2 := hex4(s[i+3:]); n2 > 0 {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							out = utf8.AppendRune(out, d)
							i += 2 + n2
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, '\\', s[i])
		}
	}
	return string(out)
}

// hex4 decodes four hex digits at the start of b; n is 0 when there are
// not four.
func hex4(b []byte) (r rune, n int) {
	if len(b) < 4 {
		return 0, 0
	}
	for _, c := range b[:4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, 0
		}
		r = r<<4 | rune(d)
	}
	return r, 4
}

// Text returns data with JWT-shaped substrings and "Bearer <credential>"
// replaced by [redacted]. data is not modified; when nothing is replaced
// the result is data itself.
func Text(data []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(data); {
		if end := secretAt(data, i); end > i {
			if out == nil {
				out = make([]byte, 0, len(data))
			}
			out = append(out, data[last:i]...)
			out = append(out, Mark...)
			i, last = end, end
			continue
		}
		i++
	}
	if out == nil {
		return data
	}
	return append(out, data[last:]...)
}

// secretAt returns the end of the JWT or bearer credential that starts at
// data[i], or i when none does.
func secretAt(data []byte, i int) int {
	switch data[i] {
	case 'e':
		return jwtAt(data, i)
	case 'b', 'B':
		return bearerAt(data, i)
	}
	return i
}

func isB64URL(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// jwtAt matches eyJ<segment>.<segment>.<segment?> at data[i]: the
// signature may be empty, as in an unsigned token.
func jwtAt(data []byte, i int) int {
	if !bytes.HasPrefix(data[i:], []byte("eyJ")) {
		return i
	}
	j := i + 3
	for j < len(data) && isB64URL(data[j]) {
		j++
	}
	for seg := 0; seg < 2; seg++ {
		if j >= len(data) || data[j] != '.' {
			return i
		}
		j++
		start := j
		for j < len(data) && isB64URL(data[j]) {
			j++
		}
		if seg == 0 && j == start {
			return i
		}
	}
	return j
}

// isCredential reports whether c may be part of a bearer credential
// (RFC 6750's b64token).
func isCredential(c byte) bool {
	return isB64URL(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}

// bearerAt matches "Bearer", any case, then spaces, then a credential at
// data[i].
func bearerAt(data []byte, i int) int {
	const word = "bearer"
	if len(data)-i < len(word)+2 {
		return i
	}
	for k := 0; k < len(word); k++ {
		c := data[i+k]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[k] {
			return i
		}
	}
	j := i + len(word)
	if data[j] != ' ' && data[j] != '\t' {
		return i
	}
	for j < len(data) && (data[j] == ' ' || data[j] == '\t') {
		j++
	}
	start := j
	for j < len(data) && isCredential(data[j]) {
		j++
	}
	if j == start {
		return i
	}
	return j
}
