package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsgate/wsgate/internal/config"
)

// Basic checks HTTP Basic credentials against bcrypt hashes read from an
// htpasswd file at construction. The file is not read again. Basic is safe
// for concurrent use.
type Basic struct {
	users map[string][]byte // username → bcrypt hash
	// dummy is a hash of a random password at the file's most common cost,
	// compared against for unknown users so that their answer takes as long
	// as a known user's.
	dummy []byte
	// challenge is the WWW-Authenticate value sent with every 401.
	challenge string
}

var _ Authorizer = (*Basic)(nil)

// bcryptHash is a Modular Crypt bcrypt hash: version 2a, 2b or 2y (htpasswd
// -B writes 2y), a two-digit cost and 53 characters of salt and checksum.
var bcryptHash = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

// NewBasic reads the htpasswd file cfg.HtpasswdFile with readFile (nil means
// os.ReadFile). Each line is user:hash with a bcrypt hash ($2a$, $2b$ or
// $2y$, as written by htpasswd -B); blank lines and lines starting with "#"
// are skipped.
//
// A file that cannot be read or holds no user, a line without a colon, an
// empty or repeated user name and a hash of any other format are errors.
// Errors name the file and line, never a hash; each is a *config.Error whose
// Path is authorizer.basic.htpasswd_file. config.IsMissing reports the error
// of a file that does not exist.
func NewBasic(cfg config.BasicAuth, readFile func(string) ([]byte, error)) (*Basic, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	const key = "authorizer.basic.htpasswd_file"
	path := cfg.HtpasswdFile
	if path == "" {
		return nil, &config.Error{Path: key, Msg: "required for type basic"}
	}
	data, err := readFile(path)
	if err != nil {
		// The error of os.ReadFile names the file.
		return nil, &config.Error{Path: key, Msg: fmt.Sprintf("reading htpasswd: %v", err), Err: err}
	}
	users := map[string][]byte{}
	lineOf := map[string]int{}
	costs := map[int]int{}
	var errs []error
	for i, line := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		user, hash, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf("%s:%d: want user:hash", path, n)})
			continue
		}
		name := string(user)
		hash = bytes.TrimSpace(hash)
		switch {
		case name == "":
			errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf("%s:%d: empty user name", path, n)})
			continue
		case strings.ContainsFunc(name, unicode.IsSpace):
			errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf("%s:%d: a user name must not contain whitespace", path, n)})
			continue
		}
		if prev, dup := lineOf[name]; dup {
			errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf("%s:%d: user %q is already defined on line %d", path, n, name, prev)})
			continue
		}
		lineOf[name] = n
		if !bcryptHash.Match(hash) {
			errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf("%s:%d: user %q: %s", path, n, name, unsupportedHash(hash))})
			continue
		}
		cost, err := bcrypt.Cost(hash)
		if err != nil {
			errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf("%s:%d: user %q: bcrypt cost must be %d to %d", path, n, name, bcrypt.MinCost, bcrypt.MaxCost)})
			continue
		}
		users[name] = bytes.Clone(hash)
		costs[cost]++
	}
	if len(errs) == 0 && len(users) == 0 {
		errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf("%s holds no users; put one user:bcrypt-hash per line (htpasswd -B)", path)})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	dummy, err := dummyHash(commonCost(costs))
	if err != nil {
		return nil, fmt.Errorf("basic auth: %w", err)
	}
	realm := cfg.Realm
	if realm == "" {
		realm = "wsgate"
	}
	return &Basic{
		users:     users,
		dummy:     dummy,
		challenge: "Basic realm=" + quotedString(realm),
	}, nil
}

// Authorize checks the Authorization header value in req.Token. Any failure
// is a 401 with a WWW-Authenticate challenge; the answer for an unknown user
// costs one bcrypt comparison, like the answer for a wrong password.
// Authorize returns ctx's error, without comparing, when ctx is done.
func (b *Basic) Authorize(ctx context.Context, req *Request) (*Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	user, pass, ok := parseBasic(req.Token)
	if !ok {
		reason := "malformed basic credentials"
		if req.Token == "" {
			reason = "missing basic credentials"
		}
		return nil, b.deny(reason)
	}
	hash, known := b.users[user]
	if !known {
		hash = b.dummy
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(pass)); err != nil || !known {
		return nil, b.deny("wrong user name or password")
	}
	return &Identity{PrincipalID: user, Context: map[string]any{"username": user}}, nil
}

func (b *Basic) deny(reason string) *Denial {
	d := Unauthorized(reason)
	d.Header = make(http.Header, 1)
	d.Header.Set("WWW-Authenticate", b.challenge)
	return d
}

// parseBasic parses an Authorization header value of the Basic scheme
// (RFC 7617): the scheme name in any case, then base64 of user:password.
// The user name cannot hold a colon; the password can.
func parseBasic(v string) (user, pass string, ok bool) {
	const prefix = "Basic "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	if !ok || user == "" {
		return "", "", false
	}
	return user, pass, true
}

// unsupportedHash names the format of an htpasswd hash that is not bcrypt
// without repeating any of it.
func unsupportedHash(h []byte) string {
	const fix = "; only bcrypt is supported: regenerate with htpasswd -B"
	switch {
	case bytes.HasPrefix(h, []byte("$apr1$")):
		return "Apache MD5 ($apr1$) hash" + fix
	case bytes.HasPrefix(h, []byte("{SHA}")):
		return "SHA-1 ({SHA}) hash" + fix
	case bytes.HasPrefix(h, []byte("$1$")):
		return "MD5-crypt ($1$) hash" + fix
	case bytes.HasPrefix(h, []byte("$5$")), bytes.HasPrefix(h, []byte("$6$")):
		return "SHA-crypt hash" + fix
	case bytes.HasPrefix(h, []byte("$2")):
		return "malformed bcrypt hash" + fix
	case len(h) == 0:
		return "empty hash" + fix
	}
	return "not a bcrypt hash (crypt or plain text?)" + fix
}

// commonCost returns the cost used by the most hashes, the higher one on a
// tie.
func commonCost(costs map[int]int) int {
	best, n := bcrypt.DefaultCost, 0
	for c, k := range costs {
		if k > n || (k == n && c > best) {
			best, n = c, k
		}
	}
	return best
}

func dummyHash(cost int) ([]byte, error) {
	pass := make([]byte, 32)
	rand.Read(pass)
	return bcrypt.GenerateFromPassword(pass, cost)
}

// quotedString returns s as an RFC 9110 quoted-string, without the control
// characters a header value cannot hold.
func quotedString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r < 0x20 && r != '\t', r == 0x7f:
			continue
		case r == '"', r == '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
