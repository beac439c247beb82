package cli_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/config"
)

const tokenSecret = "token-test-secret-0123456789abcdef-0123456789abcdef-0123456789ab"

// tokenKeyPEMs returns, by file name, the private key PEM files in the
// encodings wsgate token reads and the public key PEM files the gateway
// reads, generated once.
var tokenKeyPEMs = sync.OnceValues(func() (map[string][]byte, error) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var firstErr error
	der := func(b []byte, err error) []byte {
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return b
	}
	block := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}
	out := map[string][]byte{
		"rsa-pkcs8.pem":   block("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(rsaKey))),
		"rsa-pkcs1.pem":   block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)),
		"rsa-public.pem":  block("PUBLIC KEY", der(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))),
		"p256-sec1.pem":   block("EC PRIVATE KEY", der(x509.MarshalECPrivateKey(p256))),
		"p256-public.pem": block("PUBLIC KEY", der(x509.MarshalPKIXPublicKey(&p256.PublicKey))),
		"p384-pkcs8.pem":  block("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(p384))),
		"p384-public.pem": block("PUBLIC KEY", der(x509.MarshalPKIXPublicKey(&p384.PublicKey))),
		"ed-pkcs8.pem":    block("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(edKey))),
		"ed-public.pem":   block("PUBLIC KEY", der(x509.MarshalPKIXPublicKey(edPub))),
	}
	if firstErr != nil {
		return nil, firstErr
	}
	// openssl ecparam -genkey writes an EC PARAMETERS block first.
	out["p256-sec1.pem"] = append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"), out["p256-sec1.pem"]...)
	out["encrypted.pem"] = []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBAA==\n-----END ENCRYPTED PRIVATE KEY-----\n")
	return out, nil
})

// tokenKeyFiles writes the key PEMs into a temporary directory and returns
// their paths by name.
func tokenKeyFiles(t *testing.T) map[string]string {
	t.Helper()
	pems, err := tokenKeyPEMs()
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for name, data := range pems {
		paths[name] = writeFile(t, name, string(data))
	}
	paths["secret"] = writeFile(t, "secret", tokenSecret+"\n")
	return paths
}

// mint runs wsgate token with args and returns the token.
func mint(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, nil, append([]string{"token"}, args...)...)
	if r.code != 0 || r.stderr != "" || !strings.HasSuffix(r.stdout, "\n") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("token %q: want one line on stdout and exit 0, got %v", args, r)
	}
	return strings.TrimSuffix(r.stdout, "\n")
}

// verify checks tok with the gateway's jwt authorizer.
func verify(t *testing.T, cfg config.JWTAuth, tok string) (*auth.Identity, error) {
	t.Helper()
	getenv := func(name string) string {
		if name == "WSGATE_TEST_JWT_SECRET" {
			return tokenSecret
		}
		return ""
	}
	j, err := auth.NewJWT(t.Context(), cfg, getenv, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	return j.Authorize(t.Context(), &auth.Request{Token: tok})
}

// unverified returns tok's header and claims without checking it.
func unverified(t *testing.T, tok string) (map[string]any, jwt.MapClaims) {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, _, err := jwt.NewParser(jwt.WithJSONNumber()).ParseUnverified(tok, claims)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Header, claims
}

func TestTokenRoundTrip(t *testing.T) {
	t.Setenv("WSGATE_TEST_JWT_SECRET", tokenSecret)
	files := tokenKeyFiles(t)
	tests := []struct {
		alg  string
		args []string
		cfg  config.JWTAuth
	}{
		{"HS256", []string{"-secret-env", "WSGATE_TEST_JWT_SECRET"}, config.JWTAuth{SecretEnv: "WSGATE_TEST_JWT_SECRET"}},
		{"HS384", []string{"-secret-file", files["secret"]}, config.JWTAuth{SecretFile: files["secret"]}},
		{"HS512", []string{"-secret-file", files["secret"]}, config.JWTAuth{SecretEnv: "WSGATE_TEST_JWT_SECRET"}},
		{"RS256", []string{"-key-file", files["rsa-pkcs8.pem"]}, config.JWTAuth{PublicKeyFile: files["rsa-public.pem"]}},
		{"RS512", []string{"-key-file", files["rsa-pkcs1.pem"]}, config.JWTAuth{PublicKeyFile: files["rsa-public.pem"]}},
		{"PS256", []string{"-key-file", files["rsa-pkcs1.pem"]}, config.JWTAuth{PublicKeyFile: files["rsa-public.pem"]}},
		{"ES256", []string{"-key-file", files["p256-sec1.pem"]}, config.JWTAuth{PublicKeyFile: files["p256-public.pem"]}},
		{"ES384", []string{"-key-file", files["p384-pkcs8.pem"]}, config.JWTAuth{PublicKeyFile: files["p384-public.pem"]}},
		{"EdDSA", []string{"-key-file", files["ed-pkcs8.pem"]}, config.JWTAuth{PublicKeyFile: files["ed-public.pem"]}},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			tok := mint(t, append([]string{"-sub", "user-7", "-alg", tt.alg}, tt.args...)...)
			tt.cfg.Algorithms = []string{tt.alg}
			id, err := verify(t, tt.cfg, tok)
			if err != nil {
				t.Fatalf("the jwt authorizer refused a minted %s token: %v", tt.alg, err)
			}
			if id.PrincipalID != "user-7" {
				t.Errorf("PrincipalID = %q, want user-7", id.PrincipalID)
			}
			if d := time.Until(id.ExpiresAt); d < 59*time.Minute || d > time.Hour+time.Second {
				t.Errorf("ExpiresAt in %v, want the default ttl of 1h", d)
			}
			header, _ := unverified(t, tok)
			if header["alg"] != tt.alg {
				t.Errorf("header alg = %v, want %s", header["alg"], tt.alg)
			}
		})
	}
}

