package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	env := map[string]string{
		"ONE":    "tok-env-1",
		"MANY":   " tok-env-1, tok-env-2\ttok-env-3\n,,tok-env-2 ",
		"BLANK":  " ,\t\n ",
		"EMPTY":  "",
		"SHARED": "tok-file-1",
	}
	files := map[string]string{
		"/etc/tokens":  "# management tokens\n\ntok-file-1\n  tok-file-2  \r\n# tok-commented\n",
		"/etc/empty":   "",
		"/etc/comment": "# nothing here\n\n",
		"/etc/spaced":  "tok-file-1\ntok-file secret-part\n",
	}
	getenv := func(name string) string { return env[name] }
	readFile := func(name string) ([]byte, error) {
		data, ok := files[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return []byte(data), nil
	}

	tests := []struct {
		name    string
		auth    ManagementAuth
		want    []string
		wantErr string
	}{
		{"none", ManagementAuth{}, nil, ""},
		{"env with one token", ManagementAuth{BearerTokensEnv: "ONE"}, []string{"tok-env-1"}, ""},
		{"env with commas and whitespace", ManagementAuth{BearerTokensEnv: "MANY"}, []string{"tok-env-1", "tok-env-2", "tok-env-3"}, ""},
		{"file", ManagementAuth{BearerTokensFile: "/etc/tokens"}, []string{"tok-file-1", "tok-file-2"}, ""},
		{"env and file", ManagementAuth{BearerTokensEnv: "MANY", BearerTokensFile: "/etc/tokens"},
			[]string{"tok-env-1", "tok-env-2", "tok-env-3", "tok-file-1", "tok-file-2"}, ""},
		{"env and file sharing a token", ManagementAuth{BearerTokensEnv: "SHARED", BearerTokensFile: "/etc/tokens"},
			[]string{"tok-file-1", "tok-file-2"}, ""},
		{"env unset", ManagementAuth{BearerTokensEnv: "WSGATE_MGMT_TOKEN"}, nil,
			"management.auth.bearer_tokens_env: environment variable WSGATE_MGMT_TOKEN is unset or empty"},
		{"env empty", ManagementAuth{BearerTokensEnv: "EMPTY"}, nil,
			"management.auth.bearer_tokens_env: environment variable EMPTY is unset or empty"},
		{"env of separators only", ManagementAuth{BearerTokensEnv: "BLANK"}, nil,
			"management.auth.bearer_tokens_env: environment variable BLANK is unset or empty"},
		{"file missing", ManagementAuth{BearerTokensFile: "/etc/missing"}, nil,
			"management.auth.bearer_tokens_file: reading tokens: open /etc/missing: file does not exist"},
		{"file empty", ManagementAuth{BearerTokensFile: "/etc/empty"}, nil,
			"management.auth.bearer_tokens_file: /etc/empty holds no tokens; put one token per line"},
		{"file of comments", ManagementAuth{BearerTokensFile: "/etc/comment"}, nil,
			"management.auth.bearer_tokens_file: /etc/comment holds no tokens; put one token per line"},
		{"file with a space in a token", ManagementAuth{BearerTokensFile: "/etc/spaced"}, nil,
			"management.auth.bearer_tokens_file: /etc/spaced:2: a token must not contain whitespace; put one token per line"},
		{"env good, file missing", ManagementAuth{BearerTokensEnv: "ONE", BearerTokensFile: "/etc/missing"}, nil,
			"management.auth.bearer_tokens_file: reading tokens: open /etc/missing: file does not exist"},
		{"both failing", ManagementAuth{BearerTokensEnv: "EMPTY", BearerTokensFile: "/etc/empty"}, nil,
			"management.auth.bearer_tokens_env: environment variable EMPTY is unset or empty\n" +
				"management.auth.bearer_tokens_file: /etc/empty holds no tokens; put one token per line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.auth.Tokens(getenv, readFile)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Tokens() error = %v; want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "tok-") || strings.Contains(err.Error(), "secret") {
					t.Errorf("Tokens() error %q contains a token", err)
				}
				if got != nil {
					t.Errorf("Tokens() = %q with an error; want nil", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Tokens() error: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tokens() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestTokensFromOS(t *testing.T) {
	t.Setenv("WSGATE_CONFIG_TEST_TOKEN", "tok-os-1,tok-os-2")
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("tok-os-3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := ManagementAuth{BearerTokensEnv: "WSGATE_CONFIG_TEST_TOKEN", BearerTokensFile: path}
	got, err := auth.Tokens(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tok-os-1", "tok-os-2", "tok-os-3"}; !slices.Equal(got, want) {
		t.Errorf("Tokens(nil, nil) = %q; want %q from os.Getenv and os.ReadFile", got, want)
	}
}
