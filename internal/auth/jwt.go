package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/config"
)

// MaxTokenBytes caps the length of a JWT. A longer token is refused with 401
// before any of it is decoded.
const MaxTokenBytes = 8 << 10

// JWT is the built-in authorizer for JSON Web Tokens. It verifies the
// signature with a shared secret, a public key or a JWKS, checks exp, nbf,
// iat, iss and aud, and turns the principal claim and the context claims into
// the connection's Identity. The key ID and algorithm come from the token
// header, but only algorithms on the configured allow-list are accepted, and
// the jku, x5u and jwk headers are never looked at: keys come from
// configuration only. A crit header naming any extension but b64 true is
// refused, as RFC 7515 asks of a recipient that does not implement it.
//
// A JWT is safe for concurrent use. With jwks_url it owns a refresh goroutine
// that starts with the first verification and ends when the context given
// to NewJWT ends or Close is called.
type JWT struct {
	// validator checks exp, nbf, iat, iss and aud as golang-jwt's parser
	// does with the same options.
	validator  *jwt.Validator
	headers    headerCache
	algorithms []string
	// keyfunc returns the verification key for a token whose alg is already
	// known to be on the allow-list.
	keyfunc jwt.Keyfunc
	// jwks is set when keys come from jwks_url.
	jwks *jwksKeys

	// leeway is the clock skew tolerated on exp, nbf and iat; a token is
	// valid, and its connection open, until exp plus leeway.
	leeway time.Duration

	principalClaim string
	contextClaims  []string
	// wanted names the claims Verify decodes: the registered ones, the
	// principal claim and the context claims.
	wanted map[string]struct{}
	logger *slog.Logger
}

var (
	_ Authorizer = (*JWT)(nil)
	_ Closer     = (*JWT)(nil)
)

// NewJWT builds the JWT authorizer from cfg and loads its keys: the HMAC
// secret from the environment variable secret_env (read with getenv) or from
// secret_file (read with readFile; trailing line breaks are dropped), a PEM
// public key or certificate from public_key_file, or a JWK Set fetched from
// jwks_url. A JWKS that cannot be fetched now is logged, not an error: the
// gateway starts while the identity provider is down, refuses tokens with
// 401 until a fetch succeeds, and retries in the background with backoff.
// Later refreshes that fail keep the last good set. getenv and readFile
// default to os.Getenv and os.ReadFile, logger to discarding.
//
// ctx bounds the JWKS refresh goroutine, as does Close; the goroutine
// starts with the first verification, so a JWT that is built and never used
// leaves nothing running. Errors are *config.Error values whose Path names
// the setting at fault; they never contain a secret. config.IsMissing reports
// those of an unset secret_env and of a key file that does not exist.
func NewJWT(ctx context.Context, cfg config.JWTAuth, getenv func(string) string, readFile func(string) ([]byte, error), logger *slog.Logger) (*JWT, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "jwt")

	sources := 0
	for _, s := range []string{cfg.SecretEnv, cfg.SecretFile, cfg.PublicKeyFile, cfg.JWKSURL} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return nil, jwtConfigError("", "set exactly one of secret_env, secret_file, public_key_file, jwks_url")
	}
	symmetric := cfg.SecretEnv != "" || cfg.SecretFile != ""
	if len(cfg.Algorithms) == 0 {
		return nil, jwtConfigError("algorithms", "required: the allow-list of signing algorithms, e.g. [HS256] or [RS256]")
	}
	for i, alg := range cfg.Algorithms {
		if _, ok := algorithmFamilies[alg]; !ok {
			return nil, jwtConfigError(fmt.Sprintf("algorithms[%d]", i), "unknown algorithm %q; one of %s", alg, strings.Join(jwtAlgorithmNames, ", "))
		}
		if hmacAlg := strings.HasPrefix(alg, "HS"); hmacAlg != symmetric {
			if hmacAlg {
				return nil, jwtConfigError(fmt.Sprintf("algorithms[%d]", i), "%s needs a shared secret (secret_env or secret_file), not a public key", alg)
			}
			return nil, jwtConfigError(fmt.Sprintf("algorithms[%d]", i), "%s needs a public key (public_key_file or jwks_url), not a shared secret", alg)
		}
	}
	if cfg.Leeway < 0 {
		return nil, jwtConfigError("leeway", "must not be negative")
	}

	principal := cfg.PrincipalClaim
	if principal == "" {
		principal = "sub"
	}
	j := &JWT{
		algorithms:     slices.Clone(cfg.Algorithms),
		leeway:         cfg.Leeway,
		principalClaim: principal,
		contextClaims:  slices.Clone(cfg.ContextClaims),
		logger:         logger,
		wanted:         make(map[string]struct{}),
	}
	for _, name := range slices.Concat(registeredClaims, []string{principal}, cfg.ContextClaims) {
		j.wanted[name] = struct{}{}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(j.algorithms),
		jwt.WithJSONNumber(),
		jwt.WithLeeway(cfg.Leeway),
		// golang-jwt checks iat only when asked: a token issued in the
		// future beyond leeway is refused.
		jwt.WithIssuedAt(),
	}
	if cfg.RequireExp == nil || *cfg.RequireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audience...))
	}
	j.validator = jwt.NewValidator(opts...)

	var key any
	switch {
	case cfg.SecretEnv != "":
		secret := getenv(cfg.SecretEnv)
		if secret == "" {
			return nil, &config.Error{Path: "authorizer.jwt.secret_env", Msg: fmt.Sprintf("environment variable %s is empty or not set", cfg.SecretEnv), Err: config.ErrMissing}
		}
		key = []byte(secret)
	case cfg.SecretFile != "":
		data, err := readFile(cfg.SecretFile)
		if err != nil {
			return nil, jwtConfigError("secret_file", "%w", err)
		}
		secret := bytes.TrimRight(data, "\r\n")
		if len(secret) == 0 {
			return nil, jwtConfigError("secret_file", "%s is empty", cfg.SecretFile)
		}
		key = secret
	case cfg.PublicKeyFile != "":
		data, err := readFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, jwtConfigError("public_key_file", "%w", err)
		}
		pub, err := parsePublicKeyPEM(data)
		if err != nil {
			return nil, jwtConfigError("public_key_file", "%s: %v", cfg.PublicKeyFile, err)
		}
		for i, alg := range j.algorithms {
			if !keyFits(alg, pub) {
				return nil, jwtConfigError(fmt.Sprintf("algorithms[%d]", i), "%s cannot be verified with the %s in public_key_file", alg, describeKey(pub))
			}
		}
		key = pub
	default:
		j.jwks = newJWKSKeys(ctx, cfg.JWKSURL, cfg.JWKSRefresh, logger)
		j.keyfunc = j.jwks.keyfunc
	}
	if secret, ok := key.([]byte); ok {
		for _, alg := range j.algorithms {
			if want := algorithmFamilies[alg].size; len(secret) < want {
				logger.Warn("HMAC secret is shorter than RFC 7518 asks for the algorithm", "algorithm", alg, "secret_bytes", len(secret), "want_bytes", want)
				break
			}
		}
	}
	if key != nil {
		j.keyfunc = func(*jwt.Token) (any, error) { return key, nil }
	}
	return j, nil
}

