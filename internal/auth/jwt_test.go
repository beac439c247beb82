package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/config"
)

// jwtSecret is long enough for HS512 (64 bytes).
const jwtSecret = "jwt-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcd"

// jwtTestKeys are generated once for all JWT tests.
type jwtTestKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	p256      *ecdsa.PrivateKey
	p384      *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

var jwtKeys = sync.OnceValue(func() jwtTestKeys {
	var k jwtTestKeys
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	return k
})

// jwtPublicPEM returns the PKIX PEM encoding of key's public half.
func jwtPublicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// jwtSign signs claims with method and key, setting the extra header
// fields.
func jwtSign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwtClaims returns sub and a future exp plus extra.
func jwtClaims(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// jwtReadFile serves files from a map.
func jwtReadFile(files map[string][]byte) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

func jwtGetenv(name string) string {
	if name == "JWT_SECRET" {
		return jwtSecret
	}
	return ""
}

// jwtLogs collects log output written from any goroutine.
type jwtLogs struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *jwtLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *jwtLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *jwtLogs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestJWT builds a JWT authorizer with the public key files
// /keys/rsa.pem, /keys/p256.pem, /keys/p384.pem, /keys/ed.pem and the
// secret in JWT_SECRET and /secret.
func newTestJWT(t testing.TB, cfg config.JWTAuth) *JWT {
	t.Helper()
	j, err := NewJWT(context.Background(), cfg, jwtGetenv, jwtReadFile(jwtFiles(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func jwtFiles(t testing.TB) map[string][]byte {
	k := jwtKeys()
	return map[string][]byte{
		"/keys/rsa.pem":  jwtPublicPEM(t, &k.rsa.PublicKey),
		"/keys/p256.pem": jwtPublicPEM(t, &k.p256.PublicKey),
		"/keys/p384.pem": jwtPublicPEM(t, &k.p384.PublicKey),
		"/keys/ed.pem":   jwtPublicPEM(t, k.ed.Public()),
		"/secret":        []byte(jwtSecret + "\n"),
	}
}

// jwtWantDenied checks that err is a 401 whose reason contains want and
// says nothing of the token or the secret.
func jwtWantDenied(t *testing.T, err error, token, want string) {
	t.Helper()
	var d *Denial
	if !errors.As(err, &d) {
		t.Fatalf("want a *Denial, got %v", err)
	}
	if d.Status != http.StatusUnauthorized || d.Message != "Unauthorized" {
		t.Errorf("want 401 Unauthorized, got %d %s", d.Status, d.Message)
	}
	if !strings.Contains(d.Reason, want) {
		t.Errorf("reason %q does not contain %q", d.Reason, want)
	}
	jwtNoLeak(t, d.Error(), token)
}

// jwtNoLeak fails if s contains the secret, the token or any of its
// segments longer than a few bytes.
func jwtNoLeak(t *testing.T, s, token string) {
	t.Helper()
	if strings.Contains(s, jwtSecret) || strings.Contains(s, jwtSecret[:16]) {
		t.Errorf("%q contains the secret", s)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) > 8 && strings.Contains(s, part) {
			t.Errorf("%q contains a token segment", s)
		}
	}
}

func TestJWTAlgorithms(t *testing.T) {
	k := jwtKeys()
	tests := []struct {
		alg    string
		method jwt.SigningMethod
		sign   any
		other  any // a key that must not verify
		cfg    config.JWTAuth
	}{
		{"HS256", jwt.SigningMethodHS256, []byte(jwtSecret), []byte("another-secret-another-secret-another-secret-another-secret-0123"), config.JWTAuth{SecretEnv: "JWT_SECRET"}},
		{"HS384", jwt.SigningMethodHS384, []byte(jwtSecret), []byte("x"), config.JWTAuth{SecretFile: "/secret"}},
		{"HS512", jwt.SigningMethodHS512, []byte(jwtSecret), []byte("y"), config.JWTAuth{SecretEnv: "JWT_SECRET"}},
		{"RS256", jwt.SigningMethodRS256, k.rsa, k.rsa2, config.JWTAuth{PublicKeyFile: "/keys/rsa.pem"}},
		{"RS512", jwt.SigningMethodRS512, k.rsa, k.rsa2, config.JWTAuth{PublicKeyFile: "/keys/rsa.pem"}},
		{"PS256", jwt.SigningMethodPS256, k.rsa, k.rsa2, config.JWTAuth{PublicKeyFile: "/keys/rsa.pem"}},
		{"ES256", jwt.SigningMethodES256, k.p256, mustECKey(t, elliptic.P256()), config.JWTAuth{PublicKeyFile: "/keys/p256.pem"}},
		{"ES384", jwt.SigningMethodES384, k.p384, mustECKey(t, elliptic.P384()), config.JWTAuth{PublicKeyFile: "/keys/p384.pem"}},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed, mustEdKey(t), config.JWTAuth{PublicKeyFile: "/keys/ed.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			tt.cfg.Algorithms = []string{tt.alg}
			j := newTestJWT(t, tt.cfg)
			exp := time.Now().Add(time.Hour).Truncate(time.Second)
			good := jwtSign(t, tt.method, tt.sign, jwtClaims(jwt.MapClaims{"exp": exp.Unix()}), nil)
			id, err := j.Authorize(t.Context(), &Request{Token: good})
			if err != nil {
				t.Fatalf("valid %s token refused: %v", tt.alg, err)
			}
			if id.PrincipalID != "user-1" || !id.ExpiresAt.Equal(exp) {
				t.Errorf("identity = %+v; want user-1 expiring %v", id, exp)
			}
			if _, err := j.Verify(t.Context(), good); err != nil {
				t.Errorf("Verify refused what Authorize accepted: %v", err)
			}

			forged := jwtSign(t, tt.method, tt.other, jwtClaims(nil), nil)
			_, err = j.Authorize(t.Context(), &Request{Token: forged})
			jwtWantDenied(t, err, forged, "bad signature")

			parts := strings.Split(good, ".")
			claims := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","exp":` + jsonInt(exp.Unix()) + `}`))
			tampered := parts[0] + "." + claims + "." + parts[2]
			_, err = j.Authorize(t.Context(), &Request{Token: tampered})
			jwtWantDenied(t, err, tampered, "bad signature")
		})
	}
}

func mustECKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEdKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestJWTIdentity(t *testing.T) {
	var logs jwtLogs
	j, err := NewJWT(t.Context(), config.JWTAuth{
		SecretEnv:      "JWT_SECRET",
		Algorithms:     []string{"HS256"},
		PrincipalClaim: "uid",
		ContextClaims:  []string{"name", "age", "big", "admin", "ratio", "roles", "profile", "nothing", "absent"},
	}, jwtGetenv, nil, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	exp := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	token := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwt.MapClaims{
		"sub":     "not-the-principal",
		"uid":     "u-42",
		"exp":     exp.Unix(),
		"name":    "Ada",
		"age":     36,
		"big":     json.Number("12345678901234567890"),
		"admin":   true,
		"ratio":   0.5,
		"roles":   []string{"secret-role-a"},
		"profile": map[string]any{"email": "secret-email@example.com"},
		"nothing": nil,
	}, nil)
	id, err := j.Authorize(t.Context(), &Request{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if id.PrincipalID != "u-42" {
		t.Errorf("PrincipalID = %q, want u-42 (principal_claim uid)", id.PrincipalID)
	}
	if !id.ExpiresAt.Equal(exp) {
		t.Errorf("ExpiresAt = %v, want %v", id.ExpiresAt, exp)
	}
	want := map[string]any{
		"name":  "Ada",
		"age":   json.Number("36"),
		"big":   json.Number("12345678901234567890"),
		"admin": true,
		"ratio": json.Number("0.5"),
	}
	if len(id.Context) != len(want) {
		t.Errorf("Context = %v, want %v", id.Context, want)
	}
	for k, v := range want {
		if id.Context[k] != v {
			t.Errorf("Context[%q] = %#v, want %#v", k, id.Context[k], v)
		}
	}
	out := logs.String()
	for _, name := range []string{"roles", "profile", "nothing"} {
		if !strings.Contains(out, "claim="+name) {
			t.Errorf("no debug log for skipped claim %s in:\n%s", name, out)
		}
	}
	if strings.Contains(out, "secret-role-a") || strings.Contains(out, "secret-email") {
		t.Errorf("skipped claim values were logged:\n%s", out)
	}
	if strings.Contains(out, "claim=absent") {
		t.Errorf("a missing claim was logged as skipped:\n%s", out)
	}
}

func TestJWTNoContextClaims(t *testing.T) {
	j := newTestJWT(t, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}})
	id, err := j.Authorize(t.Context(), &Request{Token: jwtSign(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwtClaims(jwt.MapClaims{"name": "Ada"}), nil)})
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Context) != 0 {
		t.Errorf("Context = %v, want empty without context_claims", id.Context)
	}
}

func TestJWTPrincipal(t *testing.T) {
	j := newTestJWT(t, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}})
	for name, sub := range map[string]any{
		"missing": nil,
		"empty":   "",
		"number":  42,
		"bool":    true,
		"array":   []string{"a"},
	} {
		t.Run(name, func(t *testing.T) {
			claims := jwtClaims(nil)
			if sub == nil {
				delete(claims, "sub")
			} else {
				claims["sub"] = sub
			}
			token := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtSecret), claims, nil)
			_, err := j.Authorize(t.Context(), &Request{Token: token})
			jwtWantDenied(t, err, token, `claim "sub"`)
		})
	}
}