func TestTokenDefaultAlgIsHS256(t *testing.T) {
	t.Setenv("WSGATE_TEST_JWT_SECRET", tokenSecret)
	tok := mint(t, "-sub", "u", "-secret-env", "WSGATE_TEST_JWT_SECRET")
	if header, _ := unverified(t, tok); header["alg"] != "HS256" {
		t.Errorf("alg = %v, want HS256", header["alg"])
	}
	if _, err := verify(t, config.JWTAuth{SecretEnv: "WSGATE_TEST_JWT_SECRET", Algorithms: []string{"HS256"}}, tok); err != nil {
		t.Error(err)
	}
}

func TestTokenClaims(t *testing.T) {
	t.Setenv("WSGATE_TEST_JWT_SECRET", tokenSecret)
	tok := mint(t, "-sub", "user-1", "-secret-env", "WSGATE_TEST_JWT_SECRET",
		"-claim", "role=admin",
		"-claim", "level=3",
		"-claim", "ratio=-0.25",
		"-claim", "big=12345678901234567890",
		"-claim", "verified=true",
		"-claim", "banned=false",
		"-claim", "zip=01234",
		"-claim", "quoted=\"3\"",
		"-claim", "expr=a=b",
		"-claim", "empty=",
		"-claim", "True=True",
	)
	id, err := verify(t, config.JWTAuth{
		SecretEnv:     "WSGATE_TEST_JWT_SECRET",
		Algorithms:    []string{"HS256"},
		ContextClaims: []string{"role", "level", "ratio", "big", "verified", "banned", "zip", "quoted", "expr", "empty", "True"},
	}, tok)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"role":     "admin",
		"level":    json.Number("3"),
		"ratio":    json.Number("-0.25"),
		"big":      json.Number("12345678901234567890"),
		"verified": true,
		"banned":   false,
		"zip":      "01234",
		"quoted":   `"3"`,
		"expr":     "a=b",
		"empty":    "",
		"True":     "True",
	}
	for k, v := range want {
		if got, ok := id.Context[k]; !ok || got != v {
			t.Errorf("claim %s = %#v, want %#v", k, got, v)
		}
	}
}

func TestTokenClaimOverridesFlags(t *testing.T) {
	t.Setenv("WSGATE_TEST_JWT_SECRET", tokenSecret)
	tok := mint(t, "-sub", "user-1", "-secret-env", "WSGATE_TEST_JWT_SECRET", "-claim", "sub=42")
	_, claims := unverified(t, tok)
	if claims["sub"] != json.Number("42") {
		t.Errorf("sub = %#v, want the number 42 from -claim", claims["sub"])
	}
	_, err := verify(t, config.JWTAuth{SecretEnv: "WSGATE_TEST_JWT_SECRET", Algorithms: []string{"HS256"}}, tok)
	if d := auth.AsDenial(err); err == nil || d.Status != 401 {
		t.Errorf("a numeric sub must be refused with 401, got %v", err)
	}
}

