package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"

	"github.com/wsgate/wsgate/internal/config"
)

// APIKey accepts clients that present one of a fixed set of keys, read at
// construction. It keeps only the keys' SHA-256 digests. APIKey is safe for
// concurrent use.
type APIKey struct {
	digests [][sha256.Size]byte
	// ids[i] is the key ID of digests[i]: "apikey:" and the first 8 hex
	// digits of the digest.
	ids []string
}

var _ Authorizer = (*APIKey)(nil)

// NewAPIKey reads the keys from the environment variable cfg.KeysEnv
// (separated by commas or whitespace) and the file cfg.KeysFile (one key
// per line; blank lines and lines starting with "#" are skipped) with
// getenv and readFile; nil means os.Getenv or os.ReadFile. Keys found in
// both are used once.
//
// A named variable that is unset or empty, a named file that cannot be read
// or holds no key, a file line holding whitespace inside a key, and naming
// neither source are errors. Errors name the variable or the file and line,
// never a key; each is a *config.Error whose Path names the setting.
// config.IsMissing reports those of an unset variable and of a file that does
// not exist.
func NewAPIKey(cfg config.APIKeyAuth, getenv func(string) string, readFile func(string) ([]byte, error)) (*APIKey, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	if cfg.KeysEnv == "" && cfg.KeysFile == "" {
		return nil, &config.Error{Path: "authorizer.apikey", Msg: "set keys_env or keys_file"}
	}
	var keys []string
	var errs []error
	if name := cfg.KeysEnv; name != "" {
		found := strings.FieldsFunc(getenv(name), func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		if len(found) == 0 {
			errs = append(errs, &config.Error{Path: "authorizer.apikey.keys_env", Msg: fmt.Sprintf("environment variable %s is unset or empty", name), Err: config.ErrMissing})
		}
		keys = append(keys, found...)
	}
	if path := cfg.KeysFile; path != "" {
		found, err := keysFromFile(path, readFile)
		if err != nil {
			errs = append(errs, &config.Error{Path: "authorizer.apikey.keys_file", Msg: err.Error(), Err: err})
		}
		keys = append(keys, found...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a := &APIKey{}
	seen := make(map[[sha256.Size]byte]bool, len(keys))
	for _, k := range keys {
		d := sha256.Sum256([]byte(k))
		if seen[d] {
			continue
		}
		seen[d] = true
		a.digests = append(a.digests, d)
		a.ids = append(a.ids, keyID(d))
	}
	return a, nil
}

// keysFromFile reads one key per line from the file at path, skipping blank
// lines and lines starting with "#".
func keysFromFile(path string, readFile func(string) ([]byte, error)) ([]string, error) {
	data, err := readFile(path)
	if err != nil {
		// The error of os.ReadFile names the file.
		return nil, fmt.Errorf("reading api keys: %w", err)
	}
	var keys []string
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if bytes.ContainsFunc(line, unicode.IsSpace) {
			return nil, fmt.Errorf("%s:%d: an api key must not contain whitespace; put one key per line", path, i+1)
		}
		keys = append(keys, string(line))
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no api keys; put one key per line", path)
	}
	return keys, nil
}

// Authorize accepts req.Token, the value of the first identity source, when
// it is one of the keys, and answers 403 otherwise, as AWS does for a bad
// API key. The presented key is compared with every key, in time that does
// not depend on which key, if any, it matches or on its length. The
// identity's PrincipalID and its context's "apiKeyId" are the key ID, never
// the key.
func (a *APIKey) Authorize(_ context.Context, req *Request) (*Identity, error) {
	got := sha256.Sum256([]byte(req.Token))
	match, idx := 0, 0
	for i := range a.digests {
		eq := subtle.ConstantTimeCompare(got[:], a.digests[i][:])
		match |= eq
		idx = subtle.ConstantTimeSelect(eq, i, idx)
	}
	if req.Token == "" {
		return nil, Forbidden("missing api key")
	}
	if match != 1 {
		return nil, Forbidden("invalid api key")
	}
	id := a.ids[idx]
	return &Identity{PrincipalID: id, Context: map[string]any{"apiKeyId": id}}, nil
}

// keyID names a key by its digest: "apikey:" and the digest's first 8 hex
// digits, enough to tell keys apart in logs without revealing them.
func keyID(d [sha256.Size]byte) string {
	return "apikey:" + hex.EncodeToString(d[:4])
}