// jwtNoneToken is an unsigned token: {"alg":"none"} and valid claims.
func jwtNoneToken(t *testing.T, sig string) string {
	t.Helper()
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	claims, err := json.Marshal(jwtClaims(nil))
	if err != nil {
		t.Fatal(err)
	}
	return header + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + sig
}

func TestJWTAttacks(t *testing.T) {
	k := jwtKeys()
	secret := []byte(jwtSecret)
	rsaPEM := jwtPublicPEM(t, &k.rsa.PublicKey)
	hs := config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}, Issuer: "https://issuer.example", Audience: config.OneOrMore{"wsgate", "chat"}}
	rs := config.JWTAuth{PublicKeyFile: "/keys/rsa.pem", Algorithms: []string{"RS256"}}
	valid := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "https://issuer.example", "aud": "wsgate"}
		for k, v := range extra {
			c[k] = v
		}
		return jwtClaims(c)
	}
	big := strings.Repeat("x", MaxTokenBytes)
	signed := jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), nil)
	withoutSignature := signed[:strings.LastIndex(signed, ".")]
	now := time.Now()
	tests := []struct {
		name  string
		cfg   config.JWTAuth
		token string
		want  string
	}{
		{"alg none without signature", hs, jwtNoneToken(t, ""), "alg none not allowed"},
		{"alg none with a signature", hs, jwtNoneToken(t, "c2lnbmF0dXJl"), "alg none not allowed"},
		{"alg none against a public key", rs, jwtNoneToken(t, ""), "alg none not allowed"},
		{"HS256 with the RSA public key as secret", rs, jwtSign(t, jwt.SigningMethodHS256, rsaPEM, jwtClaims(nil), nil), "alg HS256 not allowed"},
		{"HS256 with the RSA public key DER as secret", rs, jwtSign(t, jwt.SigningMethodHS256, x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey), jwtClaims(nil), nil), "alg HS256 not allowed"},
		{"allowed family, other alg", hs, jwtSign(t, jwt.SigningMethodHS512, secret, valid(nil), nil), "alg HS512 not allowed"},
		{"unknown alg", hs, jwtSignedHeader(t, `{"alg":"HS999"}`, valid(nil)), "alg missing or not supported"},
		{"no alg", hs, jwtSignedHeader(t, `{"typ":"JWT"}`, valid(nil)), "alg missing or not supported"},
		{"RS256 signed by another key", rs, jwtSign(t, jwt.SigningMethodRS256, k.rsa2, jwtClaims(nil), nil), "bad signature"},
		{"expired", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}), nil), "expired"},
		{"nbf in the future", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()}), nil), "not valid yet"},
		{"iat in the future", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"iat": now.Add(time.Minute).Unix()}), nil), "used before issued"},
		{"iat not a number", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"iat": "now"}), nil), "iat is invalid"},
		{"crit naming an unknown extension", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), map[string]any{"crit": []string{"http://example.com/ext"}, "http://example.com/ext": true}), `crit header names "http://example.com/ext", an extension wsgate does not support`},
		{"crit naming a registered header", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), map[string]any{"crit": []string{"alg"}}), `crit header names "alg", an extension wsgate does not support`},
		{"crit naming an absent header", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), map[string]any{"crit": []string{"ext"}}), `crit header names "ext", which the header lacks`},
		{"crit empty", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), map[string]any{"crit": []string{}}), "crit header is an empty list"},
		{"crit null", hs, jwtSignedHeader(t, `{"alg":"HS256","crit":null}`, valid(nil)), "crit header is not a list of header names"},
		{"crit a string", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), map[string]any{"crit": "ext", "ext": 1}), "crit header is not a list of header names"},
		{"crit holding a number", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), map[string]any{"crit": []any{"ext", 1}, "ext": 1}), "crit header is not a list of header names"},
		{"crit with a long name", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), map[string]any{"crit": []string{strings.Repeat("n", 200)}, strings.Repeat("n", 200): 1}), "an extension wsgate does not support"},
		{"b64 false with crit", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), map[string]any{"b64": false, "crit": []string{"b64"}}), "unencoded payload (b64) is not supported"},
		{"b64 false without crit", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), map[string]any{"b64": false}), "unencoded payload (b64) is not supported"},
		{"b64 not a boolean", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), map[string]any{"b64": "true", "crit": []string{"b64"}}), "unencoded payload (b64) is not supported"},
		{"crit on an RS256 token", rs, jwtSign(t, jwt.SigningMethodRS256, k.rsa, jwtClaims(nil), map[string]any{"crit": []string{"ext"}, "ext": 1}), "an extension wsgate does not support"},
		{"no exp", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"exp": nil}), nil), "exp claim is required"},
		{"exp not a number", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"exp": "tomorrow"}), nil), "exp is invalid"},
		{"wrong iss", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"iss": "https://evil.example"}), nil), "invalid issuer"},
		{"no iss", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"iss": nil}), nil), "iss claim is required"},
		{"wrong aud", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"aud": "other"}), nil), "invalid audience"},
		{"wrong aud list", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"aud": []string{"other", "more"}}), nil), "invalid audience"},
		{"no aud", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"aud": nil}), nil), "aud claim is required"},
		{"signature truncated", hs, trimEnd(jwtSign(t, jwt.SigningMethodHS256, secret, valid(nil), nil), 4), "bad signature"},
		{"signature missing", hs, withoutSignature + ".", "bad signature"},
		{"two segments", hs, withoutSignature, "malformed"},
		{"header only", hs, strings.Split(withoutSignature, ".")[0], "malformed"},
		{"garbage", hs, "not-a-jwt", "malformed"},
		{"bad base64", hs, "e30.!!!.e30", "malformed"},
		{"empty", hs, "", "no token"},
		{"oversized and validly signed", hs, jwtSign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"pad": big}), nil), "over the 8192-byte limit"},
		{"oversized garbage", hs, strings.Repeat("a", MaxTokenBytes+1), "over the 8192-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newTestJWT(t, tt.cfg)
			_, err := j.Authorize(t.Context(), &Request{Token: tt.token})
			jwtWantDenied(t, err, tt.token, tt.want)
			_, err = j.Verify(t.Context(), tt.token)
			jwtWantDenied(t, err, tt.token, tt.want)
		})
	}
}

