package auth

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/config"
)

// TestJWTJWKSOutageDenialNotCached: while no JWK Set could be fetched (or
// a new kid waits for the next refresh) the JWT authorizer cannot decide.
// The decision cache must not keep that refusal as a Deny: once the keys
// are there, the same token, looked up in the cache first as the gateway
// does, is accepted, not refused for the rest of the cache's TTL.
func TestJWTJWKSOutageDenialNotCached(t *testing.T) {
	jwtVerifyNoLeaks(t)
	k := jwtKeys()
	srv := newJWKSServer(t, jwksEntry{kid: "k1", key: &k.rsa.PublicKey})
	srv.setRaw(http.StatusServiceUnavailable, []byte("down"))
	j, err := NewJWT(t.Context(), config.JWTAuth{JWKSURL: srv.URL, JWKSRefresh: 20 * time.Millisecond, Algorithms: []string{"RS256"}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	cache := NewCache(time.Hour, 100)
	token := jwtSign(t, jwt.SigningMethodRS256, k.rsa, jwtClaims(nil), map[string]any{"kid": "k1"})
	req := &Request{Query: map[string][]string{"access_token": {token}}}
	src := Source{Kind: SourceQuery, Name: "access_token"}
	// authorize is the gateway's $connect sequence: identity sources, the
	// cache, then the authorizer, whose decision is put in the cache.
	authorize := func() error {
		values, err := ReadSources(req, []Source{src}, nil)
		if err != nil {
			return err
		}
		key, now := CacheKey(values), time.Now()
		if id, deny, ok := cache.Get(key, now); ok {
			if deny != nil {
				return deny
			}
			_ = id
			return nil
		}
		id, err := j.Authorize(t.Context(), req)
		if err != nil {
			cache.Put(key, nil, AsDenial(err), now)
			return err
		}
		cache.Put(key, id, nil, now)
		return nil
	}
	jwtWantDenied(t, authorize(), token, "no JWKS fetched yet")

	srv.set(t, jwksEntry{kid: "k1", key: &k.rsa.PublicKey})
	jwtEventually(t, func() bool {
		_, err := j.Authorize(t.Context(), &Request{Token: token})
		return err == nil
	}, "the keys after the endpoint recovered")
	if err := authorize(); err != nil {
		t.Fatalf("the token is valid now, but the cache still refuses it: %v", err)
	}
}
