package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

func apiKeyID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "apikey:" + hex.EncodeToString(sum[:])[:8]
}

func TestNewAPIKey(t *testing.T) {
	env := map[string]string{
		"ONE":    "key-env-1",
		"MANY":   " key-env-1, key-env-2\tkey-env-3\n,,key-env-2 ",
		"BLANK":  " ,\t\n ",
		"EMPTY":  "",
		"SHARED": "key-file-1",
	}
	files := map[string]string{
		"/etc/keys":    "# api keys\n\nkey-file-1\n  key-file-2  \r\n# key-commented\n",
		"/etc/empty":   "",
		"/etc/comment": "# nothing here\n\n",
		"/etc/spaced":  "key-file-1\nkey-file secret-part\n",
	}
	getenv := func(name string) string { return env[name] }
	const (
		envKey  = "authorizer.apikey.keys_env: "
		fileKey = "authorizer.apikey.keys_file: "
	)
	tests := []struct {
		name    string
		cfg     config.APIKeyAuth
		want    []string
		wantErr string
	}{
		{"env with one key", config.APIKeyAuth{KeysEnv: "ONE"}, []string{"key-env-1"}, ""},
		{"env with commas and whitespace", config.APIKeyAuth{KeysEnv: "MANY"}, []string{"key-env-1", "key-env-2", "key-env-3"}, ""},
		{"file", config.APIKeyAuth{KeysFile: "/etc/keys"}, []string{"key-file-1", "key-file-2"}, ""},
		{"env and file", config.APIKeyAuth{KeysEnv: "MANY", KeysFile: "/etc/keys"},
			[]string{"key-env-1", "key-env-2", "key-env-3", "key-file-1", "key-file-2"}, ""},
		{"env and file sharing a key", config.APIKeyAuth{KeysEnv: "SHARED", KeysFile: "/etc/keys"},
			[]string{"key-file-1", "key-file-2"}, ""},
		{"neither", config.APIKeyAuth{}, nil, "authorizer.apikey: set keys_env or keys_file"},
		{"env unset", config.APIKeyAuth{KeysEnv: "WSGATE_API_KEYS"}, nil, envKey + "environment variable WSGATE_API_KEYS is unset or empty"},
		{"env empty", config.APIKeyAuth{KeysEnv: "EMPTY"}, nil, envKey + "environment variable EMPTY is unset or empty"},
		{"env of separators only", config.APIKeyAuth{KeysEnv: "BLANK"}, nil, envKey + "environment variable BLANK is unset or empty"},
		{"file missing", config.APIKeyAuth{KeysFile: "/etc/missing"}, nil, fileKey + "reading api keys: open /etc/missing: file does not exist"},
		{"file empty", config.APIKeyAuth{KeysFile: "/etc/empty"}, nil, fileKey + "/etc/empty holds no api keys; put one key per line"},
		{"file of comments", config.APIKeyAuth{KeysFile: "/etc/comment"}, nil, fileKey + "/etc/comment holds no api keys; put one key per line"},
		{"file with a space in a key", config.APIKeyAuth{KeysFile: "/etc/spaced"}, nil,
			fileKey + "/etc/spaced:2: an api key must not contain whitespace; put one key per line"},
		{"env good, file missing", config.APIKeyAuth{KeysEnv: "ONE", KeysFile: "/etc/missing"}, nil,
			fileKey + "reading api keys: open /etc/missing: file does not exist"},
		{"both failing", config.APIKeyAuth{KeysEnv: "EMPTY", KeysFile: "/etc/empty"}, nil,
			envKey + "environment variable EMPTY is unset or empty\n" + fileKey + "/etc/empty holds no api keys; put one key per line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAPIKey(tt.cfg, getenv, basicReadFile(files))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("NewAPIKey() error = %v; want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "key-") || strings.Contains(err.Error(), "secret") {
					t.Errorf("NewAPIKey() error %q contains a key", err)
				}
				if a != nil {
					t.Errorf("NewAPIKey() = %v with an error; want nil", a)
				}
				var ce *config.Error
				if !errors.As(err, &ce) || !strings.HasPrefix(ce.Path, "authorizer.apikey") {
					t.Errorf("NewAPIKey() error %#v is not a *config.Error for an apikey key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewAPIKey() error = %v", err)
			}
			var want []string
			for _, k := range tt.want {
				want = append(want, apiKeyID(k))
			}
			if fmt.Sprint(a.ids) != fmt.Sprint(want) {
				t.Errorf("NewAPIKey() key ids = %q; want %q", a.ids, want)
			}
			for _, k := range tt.want {
				if _, err := a.Authorize(context.Background(), &Request{Token: k}); err != nil {
					t.Errorf("Authorize(%q) error = %v", k, err)
				}
			}
		})
	}
}

func TestAPIKeyAuthorize(t *testing.T) {
	env := map[string]string{"KEYS": "alpha-0123456789, bravo-0123456789 charlie"}
	a, err := NewAPIKey(config.APIKeyAuth{KeysEnv: "KEYS"}, func(n string) string { return env[n] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		token   string
		wantID  string
		wantWhy string
	}{
		{"first key", "alpha-0123456789", apiKeyID("alpha-0123456789"), ""},
		{"second key", "bravo-0123456789", apiKeyID("bravo-0123456789"), ""},
		{"last key", "charlie", apiKeyID("charlie"), ""},
		{"missing", "", "", "missing api key"},
		{"unknown", "delta-0123456789", "", "invalid api key"},
		{"prefix of a key", "alpha-012345678", "", "invalid api key"},
		{"key with a suffix", "alpha-0123456789x", "", "invalid api key"},
		{"case differs", "ALPHA-0123456789", "", "invalid api key"},
		{"two keys", "alpha-0123456789,bravo-0123456789", "", "invalid api key"},
		{"key id", apiKeyID("charlie"), "", "invalid api key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := a.Authorize(context.Background(), &Request{Token: tt.token, SourceValues: []string{tt.token}})
			if tt.wantWhy != "" {
				var d *Denial
				if !errors.As(err, &d) || d.Status != http.StatusForbidden || d.Message != "Forbidden" || d.Reason != tt.wantWhy {
					t.Fatalf("Authorize() = %v, %v; want 403 Forbidden %q", id, err, tt.wantWhy)
				}
				if id != nil {
					t.Errorf("Authorize() identity = %+v with a denial", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authorize() error = %v", err)
			}
			if id.PrincipalID != tt.wantID || len(id.Context) != 1 || id.Context["apiKeyId"] != tt.wantID {
				t.Errorf("Authorize() = %+v; want principal and apiKeyId %q", id, tt.wantID)
			}
			if strings.Contains(fmt.Sprint(id), tt.token) {
				t.Errorf("Authorize() identity %+v holds the key", id)
			}
		})
	}
}

func BenchmarkAPIKeyAuthorize(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("key-%04d-0123456789abcdef", i)
		}
		env := strings.Join(keys, ",")
		a, err := NewAPIKey(config.APIKeyAuth{KeysEnv: "K"}, func(string) string { return env }, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		for _, c := range []struct{ name, token string }{{"hit", keys[n-1]}, {"miss", "not-a-key-0123456789abcdef"}} {
			req := &Request{Token: c.token}
			b.Run(fmt.Sprintf("keys=%d/%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_, _ = a.Authorize(ctx, req)
				}
			})
		}
	}
}