// Authorize verifies req.Token. A missing or invalid token is a 401 whose
// reason says what failed.
func (j *JWT) Authorize(ctx context.Context, req *Request) (*Identity, error) {
	return j.Verify(ctx, req.Token)
}

// Verify checks token exactly as Authorize does; the $refresh route uses it
// for a token sent in a message.
func (j *JWT) Verify(_ context.Context, token string) (*Identity, error) {
	if token == "" {
		return nil, Unauthorized("no token")
	}
	if len(token) > MaxTokenBytes {
		return nil, Unauthorized(fmt.Sprintf("token is %d bytes, over the %d-byte limit", len(token), MaxTokenBytes))
	}
	tc := &tokenClaims{MapClaims: make(jwt.MapClaims, 4), wanted: j.wanted}
	parsed, err := j.parse(token, tc)
	if err != nil {
		d := Unauthorized(j.reason(parsed, err))
		var ke *keyError
		d.undecided = errors.As(err, &ke) && ke.undecided
		return nil, d
	}
	claims := tc.MapClaims
	principal, ok := claims[j.principalClaim].(string)
	if !ok || principal == "" {
		return nil, Unauthorized(fmt.Sprintf("claim %q is missing or not a non-empty string", j.principalClaim))
	}
	id := &Identity{PrincipalID: principal}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		// The validator accepts the token until exp plus leeway, so that
		// is when the credential expires for the gateway too.
		id.ExpiresAt = exp.Time.Add(j.leeway)
	}
	if len(j.contextClaims) > 0 {
		id.Context = make(map[string]any, len(j.contextClaims))
		for _, name := range j.contextClaims {
			v, ok := claims[name]
			if !ok {
				continue
			}
			switch v.(type) {
			case string, json.Number, float64, bool:
				id.Context[name] = v
			default:
				j.logger.Debug("context claim skipped: not a string, number or boolean", "claim", name, "type", jsonType(v))
			}
		}
	}
	return id, nil
}

// verificationKey is the parser's keyfunc: it refuses a header with
// extensions wsgate does not implement, which golang-jwt does not look at,
// before any key is looked up.
func (j *JWT) verificationKey(tok *jwt.Token) (any, error) {
	if err := checkExtensions(tok.Header); err != nil {
		return nil, err
	}
	return j.keyfunc(tok)
}

// understood lists the header parameters wsgate implements as extensions
// (RFC 7515 §4.1.11): b64 (RFC 7797), when its value is true, asks for the
// base64url payload every JWT has.
var understood = map[string]bool{"b64": true}

