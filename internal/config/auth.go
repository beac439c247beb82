package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// OneOrMore is a list of strings that may also be written as a single
// string: `role: admin` is `role: [admin]`.
type OneOrMore []string

// AuthorizerType names how clients are authenticated at $connect.
type AuthorizerType string

// The authorizer types.
const (
	// AuthNone lets every client connect.
	AuthNone AuthorizerType = "none"
	// AuthJWT verifies a JSON Web Token.
	AuthJWT AuthorizerType = "jwt"
	// AuthRequest calls an HTTP authorizer in AWS Lambda REQUEST-authorizer
	// format.
	AuthRequest AuthorizerType = "request"
	// AuthBasic checks HTTP Basic credentials against an htpasswd file
	// (bcrypt).
	AuthBasic AuthorizerType = "basic"
	// AuthAPIKey checks an API key.
	AuthAPIKey AuthorizerType = "apikey"
)

// Authorizer configures authentication at $connect. Identity sources use
// AWS's syntax (route.request.querystring.X, route.request.header.X,
// stageVariables.X) plus route.request.cookie.X and route.request.subprotocol.
type Authorizer struct {
	// Type is the authorizer. Default "none".
	Type AuthorizerType `yaml:"type"`

	// IdentitySources must all be present and non-empty, or the client gets
	// 401 without the authorizer running (AWS). For jwt the first source
	// holds the token ("Bearer " is stripped from a header). Default per
	// type: jwt route.request.querystring.access_token, basic
	// route.request.header.Authorization, apikey route.request.header.x-api-key,
	// request none.
	IdentitySources []string `yaml:"identity_sources"`

	// CacheTTL caches Allow and Deny decisions, keyed by all identity-source
	// values, for this long, so it needs at least one identity source.
	// Failures are never cached. Default 0: no cache (AWS does not cache
	// WebSocket authorizers).
	CacheTTL time.Duration `yaml:"cache_ttl"`

	// CacheSize bounds the number of cached decisions. Default 10000.
	CacheSize int `yaml:"cache_size"`

	// CSRF requires a double-submit token: the cookie named Cookie must
	// equal the query parameter named Query. Default off.
	CSRF CSRF `yaml:"csrf"`

	JWT     JWTAuth     `yaml:"jwt"`
	Request RequestAuth `yaml:"request"`
	Basic   BasicAuth   `yaml:"basic"`
	// Lambda is the function of a lambda authorizer: it receives AWS's
	// REQUEST authorizer event and answers as a Lambda authorizer does.
	Lambda Lambda     `yaml:"lambda"`
	APIKey APIKeyAuth `yaml:"apikey"`
}

// CSRF names the two halves of a double-submit CSRF token.
type CSRF struct {
	Cookie string `yaml:"cookie"`
	Query  string `yaml:"query"`
}

// JWTAuth configures the built-in JWT authorizer. Exactly one key source is
// required.
type JWTAuth struct {
	// SecretEnv names an environment variable holding the HMAC secret.
	SecretEnv string `yaml:"secret_env"`
	// SecretFile is a file holding the HMAC secret.
	SecretFile string `yaml:"secret_file"`
	// PublicKeyFile is a PEM file with an RSA, ECDSA or Ed25519 public key.
	PublicKeyFile string `yaml:"public_key_file"`
	// JWKSURL is fetched at start and refreshed in the background; an
	// unknown kid triggers a refresh at most once per JWKSRefresh.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSRefresh is the background refresh interval. Default 1h.
	JWKSRefresh time.Duration `yaml:"jwks_refresh"`
	// Algorithms is the explicit allow-list (HS256 … EdDSA). Required.
	Algorithms []string `yaml:"algorithms"`
	// Issuer and Audience, when set, must match iss and aud.
	Issuer   string    `yaml:"issuer"`
	Audience OneOrMore `yaml:"audience"`
	// Leeway tolerates clock skew on exp, nbf and iat. Default 0.
	Leeway time.Duration `yaml:"leeway"`
	// RequireExp rejects tokens without exp. Default true.
	RequireExp *bool `yaml:"require_exp"`
	// PrincipalClaim becomes principalId. Default "sub".
	PrincipalClaim string `yaml:"principal_claim"`
	// ContextClaims are copied into the authorizer context (string, number
	// and boolean claims only).
	ContextClaims []string `yaml:"context_claims"`
	// RefreshRoute is the route key of the built-in token refresh: a message
	// {"action": "$refresh", "token": "…"} carrying a fresh token for the
	// same principal extends the connection past the old token's exp.
	// Default "$refresh".
	RefreshRoute string `yaml:"refresh_route"`
}