// jwtSignedHeader builds a token with the raw header JSON, HMAC-SHA256
// signed with jwtSecret.
func jwtSignedHeader(t testing.TB, header string, claims jwt.MapClaims) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := jwt.SigningMethodHS256.Sign(signing, []byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func trimEnd(s string, n int) string { return s[:len(s)-n] }

// TestJWTB64True: b64 true asks for the base64url payload every JWT has,
// so it is accepted, listed in crit (RFC 7797 §6) or not.
func TestJWTB64True(t *testing.T) {
	j := newTestJWT(t, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}})
	for _, header := range []map[string]any{
		{"b64": true, "crit": []string{"b64"}},
		{"b64": true},
	} {
		token := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwtClaims(nil), header)
		if _, err := j.Authorize(t.Context(), &Request{Token: token}); err != nil {
			t.Errorf("header %v: %v", header, err)
		}
	}
}

func TestJWTIssuerAudienceAccepted(t *testing.T) {
	j := newTestJWT(t, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}, Issuer: "https://issuer.example", Audience: config.OneOrMore{"wsgate", "chat"}})
	for _, aud := range []any{"wsgate", "chat", []string{"other", "chat"}} {
		token := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwtClaims(jwt.MapClaims{"iss": "https://issuer.example", "aud": aud}), nil)
		if _, err := j.Authorize(t.Context(), &Request{Token: token}); err != nil {
			t.Errorf("aud %v: %v", aud, err)
		}
	}
}

