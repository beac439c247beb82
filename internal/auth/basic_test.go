package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsgate/wsgate/internal/config"
)

// basicVectorHash is the crypt_blowfish test vector for the password "U*U",
// written with htpasswd's $2y$ prefix.
const basicVectorHash = "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"

// basicHash returns a bcrypt hash of password at the minimum cost with the
// given version prefix ("2a", "2b" or "2y").
var basicHash = func() func(t testing.TB, password, version string) string {
	var mu sync.Mutex
	memo := map[string]string{}
	return func(t testing.TB, password, version string) string {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		h, ok := memo[password]
		if !ok {
			b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			h = string(b)
			memo[password] = h
		}
		return "$" + version + h[3:]
	}
}()

func basicReadFile(files map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		data, ok := files[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return []byte(data), nil
	}
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestNewBasic(t *testing.T) {
	good := basicHash(t, "s3cret", "2y")
	files := map[string]string{
		"/etc/good":    "# users\n\nalice:" + good + "\r\n  bob:" + basicHash(t, "pw", "2a") + "  \n",
		"/etc/empty":   "",
		"/etc/comment": "# nobody\n\n",
		"/etc/md5":     "alice:" + good + "\nbob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n",
		"/etc/sha":     "carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
		"/etc/crypt":   "dave:$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/\n",
		"/etc/plain":   "erin:hunter2\n",
		"/etc/nocolon": "alice:" + good + "\nfrank " + good + "\n",
		"/etc/nouser":  ":" + good + "\n",
		"/etc/spaced":  "g h:" + good + "\n",
		"/etc/dup":     "alice:" + good + "\n#\nalice:" + good + "\n",
		"/etc/cost":    "ivan:$2y$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW\n",
		"/etc/short":   "judy:$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyu\n",
		"/etc/nohash":  "kim:\n",
		"/etc/many":    "erin:hunter2\nfrank\n",
	}
	const key = "authorizer.basic.htpasswd_file: "
	const fix = "; only bcrypt is supported: regenerate with htpasswd -B"
	tests := []struct {
		name      string
		file      string
		wantUsers []string
		wantErr   string
	}{
		{"bcrypt users", "/etc/good", []string{"alice", "bob"}, ""},
		{"no file named", "", nil, key + "required for type basic"},
		{"missing", "/etc/missing", nil, key + "reading htpasswd: open /etc/missing: file does not exist"},
		{"empty", "/etc/empty", nil, key + "/etc/empty holds no users; put one user:bcrypt-hash per line (htpasswd -B)"},
		{"comments only", "/etc/comment", nil, key + "/etc/comment holds no users; put one user:bcrypt-hash per line (htpasswd -B)"},
		{"apr1", "/etc/md5", nil, key + `/etc/md5:2: user "bob": Apache MD5 ($apr1$) hash` + fix},
		{"sha1", "/etc/sha", nil, key + `/etc/sha:1: user "carol": SHA-1 ({SHA}) hash` + fix},
		{"sha-crypt", "/etc/crypt", nil, key + `/etc/crypt:1: user "dave": SHA-crypt hash` + fix},
		{"plain text", "/etc/plain", nil, key + `/etc/plain:1: user "erin": not a bcrypt hash (crypt or plain text?)` + fix},
		{"no colon", "/etc/nocolon", nil, key + "/etc/nocolon:2: want user:hash"},
		{"empty user", "/etc/nouser", nil, key + "/etc/nouser:1: empty user name"},
		{"space in user", "/etc/spaced", nil, key + "/etc/spaced:1: a user name must not contain whitespace"},
		{"duplicate user", "/etc/dup", nil, key + `/etc/dup:3: user "alice" is already defined on line 1`},
		{"cost below minimum", "/etc/cost", nil, key + `/etc/cost:1: user "ivan": bcrypt cost must be 4 to 31`},
		{"truncated bcrypt", "/etc/short", nil, key + `/etc/short:1: user "judy": malformed bcrypt hash` + fix},
		{"empty hash", "/etc/nohash", nil, key + `/etc/nohash:1: user "kim": empty hash` + fix},
		{"every problem", "/etc/many", nil,
			key + `/etc/many:1: user "erin": not a bcrypt hash (crypt or plain text?)` + fix + "\n" +
				key + "/etc/many:2: want user:hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBasic(config.BasicAuth{HtpasswdFile: tt.file}, basicReadFile(files))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("NewBasic() error = %v; want %q", err, tt.wantErr)
				}
				if b != nil {
					t.Errorf("NewBasic() = %v with an error; want nil", b)
				}
				for _, secret := range []string{"HqJZim", "W6ph5", "qFmFH", "hunter2", "E5YPO9", good[7:]} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("NewBasic() error %q contains a hash", err)
					}
				}
				var ce *config.Error
				if !errors.As(err, &ce) || ce.Path != "authorizer.basic.htpasswd_file" {
					t.Errorf("NewBasic() error %#v is not a *config.Error for the htpasswd_file key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewBasic() error = %v", err)
			}
			if len(b.users) != len(tt.wantUsers) {
				t.Errorf("NewBasic() loaded %d users; want %d", len(b.users), len(tt.wantUsers))
			}
			for _, u := range tt.wantUsers {
				if _, ok := b.users[u]; !ok {
					t.Errorf("NewBasic() did not load user %q", u)
				}
			}
		})
	}
}