// RequestAuth configures a custom authorizer called over HTTP with AWS's
// REQUEST authorizer event.
type RequestAuth struct {
	// URL receives the event as a POST. Required.
	URL string `yaml:"url"`
	// Timeout bounds the call; a timeout is a 500. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Headers are extra request headers.
	Headers map[string]string `yaml:"headers"`
	// Region and AccountID build the methodArn
	// arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/$connect.
	// Defaults "us-east-1" and "000000000000".
	Region    string `yaml:"region"`
	AccountID string `yaml:"account_id"`
}

// BasicAuth configures HTTP Basic authentication.
type BasicAuth struct {
	// HtpasswdFile holds user:bcrypt-hash lines. Required.
	HtpasswdFile string `yaml:"htpasswd_file"`
	// Realm is sent in WWW-Authenticate on 401. Default "wsgate".
	Realm string `yaml:"realm"`
}

// APIKeyAuth configures API-key authentication. The key is the value of the
// first identity source (default the x-api-key header).
type APIKeyAuth struct {
	// KeysEnv names an environment variable with keys separated by commas
	// or whitespace.
	KeysEnv string `yaml:"keys_env"`
	// KeysFile holds one key per line.
	KeysFile string `yaml:"keys_file"`
}

// identitySourcePattern is AWS's identity-source syntax plus cookie and
// subprotocol.
var identitySourcePattern = regexp.MustCompile(`^(route\.request\.(querystring|header|cookie)\.[A-Za-z0-9._~!$&'*+^|-]+|stageVariables\.[A-Za-z0-9._-]+|route\.request\.subprotocol)$`)

var jwtAlgorithms = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func (a *Authorizer) fillDefaults() {
	setDefault(&a.Type, AuthNone)
	if len(a.IdentitySources) == 0 {
		switch a.Type {
		case AuthJWT:
			a.IdentitySources = []string{"route.request.querystring.access_token"}
		case AuthBasic:
			a.IdentitySources = []string{"route.request.header.Authorization"}
		case AuthAPIKey:
			a.IdentitySources = []string{"route.request.header.x-api-key"}
		}
	}
	setDefault(&a.CacheSize, 10000)
	setDefault(&a.JWT.JWKSRefresh, time.Hour)
	setDefault(&a.JWT.PrincipalClaim, "sub")
	setDefault(&a.JWT.RefreshRoute, "$refresh")
	if a.JWT.RequireExp == nil {
		on := true
		a.JWT.RequireExp = &on
	}
	setDefault(&a.Request.Timeout, 10*time.Second)
	setDefault(&a.Request.Region, "us-east-1")
	setDefault(&a.Request.AccountID, "000000000000")
	setDefault(&a.Basic.Realm, "wsgate")
	a.Lambda.fillDefaults()
}

// clientSource reports whether the identity source s is read from the
// client's request, rather than from the stage.
func clientSource(s string) bool { return strings.HasPrefix(s, "route.request.") }

// UsesCookies reports whether any identity source or the CSRF check reads a
// cookie.
func (a Authorizer) UsesCookies() bool {
	if a.CSRF.Cookie != "" {
		return true
	}
	for _, s := range a.IdentitySources {
		if strings.HasPrefix(s, "route.request.cookie.") {
			return true
		}
	}
	return false
}