func TestJWTLeeway(t *testing.T) {
	secret := []byte(jwtSecret)
	now := time.Now()
	late := jwtSign(t, jwt.SigningMethodHS256, secret, jwtClaims(jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()}), nil)
	early := jwtSign(t, jwt.SigningMethodHS256, secret, jwtClaims(jwt.MapClaims{"nbf": now.Add(10 * time.Second).Unix()}), nil)
	issuedLater := jwtSign(t, jwt.SigningMethodHS256, secret, jwtClaims(jwt.MapClaims{"iat": now.Add(10 * time.Second).Unix()}), nil)
	issuedMuchLater := jwtSign(t, jwt.SigningMethodHS256, secret, jwtClaims(jwt.MapClaims{"iat": now.Add(2 * time.Minute).Unix()}), nil)
	issued := jwtSign(t, jwt.SigningMethodHS256, secret, jwtClaims(jwt.MapClaims{"iat": now.Add(-time.Hour).Unix()}), nil)

	strict := newTestJWT(t, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}})
	_, err := strict.Authorize(t.Context(), &Request{Token: late})
	jwtWantDenied(t, err, late, "expired")
	_, err = strict.Authorize(t.Context(), &Request{Token: early})
	jwtWantDenied(t, err, early, "not valid yet")
	_, err = strict.Authorize(t.Context(), &Request{Token: issuedLater})
	jwtWantDenied(t, err, issuedLater, "used before issued")
	if _, err := strict.Authorize(t.Context(), &Request{Token: issued}); err != nil {
		t.Errorf("iat in the past: %v", err)
	}

	lenient := newTestJWT(t, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}, Leeway: time.Minute})
	for _, token := range []string{late, early, issuedLater, issued} {
		if _, err := lenient.Authorize(t.Context(), &Request{Token: token}); err != nil {
			t.Errorf("leeway 1m: %v", err)
		}
	}
	_, err = lenient.Authorize(t.Context(), &Request{Token: issuedMuchLater})
	jwtWantDenied(t, err, issuedMuchLater, "used before issued")
}

func TestJWTRequireExp(t *testing.T) {
	off := false
	j := newTestJWT(t, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}, RequireExp: &off})
	token := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwtClaims(jwt.MapClaims{"exp": nil}), nil)
	id, err := j.Authorize(t.Context(), &Request{Token: token})
	if err != nil {
		t.Fatalf("require_exp false: token without exp refused: %v", err)
	}
	if !id.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want zero without exp", id.ExpiresAt)
	}
	expired := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwtClaims(jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()}), nil)
	_, err = j.Authorize(t.Context(), &Request{Token: expired})
	jwtWantDenied(t, err, expired, "expired")

	on := true
	j = newTestJWT(t, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}, RequireExp: &on})
	_, err = j.Authorize(t.Context(), &Request{Token: token})
	jwtWantDenied(t, err, token, "exp claim is required")
}

func TestJWTPublicKeyFormats(t *testing.T) {
	k := jwtKeys()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.p256.PublicKey, k.p256)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"/pkcs1.pem": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}),
		"/cert.pem":  append([]byte("a comment before the block\n"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})...),
	}
	tests := []struct {
		file   string
		alg    string
		method jwt.SigningMethod
		key    any
	}{
		{"/pkcs1.pem", "RS256", jwt.SigningMethodRS256, k.rsa},
		{"/cert.pem", "ES256", jwt.SigningMethodES256, k.p256},
	}
	for _, tt := range tests {
		j, err := NewJWT(t.Context(), config.JWTAuth{PublicKeyFile: tt.file, Algorithms: []string{tt.alg}}, nil, jwtReadFile(files), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if _, err := j.Authorize(t.Context(), &Request{Token: jwtSign(t, tt.method, tt.key, jwtClaims(nil), nil)}); err != nil {
			t.Errorf("%s: %v", tt.file, err)
		}
		j.Close()
	}
}