func TestBasicAuthorize(t *testing.T) {
	files := map[string]string{
		"/etc/htpasswd": strings.Join([]string{
			"alice:" + basicHash(t, "s3cret", "2y"),
			"bob:" + basicHash(t, "pa:ss wörd", "2a"),
			"carol:" + basicHash(t, "", "2b"),
			"vector:" + basicVectorHash,
		}, "\n"),
	}
	b, err := NewBasic(config.BasicAuth{HtpasswdFile: "/etc/htpasswd", Realm: `ops "east"`}, basicReadFile(files))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		token    string
		wantUser string
		wantWhy  string
	}{
		{"2y hash", basicHeader("alice", "s3cret"), "alice", ""},
		{"2a hash, colon and space in password", basicHeader("bob", "pa:ss wörd"), "bob", ""},
		{"2b hash, empty password", basicHeader("carol", ""), "carol", ""},
		{"crypt_blowfish vector", basicHeader("vector", "U*U"), "vector", ""},
		{"scheme in lower case", "basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret")), "alice", ""},
		{"scheme in upper case, padded", "BASIC  " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) + " ", "alice", ""},
		{"wrong password", basicHeader("alice", "s3cret!"), "", "wrong user name or password"},
		{"password of another user", basicHeader("alice", "U*U"), "", "wrong user name or password"},
		{"unknown user", basicHeader("mallory", "s3cret"), "", "wrong user name or password"},
		{"user name case differs", basicHeader("Alice", "s3cret"), "", "wrong user name or password"},
		{"missing", "", "", "missing basic credentials"},
		{"bearer scheme", "Bearer abc", "", "malformed basic credentials"},
		{"scheme only", "Basic", "", "malformed basic credentials"},
		{"not base64", "Basic !!!", "", "malformed basic credentials"},
		{"url-safe base64", "Basic " + base64.URLEncoding.EncodeToString([]byte("alice:~~~")), "", "malformed basic credentials"},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), "", "malformed basic credentials"},
		{"empty user", basicHeader("", "s3cret"), "", "malformed basic credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := b.Authorize(context.Background(), &Request{Token: tt.token})
			if tt.wantWhy != "" {
				var d *Denial
				if !errors.As(err, &d) {
					t.Fatalf("Authorize() = %v, %v; want a denial", id, err)
				}
				if d.Status != http.StatusUnauthorized || d.Message != "Unauthorized" || d.Reason != tt.wantWhy {
					t.Errorf("Authorize() denial = %d %q %q; want 401 Unauthorized %q", d.Status, d.Message, d.Reason, tt.wantWhy)
				}
				if got, want := d.Header.Get("WWW-Authenticate"), `Basic realm="ops \"east\""`; got != want {
					t.Errorf("WWW-Authenticate = %q; want %q", got, want)
				}
				if id != nil {
					t.Errorf("Authorize() identity = %+v with a denial", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authorize() error = %v", err)
			}
			if id.PrincipalID != tt.wantUser || len(id.Context) != 1 || id.Context["username"] != tt.wantUser {
				t.Errorf("Authorize() = %+v; want principal and context username %q", id, tt.wantUser)
			}
		})
	}
}

func TestBasicDefaultRealm(t *testing.T) {
	files := map[string]string{"/h": "alice:" + basicHash(t, "s3cret", "2y")}
	b, err := NewBasic(config.BasicAuth{HtpasswdFile: "/h"}, basicReadFile(files))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Authorize(context.Background(), &Request{})
	if got, want := AsDenial(err).Header.Get("WWW-Authenticate"), `Basic realm="wsgate"`; got != want {
		t.Errorf("WWW-Authenticate = %q; want %q", got, want)
	}
}

func TestBasicQuotedString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"wsgate", `"wsgate"`},
		{"", `""`},
		{`a "b" c`, `"a \"b\" c"`},
		{`back\slash`, `"back\\slash"`},
		{"tab\there", "\"tab\there\""},
		{"no\r\nSet-Cookie: x=1\x00\x7f", `"noSet-Cookie: x=1"`},
		{"zoë", `"zoë"`},
	}
	for _, tt := range tests {
		if got := quotedString(tt.in); got != tt.want {
			t.Errorf("quotedString(%q) = %s; want %s", tt.in, got, tt.want)
		}
	}
}