func (k *checker) authorizer(a Authorizer, origins []string, subprotocols []string) {
	const p = "authorizer"
	for i, s := range a.IdentitySources {
		if !identitySourcePattern.MatchString(s) {
			k.add(fmt.Sprintf("%s.identity_sources[%d]", p, i), "%q is not an identity source; use route.request.querystring.NAME, route.request.header.NAME, route.request.cookie.NAME, stageVariables.NAME or route.request.subprotocol", s)
		}
		if s == "route.request.subprotocol" && len(subprotocols) == 0 {
			k.add(fmt.Sprintf("%s.identity_sources[%d]", p, i), "route.request.subprotocol needs subprotocols: the list of real protocols the token is offered beside")
		}
	}
	if a.CacheTTL < 0 {
		k.add(p+".cache_ttl", "must not be negative, got %s", fmtDuration(a.CacheTTL))
	}
	if a.CacheTTL > 0 && a.Type != AuthNone && !slices.ContainsFunc(a.IdentitySources, clientSource) {
		// The cache is keyed by the identity sources' values: without one
		// the client sends, every client would share the first one's
		// decision.
		k.add(p+".cache_ttl", "needs identity_sources that the client sends (not only stageVariables), the values decisions are cached by; without them every client would get the first client's decision")
	}
	if a.CacheSize < 1 {
		k.add(p+".cache_size", "must be at least 1, got %d", a.CacheSize)
	}
	if (a.CSRF.Cookie == "") != (a.CSRF.Query == "") {
		k.add(p+".csrf", "set both cookie and query, or neither")
	}
	if a.UsesCookies() && len(origins) == 0 {
		k.add(p, "cookie-based identity needs origins: without an Origin allow-list any web page can open a connection with the user's cookies (cross-site WebSocket hijacking)")
	}
	switch a.Type {
	case AuthNone:
		if len(a.IdentitySources) > 0 {
			k.add(p+".identity_sources", "not used with type none")
		}
	case AuthJWT:
		k.jwt(p+".jwt", a.JWT)
	case AuthRequest:
		r := a.Request
		if r.URL == "" {
			k.add(p+".request.url", "required for type request")
		} else if !isHTTPURL(r.URL) {
			k.add(p+".request.url", "%s must be an absolute http:// or https:// URL", showURL(r.URL))
		}
		k.positive(p+".request.timeout", r.Timeout)
		if !regexp.MustCompile(`^[0-9]{12}$`).MatchString(r.AccountID) {
			k.add(p+".request.account_id", "%q must be 12 digits", r.AccountID)
		}
	case AuthLambda:
		k.lambda(p+".lambda", a.Lambda)
	case AuthBasic:
		if a.Basic.HtpasswdFile == "" {
			k.add(p+".basic.htpasswd_file", "required for type basic")
		}
	case AuthAPIKey:
		if a.APIKey.KeysEnv == "" && a.APIKey.KeysFile == "" {
			k.add(p+".apikey", "set keys_env or keys_file")
		}
		k.envName(p+".apikey.keys_env", a.APIKey.KeysEnv)
	default:
		k.add(p+".type", "unknown authorizer type %q; one of none, jwt, request, lambda, basic, apikey", a.Type)
	}
}

func (k *checker) jwt(p string, j JWTAuth) {
	sources := 0
	for _, s := range []string{j.SecretEnv, j.SecretFile, j.PublicKeyFile, j.JWKSURL} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		k.add(p, "set exactly one of secret_env, secret_file, public_key_file, jwks_url")
	}
	k.envName(p+".secret_env", j.SecretEnv)
	if j.JWKSURL != "" {
		if u, err := url.Parse(j.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			k.add(p+".jwks_url", "%s must be an absolute http:// or https:// URL", showURL(j.JWKSURL))
		}
	}
	if len(j.Algorithms) == 0 {
		k.add(p+".algorithms", "required: the allow-list of signing algorithms, e.g. [HS256] or [RS256]")
	}
	for i, alg := range j.Algorithms {
		if !slices.Contains(jwtAlgorithms, alg) {
			k.add(fmt.Sprintf("%s.algorithms[%d]", p, i), "unknown algorithm %q; one of %s", alg, strings.Join(jwtAlgorithms, ", "))
			continue
		}
		hmac := strings.HasPrefix(alg, "HS")
		if hmac && (j.PublicKeyFile != "" || j.JWKSURL != "") {
			k.add(fmt.Sprintf("%s.algorithms[%d]", p, i), "%s needs a shared secret (secret_env or secret_file), not a public key", alg)
		}
		if !hmac && (j.SecretEnv != "" || j.SecretFile != "") {
			k.add(fmt.Sprintf("%s.algorithms[%d]", p, i), "%s needs a public key (public_key_file or jwks_url), not a shared secret", alg)
		}
	}
	if j.Leeway < 0 {
		k.add(p+".leeway", "must not be negative")
	}
	k.positive(p+".jwks_refresh", j.JWKSRefresh)
	if j.RefreshRoute == RouteConnect || j.RefreshRoute == RouteDisconnect || j.RefreshRoute == RouteDefault {
		k.add(p+".refresh_route", "%q is a predefined route key", j.RefreshRoute)
	}
}

// originPattern is an allowed Origin: scheme://host[:port], with an optional
// leading "*." wildcard label.
var originPattern = regexp.MustCompile(`^https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)

func (k *checker) origins(origins []string) {
	for i, o := range origins {
		if !originPattern.MatchString(o) {
			k.add(fmt.Sprintf("origins[%d]", i), "%q must be scheme://host[:port], optionally https://*.example.com", o)
		}
	}
}

func (k *checker) subprotocols(list []string) {
	for i, sp := range list {
		if !isToken(sp) {
			k.add(fmt.Sprintf("subprotocols[%d]", i), "%q is not a valid protocol token", sp)
		}
	}
}