func TestNewJWTErrors(t *testing.T) {
	k := jwtKeys()
	der, err := x509.MarshalPKCS8PrivateKey(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	privatePEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	files := jwtFiles(t)
	files["/private.pem"] = privatePEM
	files["/empty-secret"] = []byte("\r\n")
	files["/garbage.pem"] = []byte("this is not PEM " + jwtSecret)
	rs := []string{"RS256"}
	hs := []string{"HS256"}
	tests := []struct {
		name string
		cfg  config.JWTAuth
		want string
	}{
		{"no key source", config.JWTAuth{Algorithms: hs}, "authorizer.jwt: set exactly one of"},
		{"two key sources", config.JWTAuth{SecretEnv: "JWT_SECRET", PublicKeyFile: "/keys/rsa.pem", Algorithms: hs}, "authorizer.jwt: set exactly one of"},
		{"no algorithms", config.JWTAuth{SecretEnv: "JWT_SECRET"}, "authorizer.jwt.algorithms: required"},
		{"alg none", config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"none"}}, `authorizer.jwt.algorithms[0]: unknown algorithm "none"`},
		{"alg lower case", config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"hs256"}}, `authorizer.jwt.algorithms[0]: unknown algorithm "hs256"`},
		{"HS256 with a public key", config.JWTAuth{PublicKeyFile: "/keys/rsa.pem", Algorithms: hs}, "authorizer.jwt.algorithms[0]: HS256 needs a shared secret"},
		{"HS256 beside RS256 with a public key", config.JWTAuth{PublicKeyFile: "/keys/rsa.pem", Algorithms: []string{"RS256", "HS256"}}, "authorizer.jwt.algorithms[1]: HS256 needs a shared secret"},
		{"HS256 with a JWKS", config.JWTAuth{JWKSURL: "http://127.0.0.1:1/jwks", Algorithms: hs}, "authorizer.jwt.algorithms[0]: HS256 needs a shared secret"},
		{"RS256 with a secret", config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: rs}, "authorizer.jwt.algorithms[0]: RS256 needs a public key"},
		{"secret env unset", config.JWTAuth{SecretEnv: "UNSET", Algorithms: hs}, "authorizer.jwt.secret_env: environment variable UNSET is empty or not set"},
		{"secret file missing", config.JWTAuth{SecretFile: "/nope", Algorithms: hs}, "authorizer.jwt.secret_file: open /nope"},
		{"secret file empty", config.JWTAuth{SecretFile: "/empty-secret", Algorithms: hs}, "authorizer.jwt.secret_file: /empty-secret is empty"},
		{"public key file missing", config.JWTAuth{PublicKeyFile: "/nope", Algorithms: rs}, "authorizer.jwt.public_key_file: open /nope"},
		{"public key file not PEM", config.JWTAuth{PublicKeyFile: "/garbage.pem", Algorithms: rs}, "authorizer.jwt.public_key_file: /garbage.pem: no PEM public key"},
		{"public key file holds a private key", config.JWTAuth{PublicKeyFile: "/private.pem", Algorithms: rs}, "authorizer.jwt.public_key_file: /private.pem: holds a private key"},
		{"ES256 with an RSA key", config.JWTAuth{PublicKeyFile: "/keys/rsa.pem", Algorithms: []string{"RS256", "ES256"}}, "authorizer.jwt.algorithms[1]: ES256 cannot be verified with the RSA-2048 key"},
		{"ES384 with a P-256 key", config.JWTAuth{PublicKeyFile: "/keys/p256.pem", Algorithms: []string{"ES384"}}, "ES384 cannot be verified with the ECDSA P-256 key"},
		{"EdDSA with an EC key", config.JWTAuth{PublicKeyFile: "/keys/p256.pem", Algorithms: []string{"EdDSA"}}, "EdDSA cannot be verified"},
		{"RS256 with an Ed25519 key", config.JWTAuth{PublicKeyFile: "/keys/ed.pem", Algorithms: rs}, "RS256 cannot be verified with the Ed25519 key"},
		{"negative leeway", config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: hs, Leeway: -time.Second}, "authorizer.jwt.leeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := NewJWT(t.Context(), tt.cfg, jwtGetenv, jwtReadFile(files), nil)
			if err == nil {
				j.Close()
				t.Fatalf("want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			var ce *config.Error
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Path, "authorizer.jwt") {
				t.Errorf("error %#v is not a *config.Error naming an authorizer.jwt setting", err)
			}
			jwtNoLeak(t, err.Error(), "")
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(privatePEM[40:80])) {
				t.Errorf("error %q quotes the key file", err)
			}
		})
	}
}

func TestJWTShortSecretWarns(t *testing.T) {
	const short = "tiny-but-secret"
	var logs jwtLogs
	j, err := NewJWT(t.Context(), config.JWTAuth{SecretEnv: "SHORT", Algorithms: []string{"HS256"}}, func(string) string { return short }, nil, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	out := logs.String()
	if !strings.Contains(out, "shorter than RFC 7518") || !strings.Contains(out, "secret_bytes=15") {
		t.Errorf("want a warning about the short secret, got:\n%s", out)
	}
	if strings.Contains(out, short) {
		t.Errorf("the secret was logged:\n%s", out)
	}
}

// jwksEntry is one key a test JWKS server publishes.
type jwksEntry struct {
	kid string
	alg string
	use string
	key any // a public key
}

// jwksServer serves a JWK Set that the test can change, and counts
// requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int32

	mu     sync.Mutex
	body   []byte
	status int
}

