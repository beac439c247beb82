package cli

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenAlgorithms are the algorithms wsgate token signs with, as the jwt
// authorizer accepts them.
var tokenAlgorithms = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// claimFlags collects repeated -claim key=value flags in order.
type claimFlags []claimFlag

type claimFlag struct {
	key   string
	value any
}

func (c *claimFlags) String() string {
	parts := make([]string, len(*c))
	for i, f := range *c {
		parts[i] = fmt.Sprintf("%s=%v", f.key, f.value)
	}
	return strings.Join(parts, ", ")
}

func (c *claimFlags) Set(s string) error {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	*c = append(*c, claimFlag{key: key, value: claimValue(value)})
	return nil
}

// claimValue returns s as a JSON number or boolean when it is one, else as
// a string: -claim level=3 is a number, -claim level='"3"' a string with
// quotes, -claim zip=01234 a string (not valid JSON).
func claimValue(s string) any {
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	if s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s)) {
		return json.Number(s)
	}
	return s
}

// listFlags collects a repeated string flag.
type listFlags []string

func (l *listFlags) String() string     { return strings.Join(*l, ", ") }
func (l *listFlags) Set(v string) error { *l = append(*l, v); return nil }

// mintToken prints a signed development JWT with sub, iat, exp and the
// given claims. The secret or key comes from an environment variable or a
// file, never from the command line, so it stays out of shell history.
func mintToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token", stderr)
	sub := fs.String("sub", "", "subject claim (`principal`); required")
	var claims claimFlags
	fs.Var(&claims, "claim", "extra claim `key=value` (repeatable); JSON numbers and true/false keep their type; overrides the claims other flags set")
	ttl := fs.Duration("ttl", time.Hour, "lifetime: exp = now + `duration`; 0 omits exp, a negative value mints an expired token")
	alg := fs.String("alg", "HS256", "signing `algorithm`: "+strings.Join(tokenAlgorithms, ", "))
	secretEnv := fs.String("secret-env", "", "environment variable `NAME` holding the HMAC secret (HS*)")
	secretFile := fs.String("secret-file", "", "`file` holding the HMAC secret (HS*); trailing line breaks are dropped, as the gateway does")
	keyFile := fs.String("key-file", "", "PEM private key `file` (RSA, EC or Ed25519; PKCS#8, PKCS#1 or SEC1) for RS*, PS*, ES* and EdDSA")
	iss := fs.String("iss", "", "issuer claim (iss)")
	var aud listFlags
	fs.Var(&aud, "aud", "audience claim (aud); repeat for a list")
	kid := fs.String("kid", "", "key ID header (kid)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *sub == "" {
		return usageError{errors.New("-sub is required")}
	}
	method := jwt.GetSigningMethod(*alg)
	if method == nil || !slices.Contains(tokenAlgorithms, *alg) {
		return usageError{fmt.Errorf("unknown algorithm %q; one of %s", *alg, strings.Join(tokenAlgorithms, ", "))}
	}
	sources := 0
	for _, s := range []string{*secretEnv, *secretFile, *keyFile} {
		if s != "" {
			sources++
		}
	}
	hmac := strings.HasPrefix(*alg, "HS")
	switch {
	case sources == 0 && hmac:
		return usageError{fmt.Errorf("%s needs a secret: set -secret-env or -secret-file", *alg)}
	case sources == 0:
		return usageError{fmt.Errorf("%s needs a private key: set -key-file", *alg)}
	case sources > 1:
		return usageError{errors.New("set only one of -secret-env, -secret-file, -key-file")}
	case hmac && *keyFile != "":
		return usageError{fmt.Errorf("%s signs with a shared secret: use -secret-env or -secret-file, not -key-file", *alg)}
	case !hmac && *keyFile == "":
		return usageError{fmt.Errorf("%s signs with a private key: use -key-file, not a secret", *alg)}
	}

	var key any
	switch {
	case *secretEnv != "":
		secret := os.Getenv(*secretEnv)
		if secret == "" {
			return fmt.Errorf("environment variable %s is empty or not set", *secretEnv)
		}
		key = []byte(secret)
	case *secretFile != "":
		data, err := os.ReadFile(*secretFile)
		if err != nil {
			return err
		}
		secret := bytes.TrimRight(data, "\r\n")
		if len(secret) == 0 {
			return fmt.Errorf("%s is empty", *secretFile)
		}
		key = secret
	default:
		data, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		signer, err := parsePrivateKeyPEM(data)
		if err != nil {
			return fmt.Errorf("%s: %w", *keyFile, err)
		}
		if err := signerFits(*alg, signer); err != nil {
			return fmt.Errorf("%s: %w", *keyFile, err)
		}
		key = signer
	}

	now := time.Now()
	mc := jwt.MapClaims{"sub": *sub, "iat": now.Unix()}
	if *ttl != 0 {
		mc["exp"] = now.Add(*ttl).Unix()
	}
	if *iss != "" {
		mc["iss"] = *iss
	}
	switch len(aud) {
	case 0:
	case 1:
		mc["aud"] = aud[0]
	default:
		mc["aud"] = []string(aud)
	}
	for _, c := range claims {
		mc[c.key] = c.value
	}
	tok := jwt.NewWithClaims(method, mc)
	if *kid != "" {
		tok.Header["kid"] = *kid
	}
	signed, err := tok.SignedString(key)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	_, err = fmt.Fprintln(stdout, signed)
	return err
}

// parsePrivateKeyPEM returns the first private key in data: PKCS#8
// ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY").
// Other blocks, such as the EC PARAMETERS that openssl ecparam writes first,
// are skipped.
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		data = rest
		if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("the private key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s block: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		}
		return nil, fmt.Errorf("unsupported %T private key; use RSA, EC or Ed25519", key)
	}
}

// signerFits checks that key can sign with alg.
func signerFits(alg string, key crypto.Signer) error {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS") {
			return nil
		}
		return fmt.Errorf("%s cannot sign with an RSA key", alg)
	case *ecdsa.PrivateKey:
		want, ok := map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
		if !ok {
			return fmt.Errorf("%s cannot sign with an EC key", alg)
		}
		if got := k.Curve.Params().Name; got != want {
			return fmt.Errorf("%s needs a %s key, not %s", alg, want, got)
		}
		return nil
	case ed25519.PrivateKey:
		if alg == "EdDSA" {
			return nil
		}
		return fmt.Errorf("%s cannot sign with an Ed25519 key", alg)
	}
	return fmt.Errorf("%s cannot sign with a %T key", alg, key)
}