func TestTokenIssuerAudienceKID(t *testing.T) {
	t.Setenv("WSGATE_TEST_JWT_SECRET", tokenSecret)
	base := []string{"-sub", "u", "-secret-env", "WSGATE_TEST_JWT_SECRET", "-iss", "https://issuer.example", "-kid", "key-2026"}
	cfg := config.JWTAuth{SecretEnv: "WSGATE_TEST_JWT_SECRET", Algorithms: []string{"HS256"}, Issuer: "https://issuer.example", Audience: config.OneOrMore{"chat"}}

	one := mint(t, append(base, "-aud", "chat")...)
	header, claims := unverified(t, one)
	if header["kid"] != "key-2026" || claims["iss"] != "https://issuer.example" || claims["aud"] != "chat" {
		t.Errorf("header %v, claims %v: want kid key-2026, iss and aud chat", header, claims)
	}
	if _, err := verify(t, cfg, one); err != nil {
		t.Errorf("single aud: %v", err)
	}

	two := mint(t, append(base, "-aud", "web", "-aud", "chat")...)
	if _, claims := unverified(t, two); len(claims["aud"].([]any)) != 2 {
		t.Errorf("aud = %v, want a list of two", claims["aud"])
	}
	if _, err := verify(t, cfg, two); err != nil {
		t.Errorf("aud list: %v", err)
	}

	other := mint(t, append(base, "-aud", "web")...)
	if _, err := verify(t, cfg, other); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("wrong aud: want an audience denial, got %v", err)
	}
	noIss := mint(t, "-sub", "u", "-secret-env", "WSGATE_TEST_JWT_SECRET", "-aud", "chat")
	if _, claims := unverified(t, noIss); claims["iss"] != nil {
		t.Errorf("iss = %v without -iss", claims["iss"])
	}
	if header, _ := unverified(t, noIss); header["kid"] != nil {
		t.Errorf("kid = %v without -kid", header["kid"])
	}
}

func TestTokenTTL(t *testing.T) {
	t.Setenv("WSGATE_TEST_JWT_SECRET", tokenSecret)
	cfg := config.JWTAuth{SecretEnv: "WSGATE_TEST_JWT_SECRET", Algorithms: []string{"HS256"}}
	args := func(ttl string) []string {
		return []string{"-sub", "u", "-secret-env", "WSGATE_TEST_JWT_SECRET", "-ttl", ttl}
	}

	before := time.Now().Truncate(time.Second)
	id, err := verify(t, cfg, mint(t, args("5m")...))
	if err != nil {
		t.Fatal(err)
	}
	if d := id.ExpiresAt.Sub(before); d < 5*time.Minute || d > 5*time.Minute+2*time.Second {
		t.Errorf("-ttl 5m: exp is %v after minting, want 5m", d)
	}

	forever := mint(t, args("0")...)
	if _, claims := unverified(t, forever); claims["exp"] != nil || claims["iat"] == nil {
		t.Errorf("-ttl 0: claims %v, want iat and no exp", claims)
	}
	if _, err := verify(t, cfg, forever); err == nil || !strings.Contains(err.Error(), "exp claim is required") {
		t.Errorf("-ttl 0 against require_exp (default): want exp required, got %v", err)
	}
	off := false
	cfg.RequireExp = &off
	if _, err := verify(t, cfg, forever); err != nil {
		t.Errorf("-ttl 0 with require_exp false: %v", err)
	}

	expired := mint(t, args("-1m")...)
	if _, err := verify(t, cfg, expired); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("-ttl -1m: want expired, got %v", err)
	}
}