// checkExtensions applies RFC 7515 §4.1.11 and RFC 7797 to a token header.
// crit, when present, must be a non-empty list of names of parameters the
// header holds, each an extension wsgate understands; any other crit makes
// the token invalid. b64, when present, must be true: an unencoded payload
// (b64 false) would be read differently from what was signed. Its reasons
// quote a header name at most 40 characters long.
func checkExtensions(header map[string]any) error {
	if b64, ok := header["b64"]; ok && b64 != true {
		return &keyError{reason: "unencoded payload (b64) is not supported"}
	}
	raw, ok := header["crit"]
	if !ok {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		return &keyError{reason: "crit header is not a list of header names"}
	}
	if len(list) == 0 {
		return &keyError{reason: "crit header is an empty list"}
	}
	for _, v := range list {
		if _, ok := v.(string); !ok {
			return &keyError{reason: "crit header is not a list of header names"}
		}
	}
	for _, v := range list {
		name := v.(string)
		if _, ok := header[name]; !ok {
			return &keyError{reason: fmt.Sprintf("crit header names %.40q, which the header lacks", name)}
		}
		if !understood[name] {
			return &keyError{reason: fmt.Sprintf("crit header names %.40q, an extension wsgate does not support", name)}
		}
	}
	return nil
}

// Close stops the JWKS refresh and waits for it. It is safe to call more
// than once.
func (j *JWT) Close() error {
	if j.jwks != nil {
		j.jwks.close()
	}
	return nil
}

// reason says why a token was refused, in words for the log. It never
// quotes the token; a kid or alg is quoted only from a fixed set or in
// bounded length.
func (j *JWT) reason(tok *jwt.Token, err error) string {
	var ke *keyError
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.As(err, &ke):
		return ke.reason
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// The parser has found alg among the registered signing methods
		// before it checks the allow-list, so alg is one of a fixed set.
		if tok != nil && tok.Method != nil && !slices.Contains(j.algorithms, tok.Method.Alg()) {
			return fmt.Sprintf("alg %s not allowed", tok.Method.Alg())
		}
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		if tok != nil && tok.Method == nil {
			return "alg missing or not supported"
		}
		return "token unverifiable"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		// The validator's messages name claims, never their values.
		return "invalid claims: " + strings.TrimPrefix(err.Error(), jwt.ErrTokenInvalidClaims.Error()+": ")
	}
	return "invalid token"
}

// jwtConfigError is a *config.Error for the setting authorizer.jwt.key,
// formatted as by fmt.Errorf: the error a %w verb formats is its Err.
func jwtConfigError(key, format string, args ...any) error {
	path := "authorizer.jwt"
	if key != "" {
		path += "." + key
	}
	err := fmt.Errorf(format, args...)
	return &config.Error{Path: path, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// keyError is a keyfunc failure whose reason is safe to log. undecided
// marks a failure to find a key that a later JWKS fetch may cure.
type keyError struct {
	reason    string
	undecided bool
}

func (e *keyError) Error() string { return e.reason }

type algorithmFamily struct {
	kind string // "HS", "RS", "ES", "EdDSA"; PS uses RSA keys
	// size is the HMAC secret length RFC 7518 asks for, in bytes, or the
	// ECDSA curve size in bits.
	size int
}

var algorithmFamilies = map[string]algorithmFamily{
	"HS256": {"HS", 32}, "HS384": {"HS", 48}, "HS512": {"HS", 64},
	"RS256": {"RS", 0}, "RS384": {"RS", 0}, "RS512": {"RS", 0},
	"PS256": {"RS", 0}, "PS384": {"RS", 0}, "PS512": {"RS", 0},
	"ES256": {"ES", 256}, "ES384": {"ES", 384}, "ES512": {"ES", 521},
	"EdDSA": {"EdDSA", 0},
}

var jwtAlgorithmNames = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// keyFits reports whether key can verify signatures made with alg: a
// secret for HS*, an RSA key for RS* and PS*, an ECDSA key on alg's curve for
// ES*, an Ed25519 key for EdDSA.
func keyFits(alg string, key any) bool {
	fam, ok := algorithmFamilies[alg]
	if !ok {
		return false
	}
	switch k := key.(type) {
	case []byte:
		return fam.kind == "HS"
	case *rsa.PublicKey:
		return fam.kind == "RS"
	case *ecdsa.PublicKey:
		return fam.kind == "ES" && k.Curve != nil && k.Curve.Params().BitSize == fam.size
	case ed25519.PublicKey:
		return fam.kind == "EdDSA"
	}
	return false
}

func describeKey(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d key", k.N.BitLen())
	case *ecdsa.PublicKey:
		return fmt.Sprintf("ECDSA %s key", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return "Ed25519 key"
	}
	return fmt.Sprintf("%T key", key)
}

// parsePublicKeyPEM returns the RSA, ECDSA or Ed25519 public key in the
// first PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block of data.
func parsePublicKeyPEM(data []byte) (any, error) {
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM public key or certificate found")
		}
		data = rest
		var (
			key any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("holds a private key; give the gateway only the public key (openssl pkey -in key.pem -pubout)")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s block: %w", block.Type, err)
		}
		switch key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			return key, nil
		}
		return nil, fmt.Errorf("unsupported %T public key; use RSA, ECDSA or Ed25519", key)
	}
}

// jsonType names the JSON type of a decoded claim value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}