func TestBasicCanceled(t *testing.T) {
	files := map[string]string{"/h": "alice:" + basicHash(t, "s3cret", "2y")}
	b, err := NewBasic(config.BasicAuth{HtpasswdFile: "/h"}, basicReadFile(files))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id, err := b.Authorize(ctx, &Request{Token: basicHeader("alice", "s3cret")})
	if !errors.Is(err, context.Canceled) || id != nil {
		t.Errorf("Authorize(canceled) = %v, %v; want context.Canceled", id, err)
	}
}

// TestBasicUnknownUserCost checks that an unknown user is answered no faster
// than a wrong password: both run one bcrypt comparison at the file's cost.
func TestBasicUnknownUserCost(t *testing.T) {
	const cost = 8
	h, err := bcrypt.GenerateFromPassword([]byte("s3cret"), cost)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"/h": "alice:" + string(h)}
	b, err := NewBasic(config.BasicAuth{HtpasswdFile: "/h"}, basicReadFile(files))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := bcrypt.Cost(b.dummy); err != nil || got != cost {
		t.Fatalf("dummy hash cost = %d, %v; want %d", got, err, cost)
	}
	fastest := func(token string) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 3 {
			start := time.Now()
			if _, err := b.Authorize(context.Background(), &Request{Token: token}); err == nil {
				t.Fatal("Authorize() allowed a wrong credential")
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	known := fastest(basicHeader("alice", "wrong"))
	unknown := fastest(basicHeader("mallory", "wrong"))
	if unknown < known/4 {
		t.Errorf("unknown user answered in %v, wrong password in %v; want comparable times", unknown, known)
	}
}

func TestBasicCommonCost(t *testing.T) {
	tests := []struct {
		costs map[int]int
		want  int
	}{
		{map[int]int{}, bcrypt.DefaultCost},
		{map[int]int{5: 1}, 5},
		{map[int]int{5: 3, 12: 1}, 5},
		{map[int]int{5: 2, 12: 2}, 12},
		{map[int]int{4: 1, 5: 1, 6: 2}, 6},
	}
	for _, tt := range tests {
		if got := commonCost(tt.costs); got != tt.want {
			t.Errorf("commonCost(%v) = %d; want %d", tt.costs, got, tt.want)
		}
	}
}

func TestParseBasic(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString
	tests := []struct {
		in         string
		user, pass string
		ok         bool
	}{
		{"Basic " + enc([]byte("u:p")), "u", "p", true},
		{"bAsIc " + enc([]byte("u:p")), "u", "p", true},
		{"Basic " + enc([]byte("u:")), "u", "", true},
		{"Basic " + enc([]byte("u:a:b")), "u", "a:b", true},
		{"Basic " + enc([]byte("ü:ß")), "ü", "ß", true},
		{"Basic " + enc([]byte(":p")), "", "", false},
		{"Basic " + enc([]byte("up")), "", "", false},
		{"Basic " + enc([]byte("u:p"))[:3], "", "", false},
		{"Basic", "", "", false},
		{"Basic ", "", "", false},
		{"Basic\t" + enc([]byte("u:p")), "", "", false},
		{"Basicx" + enc([]byte("u:p")), "", "", false},
		{"Digest " + enc([]byte("u:p")), "", "", false},
		{enc([]byte("u:p")), "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		user, pass, ok := parseBasic(tt.in)
		if user != tt.user || pass != tt.pass || ok != tt.ok {
			t.Errorf("parseBasic(%q) = %q, %q, %v; want %q, %q, %v", tt.in, user, pass, ok, tt.user, tt.pass, tt.ok)
		}
	}
}

// FuzzParseBasic checks that parseBasic never panics and that what it
// accepts survives a round trip.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{"", "Basic", "Basic ", "basic dTpw", "Basic dTpw", "Basic Og==", "Basic ====", "Basic dTpwOnE=", "BASIC  dTpw  ", "Basic \xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		user, pass, ok := parseBasic(in)
		if !ok {
			if user != "" || pass != "" {
				t.Fatalf("parseBasic(%q) = %q, %q on failure", in, user, pass)
			}
			return
		}
		if user == "" || strings.Contains(user, ":") {
			t.Fatalf("parseBasic(%q) user = %q", in, user)
		}
		u2, p2, ok2 := parseBasic(basicHeader(user, pass))
		if !ok2 || u2 != user || p2 != pass {
			t.Fatalf("round trip of %q, %q gave %q, %q, %v", user, pass, u2, p2, ok2)
		}
	})
}