func TestTokenErrors(t *testing.T) {
	t.Setenv("WSGATE_TEST_JWT_SECRET", tokenSecret)
	t.Setenv("WSGATE_TEST_EMPTY", "")
	files := tokenKeyFiles(t)
	notPEM := writeFile(t, "not.pem", "hello "+tokenSecret)
	emptySecret := writeFile(t, "empty", "\n")
	env := []string{"-sub", "u", "-secret-env", "WSGATE_TEST_JWT_SECRET"}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no key source", []string{"-sub", "u"}, 2, "HS256 needs a secret: set -secret-env or -secret-file"},
		{"no private key", []string{"-sub", "u", "-alg", "RS256"}, 2, "RS256 needs a private key: set -key-file"},
		{"two key sources", append(env, "-secret-file", files["secret"]), 2, "set only one of"},
		{"HS256 with a key file", []string{"-sub", "u", "-key-file", files["rsa-pkcs8.pem"]}, 2, "use -secret-env or -secret-file, not -key-file"},
		{"RS256 with a secret", append(env, "-alg", "RS256"), 2, "use -key-file, not a secret"},
		{"unknown alg", append(env, "-alg", "HS1024"), 2, `unknown algorithm "HS1024"`},
		{"alg none", append(env, "-alg", "none"), 2, `unknown algorithm "none"`},
		{"no sub", []string{"-secret-env", "WSGATE_TEST_JWT_SECRET"}, 2, "-sub is required"},
		{"claim without =", append(env, "-claim", "admin"), 2, `"admin" is not key=value`},
		{"claim without key", append(env, "-claim", "=x"), 2, `"=x" is not key=value`},
		{"bad ttl", append(env, "-ttl", "soon"), 2, "invalid value"},
		{"extra argument", append(env, "extra"), 2, `unexpected argument "extra"`},
		{"unknown flag", append(env, "-secret", "x"), 2, "flag provided but not defined"},
		{"secret env empty", []string{"-sub", "u", "-secret-env", "WSGATE_TEST_EMPTY"}, 1, "environment variable WSGATE_TEST_EMPTY is empty or not set"},
		{"secret file missing", []string{"-sub", "u", "-secret-file", "/nonexistent/secret"}, 1, "/nonexistent/secret"},
		{"secret file empty", []string{"-sub", "u", "-secret-file", emptySecret}, 1, "is empty"},
		{"key file missing", []string{"-sub", "u", "-alg", "RS256", "-key-file", "/nonexistent/key.pem"}, 1, "/nonexistent/key.pem"},
		{"key file not PEM", []string{"-sub", "u", "-alg", "RS256", "-key-file", notPEM}, 1, "no PEM private key found"},
		{"public key as key file", []string{"-sub", "u", "-alg", "RS256", "-key-file", files["rsa-public.pem"]}, 1, "no PEM private key found"},
		{"encrypted key", []string{"-sub", "u", "-alg", "RS256", "-key-file", files["encrypted.pem"]}, 1, "encrypted"},
		{"ES256 with an RSA key", []string{"-sub", "u", "-alg", "ES256", "-key-file", files["rsa-pkcs8.pem"]}, 1, "ES256 cannot sign with an RSA key"},
		{"ES384 with a P-256 key", []string{"-sub", "u", "-alg", "ES384", "-key-file", files["p256-sec1.pem"]}, 1, "ES384 needs a P-384 key, not P-256"},
		{"RS256 with an Ed25519 key", []string{"-sub", "u", "-alg", "RS256", "-key-file", files["ed-pkcs8.pem"]}, 1, "RS256 cannot sign with an Ed25519 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, nil, append([]string{"token"}, tt.args...)...)
			if r.code != tt.code || r.stdout != "" || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("want exit %d and %q on stderr, got %v", tt.code, tt.want, r)
			}
			if strings.Contains(r.stderr, tokenSecret[:16]) {
				t.Errorf("the secret is on stderr: %v", r)
			}
		})
	}
}

func TestTokenHelp(t *testing.T) {
	r := run(t, nil, "token", "-h")
	if r.code != 0 {
		t.Fatalf("token -h: want exit 0, got %v", r)
	}
	for _, flag := range []string{"-sub", "-claim", "-ttl", "-alg", "-secret-env", "-secret-file", "-key-file", "-iss", "-aud", "-kid"} {
		if !strings.Contains(r.stderr, flag) {
			t.Errorf("token -h does not list %s:\n%s", flag, r.stderr)
		}
	}
	if r := run(t, nil, "help"); !strings.Contains(r.stdout, "wsgate token") {
		t.Errorf("usage does not list wsgate token:\n%s", r.stdout)
	}
}