func newJWKSServer(t *testing.T, keys ...jwksEntry) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(t *testing.T, keys ...jwksEntry) {
	t.Helper()
	var set jwkSetJSON
	for _, e := range keys {
		set.Keys = append(set.Keys, jwkJSON(t, e))
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.setRaw(http.StatusOK, body)
}

func (s *jwksServer) setRaw(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

type jwkSetJSON struct {
	Keys []map[string]any `json:"keys"`
}

// jwkJSON encodes e as a JWK by hand, independently of the code under test.
func jwkJSON(t *testing.T, e jwksEntry) map[string]any {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": e.kid}
	if e.alg != "" {
		m["alg"] = e.alg
	}
	if e.use != "" {
		m["use"] = e.use
	}
	switch k := e.key.(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(k.N.Bytes())
		m["e"] = b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		ecdh, err := k.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		raw := ecdh.Bytes() // 0x04 || X || Y
		size := (len(raw) - 1) / 2
		m["kty"] = "EC"
		m["crv"] = k.Curve.Params().Name
		m["x"] = b64(raw[1 : 1+size])
		m["y"] = b64(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64(k)
	case []byte:
		m["kty"] = "oct"
		m["k"] = b64(k)
	default:
		t.Fatalf("unsupported key %T", k)
	}
	return m
}

// jwksConfig is a jwks_url config for srv with a long refresh interval.
func jwksConfig(srv *jwksServer, every time.Duration) config.JWTAuth {
	return config.JWTAuth{JWKSURL: srv.URL + "/.well-known/jwks.json", JWKSRefresh: every, Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA"}}
}

func jwtEventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJWTJWKSRotation(t *testing.T) {
	jwtVerifyNoLeaks(t)
	k := jwtKeys()
	k1 := jwksEntry{kid: "k1", alg: "RS256", use: "sig", key: &k.rsa.PublicKey}
	k2 := jwksEntry{kid: "k2", key: &k.p256.PublicKey}
	k3 := jwksEntry{kid: "k3", key: k.ed.Public()}
	srv := newJWKSServer(t, k1)
	j, err := NewJWT(t.Context(), jwksConfig(srv, time.Hour), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", n)
	}
	authorize := func(method jwt.SigningMethod, key any, kid string) error {
		header := map[string]any{}
		if kid != "" {
			header["kid"] = kid
		}
		_, err := j.Authorize(t.Context(), &Request{Token: jwtSign(t, method, key, jwtClaims(nil), header)})
		return err
	}

	if err := authorize(jwt.SigningMethodRS256, k.rsa, "k1"); err != nil {
		t.Fatalf("k1: %v", err)
	}
	if err := authorize(jwt.SigningMethodRS256, k.rsa, ""); err != nil {
		t.Errorf("token without kid signed by a JWKS key: %v", err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("known kids caused fetches: %d, want 1", n)
	}

	// The issuer rotates in k2: its first token triggers one refresh.
	srv.set(t, k1, k2)
	if err := authorize(jwt.SigningMethodES256, k.p256, "k2"); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (one refresh for the unknown kid)", n)
	}
	if err := authorize(jwt.SigningMethodES256, k.p256, ""); err != nil {
		t.Errorf("ES256 token without kid: %v", err)
	}

	// A second unknown kid within the interval does not fetch again.
	srv.set(t, k1, k2, k3)
	for _, kid := range []string{"k3", "made-up"} {
		token := jwtSign(t, jwt.SigningMethodEdDSA, k.ed, jwtClaims(nil), map[string]any{"kid": kid})
		_, err := j.Authorize(t.Context(), &Request{Token: token})
		jwtWantDenied(t, err, token, `unknown kid "`+kid+`"; JWKS refresh not due yet`)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want still 2 within the refresh interval", n)
	}

	// The key must fit the token's alg.
	token := jwtSign(t, jwt.SigningMethodPS256, k.rsa, jwtClaims(nil), map[string]any{"kid": "k1"})
	_, err = j.Authorize(t.Context(), &Request{Token: token})
	jwtWantDenied(t, err, token, `the JWKS key for kid "k1" is for another alg than PS256`)
	token = jwtSign(t, jwt.SigningMethodRS256, k.rsa, jwtClaims(nil), map[string]any{"kid": "k2"})
	_, err = j.Authorize(t.Context(), &Request{Token: token})
	jwtWantDenied(t, err, token, `the JWKS key for kid "k2" does not fit alg RS256`)
	token = jwtSign(t, jwt.SigningMethodRS256, k.rsa2, jwtClaims(nil), nil)
	_, err = j.Authorize(t.Context(), &Request{Token: token})
	jwtWantDenied(t, err, token, "bad signature")
	token = jwtSign(t, jwt.SigningMethodRS256, k.rsa, jwtClaims(nil), map[string]any{"kid": 7})
	_, err = j.Authorize(t.Context(), &Request{Token: token})
	jwtWantDenied(t, err, token, "kid header is not a string")
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
}

func TestJWTJWKSUnknownKIDAfterRefresh(t *testing.T) {
	jwtVerifyNoLeaks(t)
	k := jwtKeys()
	srv := newJWKSServer(t, jwksEntry{kid: "k1", key: &k.rsa.PublicKey})
	j, err := NewJWT(t.Context(), jwksConfig(srv, time.Hour), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	token := jwtSign(t, jwt.SigningMethodRS256, k.rsa2, jwtClaims(nil), map[string]any{"kid": "k9"})
	_, err = j.Authorize(t.Context(), &Request{Token: token})
	jwtWantDenied(t, err, token, `unknown kid "k9" after JWKS refresh`)
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
}

func TestJWTJWKSConcurrentUnknownKIDShareOneFetch(t *testing.T) {
	jwtVerifyNoLeaks(t)
	k := jwtKeys()
	k1 := jwksEntry{kid: "k1", key: &k.rsa.PublicKey}
	srv := newJWKSServer(t, k1)
	j, err := NewJWT(t.Context(), jwksConfig(srv, time.Hour), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	srv.set(t, k1, jwksEntry{kid: "k2", key: &k.rsa2.PublicKey})
	token := jwtSign(t, jwt.SigningMethodRS256, k.rsa2, jwtClaims(nil), map[string]any{"kid": "k2"})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := j.Authorize(context.Background(), &Request{Token: token})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent connect with the new kid refused: %v", err)
		}
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2: concurrent lookups of one new kid share a fetch", n)
	}
}

func TestJWTJWKSSkipsUnusableKeys(t *testing.T) {
	jwtVerifyNoLeaks(t)
	k := jwtKeys()
	srv := newJWKSServer(t,
		jwksEntry{kid: "sym", key: []byte(jwtSecret)},
		jwksEntry{kid: "enc", use: "enc", key: &k.rsa2.PublicKey},
		jwksEntry{kid: "k1", use: "sig", key: &k.rsa.PublicKey},
	)
	j, err := NewJWT(t.Context(), jwksConfig(srv, time.Hour), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Authorize(t.Context(), &Request{Token: jwtSign(t, jwt.SigningMethodRS256, k.rsa, jwtClaims(nil), map[string]any{"kid": "k1"})}); err != nil {
		t.Fatalf("k1: %v", err)
	}
	token := jwtSign(t, jwt.SigningMethodRS256, k.rsa2, jwtClaims(nil), map[string]any{"kid": "enc"})
	_, err = j.Authorize(t.Context(), &Request{Token: token})
	jwtWantDenied(t, err, token, `unknown kid "enc"`)
}

func TestJWTJWKSBackgroundRefresh(t *testing.T) {
	jwtVerifyNoLeaks(t)
	k := jwtKeys()
	srv := newJWKSServer(t, jwksEntry{kid: "k1", key: &k.rsa.PublicKey})
	var logs jwtLogs
	j, err := NewJWT(t.Context(), jwksConfig(srv, 10*time.Millisecond), nil, nil, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	old := jwtSign(t, jwt.SigningMethodRS256, k.rsa, jwtClaims(nil), map[string]any{"kid": "k1"})
	if _, err := j.Authorize(t.Context(), &Request{Token: old}); err != nil {
		t.Fatal(err)
	}

	// A failing JWKS endpoint keeps the last good set.
	srv.setRaw(http.StatusInternalServerError, []byte("oops"))
	h := srv.hits.Load()
	jwtEventually(t, func() bool { return srv.hits.Load() >= h+2 }, "background refreshes")
	if _, err := j.Authorize(t.Context(), &Request{Token: old}); err != nil {
		t.Errorf("a failed refresh dropped the keys: %v", err)
	}
	jwtEventually(t, func() bool { return strings.Contains(logs.String(), "JWKS refresh failed") }, "the refresh failure in the log")

	// The issuer revokes k1 and publishes k2.
	srv.set(t, jwksEntry{kid: "k2", key: &k.rsa2.PublicKey})
	h = srv.hits.Load()
	jwtEventually(t, func() bool { return srv.hits.Load() >= h+2 }, "background refreshes")
	_, err = j.Authorize(t.Context(), &Request{Token: old})
	jwtWantDenied(t, err, old, `unknown kid "k1"`)
	if _, err := j.Authorize(t.Context(), &Request{Token: jwtSign(t, jwt.SigningMethodRS256, k.rsa2, jwtClaims(nil), map[string]any{"kid": "k2"})}); err != nil {
		t.Errorf("k2 after the background refresh: %v", err)
	}
}

// TestJWTJWKSRefreshStartsWithFirstUse checks that a JWT built and never
// used, as by wsgate validate, starts no goroutine, and that the first
// verification starts the refresh that Close stops.
func TestJWTJWKSRefreshStartsWithFirstUse(t *testing.T) {
	jwtVerifyNoLeaks(t)
	k := jwtKeys()
	srv := newJWKSServer(t, jwksEntry{kid: "k1", key: &k.rsa.PublicKey})
	ignore := goleak.IgnoreCurrent()
	j, err := NewJWT(t.Context(), jwksConfig(srv, time.Hour), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times by NewJWT, want 1", n)
	}
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("NewJWT left a goroutine running before any use: %v", err)
	}
	if _, err := j.Authorize(t.Context(), &Request{Token: jwtSign(t, jwt.SigningMethodRS256, k.rsa, jwtClaims(nil), map[string]any{"kid": "k1"})}); err != nil {
		t.Fatal(err)
	}
	jwtEventually(t, func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*jwksKeys).run")
	}, "the refresh goroutine after the first verification")
	j.Close()
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("Close left the refresh goroutine running: %v", err)
	}
}

func TestJWTJWKSContextEndsRefresh(t *testing.T) {
	jwtVerifyNoLeaks(t)
	k := jwtKeys()
	srv := newJWKSServer(t, jwksEntry{kid: "k1", key: &k.rsa.PublicKey})
	ctx, cancel := context.WithCancel(context.Background())
	j, err := NewJWT(ctx, jwksConfig(srv, 5*time.Millisecond), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Authorize(t.Context(), &Request{Token: jwtSign(t, jwt.SigningMethodRS256, k.rsa, jwtClaims(nil), map[string]any{"kid": "k1"})}); err != nil {
		t.Fatal(err)
	}
	jwtEventually(t, func() bool { return srv.hits.Load() >= 2 }, "a background refresh")
	cancel()
	// goleak checks that the refresh goroutine ends without Close; Close
	// after the context ended, and twice, is harmless.
	j.Close()
	j.Close()
}

// TestJWTJWKSFetchFailures starts with a JWKS endpoint that fails: the
// authorizer is built, refuses tokens with 401, logs why, and loads the keys
// once the endpoint recovers.
func TestJWTJWKSFetchFailures(t *testing.T) {
	jwtVerifyNoLeaks(t)
	k := jwtKeys()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name   string
		status int
		body   string
		url    string
		want   string
	}{
		{"404", http.StatusNotFound, "not here", "", "status 404"},
		{"not JSON", http.StatusOK, "<html>", "", "not a JWK Set"},
		{"no usable key", http.StatusOK, `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`, "", "no usable signature verification key"},
		{"too large", http.StatusOK, `{"keys":[` + strings.Repeat(" ", maxJWKSBytes) + `]}`, "", "larger than"},
		{"unreachable", 0, "", closed.URL + "/jwks", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			var srv *jwksServer
			if url == "" {
				srv = newJWKSServer(t, jwksEntry{kid: "k1", key: &k.rsa.PublicKey})
				srv.setRaw(tt.status, []byte(tt.body))
				url = srv.URL
			}
			var logs jwtLogs
			j, err := NewJWT(t.Context(), config.JWTAuth{JWKSURL: url, JWKSRefresh: 20 * time.Millisecond, Algorithms: []string{"RS256"}}, nil, nil, logs.logger())
			if err != nil {
				t.Fatalf("an unreachable JWKS must not stop the gateway from starting: %v", err)
			}
			defer j.Close()
			if out := logs.String(); !strings.Contains(out, "JWKS fetch failed") || !strings.Contains(out, tt.want) {
				t.Errorf("want the failure (%s) in the log, got:\n%s", tt.want, out)
			}
			token := jwtSign(t, jwt.SigningMethodRS256, k.rsa, jwtClaims(nil), map[string]any{"kid": "k1"})
			_, err = j.Authorize(t.Context(), &Request{Token: token})
			jwtWantDenied(t, err, token, "no JWKS fetched yet")
			if srv == nil {
				return
			}
			srv.set(t, jwksEntry{kid: "k1", key: &k.rsa.PublicKey})
			jwtEventually(t, func() bool {
				_, err := j.Authorize(t.Context(), &Request{Token: token})
				return err == nil
			}, "the keys after the endpoint recovered")
		})
	}
}

// TestJWTJKUAndX5UNeverFetched signs tokens whose jku, x5u and jwk headers
// point at an attacker's key, and checks that the key is never fetched or
// used, with a static key and with a JWKS.
func TestJWTJKUAndX5UNeverFetched(t *testing.T) {
	jwtVerifyNoLeaks(t)
	k := jwtKeys()
	evil := jwksEntry{kid: "evil", key: &k.rsa2.PublicKey}
	attacker := newJWKSServer(t, evil)
	header := map[string]any{
		"kid": "evil",
		"jku": attacker.URL + "/jwks.json",
		"x5u": attacker.URL + "/cert.pem",
		"jwk": jwkJSON(t, evil),
	}
	jwks := newJWKSServer(t, jwksEntry{kid: "k1", key: &k.rsa.PublicKey})
	configs := map[string]config.JWTAuth{
		"public key": {PublicKeyFile: "/keys/rsa.pem", Algorithms: []string{"RS256"}},
		"jwks":       jwksConfig(jwks, time.Hour),
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			j := newTestJWT(t, cfg)
			forged := jwtSign(t, jwt.SigningMethodRS256, k.rsa2, jwtClaims(nil), header)
			_, err := j.Authorize(t.Context(), &Request{Token: forged})
			if d := AsDenial(err); d.Status != http.StatusUnauthorized {
				t.Fatalf("token signed by the key behind jku: want 401, got %v", err)
			}
			jwtNoLeak(t, err.Error(), forged)

			// The headers are ignored, not fatal: a token signed by the
			// configured key verifies whatever jku says.
			genuine := map[string]any{"jku": header["jku"], "x5u": header["x5u"]}
			if name == "jwks" {
				genuine["kid"] = "k1"
			}
			if _, err := j.Authorize(t.Context(), &Request{Token: jwtSign(t, jwt.SigningMethodRS256, k.rsa, jwtClaims(nil), genuine)}); err != nil {
				t.Errorf("genuine token with jku/x5u headers: %v", err)
			}
		})
	}
	if n := attacker.hits.Load(); n != 0 {
		t.Fatalf("the server named in jku/x5u got %d requests, want 0", n)
	}
}

