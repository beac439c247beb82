package auth

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/golang-jwt/jwt/v5"
)

// registeredClaims are the claims golang-jwt's validator reads.
var registeredClaims = []string{"exp", "nbf", "iat", "iss", "aud", "sub"}

// tokenClaims are the claims of one token, as golang-jwt's MapClaims with
// encoding/json's UseNumber would hold them, but only those the JWT
// authorizer reads: the registered claims the validator checks, the
// principal claim and the context claims. Every other member is skipped
// without being decoded.
//
// It exists for speed: decoding the whole payload into a map through
// reflection was the largest single cost of a JWT-authenticated connect
// (the decoder's deep reflective calls also grew the handshake goroutine's
// stack on every connection). The scanner is written here because no JSON
// library decodes a chosen few members of an object into the exact values
// encoding/json would give; every value it keeps that is not a plain
// string, number or literal goes through encoding/json itself.
type tokenClaims struct {
	jwt.MapClaims
	wanted map[string]struct{}
}

var _ jwt.Claims = (*tokenClaims)(nil)

var errClaimsSyntax = errors.New("claims are not a JSON object")

// UnmarshalJSON keeps the wanted members of the object b. golang-jwt's
// decoder hands it a value it has already checked to be valid JSON; other
// input is refused with an error and never read out of bounds. A null
// payload leaves the claims empty, as encoding/json leaves a map.
func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	s := claimScanner{b: b}
	s.space()
	if s.literal("null") {
		s.space()
		return s.end()
	}
	if !s.consume('{') {
		return errClaimsSyntax
	}
	s.space()
	if s.consume('}') {
		s.space()
		return s.end()
	}
	for {
		s.space()
		k0 := s.i
		if !s.skipString() {
			return errClaimsSyntax
		}
		rawKey := b[k0:s.i]
		s.space()
		if !s.consume(':') {
			return errClaimsSyntax
		}
		s.space()
		v0 := s.i
		if !s.skipValue() {
			return errClaimsSyntax
		}
		if name, err := jsonString(rawKey); err != nil {
			return err
		} else if _, ok := c.wanted[name]; ok {
			v, err := claimValue(b[v0:s.i])
			if err != nil {
				return err
			}
			c.MapClaims[name] = v
		}
		s.space()
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			s.space()
			return s.end()
		}
		return errClaimsSyntax
	}
}

// decodeClaims decodes payload into tc as golang-jwt's parser does with
// WithJSONNumber, without its json.Decoder: that reads the first JSON value
// of the payload, after leading white space, and ignores what follows it;
// so does this, and refuses the same payloads (an empty or invalid first
// value, or one that is not an object or null). Every refusal is an error
// for the caller to wrap; which error differs from the Decoder's.
func decodeClaims(payload []byte, tc *tokenClaims) error {
	s := claimScanner{b: payload}
	s.space()
	if s.literal("null") {
		// The Decoder ends a literal at the first byte that cannot
		// continue it: "null" and whatever follows is null.
		return nil
	}
	start := s.i
	if !s.skipValue() {
		return errClaimsSyntax
	}
	first := payload[start:s.i]
	if !json.Valid(first) {
		return errClaimsSyntax
	}
	return tc.UnmarshalJSON(first)
}

// jsonString returns the string of the quoted JSON string raw: the bytes
// between the quotes when they need no unescaping, else what encoding/json
// makes of it (escapes resolved, invalid UTF-8 replaced).
func jsonString(raw []byte) (string, error) {
	if len(raw) < 2 {
		return "", errClaimsSyntax
	}
	plain := true
	for _, c := range raw[1 : len(raw)-1] {
		if c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
			plain = false
			break
		}
	}
	if plain {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// claimValue decodes one member's value as encoding/json with UseNumber
// decodes it into an interface: strings, json.Number, bool, nil, and
// []any or map[string]any for arrays and objects.
func claimValue(raw []byte) (any, error) {
	switch raw[0] {
	case '"':
		return jsonString(raw)
	case 't':
		if string(raw) == "true" {
			return true, nil
		}
	case 'f':
		if string(raw) == "false" {
			return false, nil
		}
	case 'n':
		if string(raw) == "null" {
			return nil, nil
		}
	case '{', '[':
	default:
		if json.Valid(raw) {
			return json.Number(raw), nil
		}
		return nil, errClaimsSyntax
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// claimScanner walks a JSON text. Its skip methods report false on input
// that is not valid where they look, and never read past the end.
type claimScanner struct {
	b []byte
	i int
}

func (s *claimScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *claimScanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *claimScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

func (s *claimScanner) end() error {
	if s.i != len(s.b) {
		return errClaimsSyntax
	}
	return nil
}

// skipString moves past the string starting at s.i.
func (s *claimScanner) skipString() bool {
	if !s.consume('"') {
		return false
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			return true
		case '\\':
			s.i += 2
		default:
			s.i++
		}
	}
	return false
}

// skipValue moves past the value starting at s.i: a string, an object or
// array (brackets counted, strings skipped), or a number or literal (up to
// the next delimiter).
func (s *claimScanner) skipValue() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		return s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if !s.skipString() {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return s.i > start
		}
		s.i++
	}
	return s.i > start
}
