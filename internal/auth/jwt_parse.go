package auth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// parse verifies token and decodes its claims into tc. It does what
// golang-jwt's Parser.ParseWithClaims does with the JWT's options and
// verificationKey as keyfunc, step by step and with errors that match the
// same sentinels (ErrTokenMalformed, ErrTokenUnverifiable,
// ErrTokenSignatureInvalid, ErrTokenInvalidClaims), using golang-jwt's
// signing methods and claims validator, with one difference: the decoded
// header of a token that verified is kept (headerCache), so the next token
// with the same header segment skips decoding it. A connection's token is
// verified on every handshake, the header segment of one issuer's tokens
// is nearly always the same, and decoding it into a map was a fifth of a
// JWT-authenticated connect's CPU.
func (j *JWT) parse(token string, tc *tokenClaims) (*jwt.Token, error) {
	head, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, fmt.Errorf("%w: token contains an invalid number of segments", jwt.ErrTokenMalformed)
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return nil, fmt.Errorf("%w: token contains an invalid number of segments", jwt.ErrTokenMalformed)
	}
	tok := &jwt.Token{Raw: token, Claims: tc}
	header, cached := j.headers.get(head)
	if !cached {
		b, err := base64.RawURLEncoding.DecodeString(head)
		if err != nil {
			return tok, fmt.Errorf("%w: could not base64 decode header: %w", jwt.ErrTokenMalformed, err)
		}
		if err := json.Unmarshal(b, &header); err != nil {
			return tok, fmt.Errorf("%w: could not JSON decode header: %w", jwt.ErrTokenMalformed, err)
		}
	}
	tok.Header = header
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return tok, fmt.Errorf("%w: could not base64 decode claim: %w", jwt.ErrTokenMalformed, err)
	}
	if err := decodeClaims(b, tc); err != nil {
		return tok, fmt.Errorf("%w: could not JSON decode claim: %w", jwt.ErrTokenMalformed, err)
	}
	alg, ok := header["alg"].(string)
	if !ok {
		return tok, fmt.Errorf("%w: signing method (alg) is unspecified", jwt.ErrTokenUnverifiable)
	}
	if tok.Method = jwt.GetSigningMethod(alg); tok.Method == nil {
		return tok, fmt.Errorf("%w: signing method (alg) is unavailable", jwt.ErrTokenUnverifiable)
	}
	if tok.Signature, err = base64.RawURLEncoding.DecodeString(sig); err != nil {
		return tok, fmt.Errorf("%w: could not base64 decode signature: %w", jwt.ErrTokenMalformed, err)
	}
	if !slices.Contains(j.algorithms, tok.Method.Alg()) {
		return tok, fmt.Errorf("%w: signing method %v is invalid", jwt.ErrTokenSignatureInvalid, tok.Method.Alg())
	}
	key, err := j.verificationKey(tok)
	if err != nil {
		return tok, fmt.Errorf("%w: error while executing keyfunc: %w", jwt.ErrTokenUnverifiable, err)
	}
	signed := token[:len(head)+1+len(payload)]
	switch k := key.(type) {
	case jwt.VerificationKeySet:
		if len(k.Keys) == 0 {
			return tok, fmt.Errorf("%w: keyfunc returned empty verification key set", jwt.ErrTokenUnverifiable)
		}
		for _, one := range k.Keys {
			if err = tok.Method.Verify(signed, tok.Signature, one); err == nil {
				break
			}
		}
	default:
		err = tok.Method.Verify(signed, tok.Signature, key)
	}
	if err != nil {
		return tok, fmt.Errorf("%w: %w", jwt.ErrTokenSignatureInvalid, err)
	}
	if !cached {
		// Only a header that came with a valid signature is kept, so
		// what fills the cache is the issuer's, not a client's choice.
		j.headers.put(head, header)
	}
	if err := j.validator.Validate(tc); err != nil {
		return tok, fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, err)
	}
	tok.Valid = true
	return tok, nil
}

// maxCachedHeaders bounds headerCache: an issuer signs with a handful of
// keys, each giving one header segment.
const maxCachedHeaders = 32

// headerCache maps a token's header segment to its decoded header. The
// maps it holds are shared and never written after they are put.
type headerCache struct {
	mu sync.RWMutex // guards m
	m  map[string]map[string]any
}

func (c *headerCache) get(segment string) (map[string]any, bool) {
	c.mu.RLock()
	h, ok := c.m[segment]
	c.mu.RUnlock()
	return h, ok
}

// put keeps header for segment while the cache has room; once full it
// keeps what it has (the keys of a rotation stay few).
func (c *headerCache) put(segment string, header map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]map[string]any)
	}
	if len(c.m) < maxCachedHeaders {
		c.m[segment] = header
	}
}