func BenchmarkJWTAuthorizeHS256(b *testing.B) {
	j := newTestJWT(b, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}, Issuer: "https://issuer.example", Audience: config.OneOrMore{"wsgate"}, ContextClaims: []string{"scope"}})
	req := &Request{Token: jwtSign(b, jwt.SigningMethodHS256, []byte(jwtSecret), jwtClaims(jwt.MapClaims{"iss": "https://issuer.example", "aud": "wsgate", "iat": time.Now().Unix(), "scope": "chat:write"}), nil)}
	benchmarkJWT(b, j, req)
}

func BenchmarkJWTAuthorizeRS256(b *testing.B) {
	k := jwtKeys()
	j := newTestJWT(b, config.JWTAuth{PublicKeyFile: "/keys/rsa.pem", Algorithms: []string{"RS256"}, Issuer: "https://issuer.example", Audience: config.OneOrMore{"wsgate"}, ContextClaims: []string{"scope"}})
	req := &Request{Token: jwtSign(b, jwt.SigningMethodRS256, k.rsa, jwtClaims(jwt.MapClaims{"iss": "https://issuer.example", "aud": "wsgate", "iat": time.Now().Unix(), "scope": "chat:write"}), nil)}
	benchmarkJWT(b, j, req)
}

func benchmarkJWT(b *testing.B, j *JWT, req *Request) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Authorize(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// jwtVerifyNoLeaks checks, after the test and all its cleanups, that no
// goroutine it started is left.
func jwtVerifyNoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// FuzzJWTHeader signs claims under arbitrary header JSON: Verify never
// panics, refuses with a 401 Denial, and accepts only a JSON object whose
// crit, if any, lists only b64 and whose b64, if any, is true.
func FuzzJWTHeader(f *testing.F) {
	for _, seed := range []string{
		`{"alg":"HS256"}`,
		`{"alg":"HS256","crit":["b64"],"b64":true}`,
		`{"alg":"HS256","crit":[]}`,
		`{"alg":"HS256","crit":["x"],"x":1}`,
		`{"alg":"HS256","crit":["x"]}`,
		`{"alg":"HS256","crit":"b64","b64":true}`,
		`{"alg":"HS256","crit":[1]}`,
		`{"alg":"HS256","b64":false}`,
		`{"alg":"HS256","crit":null}`,
		`[]`,
	} {
		f.Add(seed)
	}
	j := newTestJWT(f, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}})
	claims := jwtClaims(nil)
	f.Fuzz(func(t *testing.T, header string) {
		token := jwtSignedHeader(t, header, claims)
		_, err := j.Verify(context.Background(), token)
		if err != nil {
			var d *Denial
			if !errors.As(err, &d) || d.Status != http.StatusUnauthorized {
				t.Fatalf("Verify() = %v; want a 401 Denial", err)
			}
			return
		}
		var h map[string]any
		if err := json.Unmarshal([]byte(header), &h); err != nil {
			t.Fatalf("accepted a header that is not a JSON object: %q", header)
		}
		if b64, ok := h["b64"]; ok && b64 != true {
			t.Fatalf("accepted b64 %v", b64)
		}
		if crit, ok := h["crit"]; ok {
			list, _ := crit.([]any)
			if len(list) == 0 {
				t.Fatalf("accepted crit %v", crit)
			}
			for _, name := range list {
				if name != "b64" {
					t.Fatalf("accepted crit %v", crit)
				}
			}
		}
	})
}
