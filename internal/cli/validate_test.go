package cli_test

import (
	"strings"
	"testing"
)

// TestValidateExtraArguments: validate checks one configuration. A second
// file, or a file given both with -c and as an argument, is a usage error
// rather than silently left unchecked (the run said "ok" about the first
// and never read the other).
func TestValidateExtraArguments(t *testing.T) {
	good := writeFile(t, "good.yaml", "stage: prod\n")
	bad := writeFile(t, "bad.yaml", "stage: prod\ncolour: blue\n")
	for _, args := range [][]string{
		{"validate", good, bad},
		{"validate", "-c", bad, good},
	} {
		r := run(t, nil, args...)
		if r.code != 2 || r.stderr == "" {
			t.Errorf("%q: want a usage error (exit 2), got %v", args, r)
		}
	}
	// One file, either way, is still fine.
	for _, args := range [][]string{{"validate", good}, {"validate", "-c", good}} {
		if r := run(t, nil, args...); r.code != 0 {
			t.Errorf("%q: got %v", args, r)
		}
	}
}

// TestValidateDoesNotEchoSecretInEnvKey: a JWT secret pasted into
// authorizer.jwt.secret_env instead of the name of the variable holding it
// is reported without being printed.
func TestValidateDoesNotEchoSecretInEnvKey(t *testing.T) {
	const secret = "my-jwt-s3cret!"
	path := writeFile(t, "jwt.yaml", "authorizer:\n  type: jwt\n  jwt: {secret_env: \""+secret+"\", algorithms: [HS256]}\n")
	r := run(t, nil, "validate", "-c", path)
	if strings.Contains(r.stdout+r.stderr, secret) {
		t.Errorf("validate printed the secret:\n%v", r)
	}
	if r.code != 1 || !strings.Contains(r.stdout, ":3: authorizer.jwt.secret_env: ") {
		t.Errorf("want a problem at line 3, authorizer.jwt.secret_env; got %v", r)
	}
}
