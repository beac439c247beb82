package main_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMEValidatesExample runs the command the README gives for checking
// internal/config/example.yaml, with no environment variable at all (as on a
// fresh clone, where the example's secrets are not set): from the repository
// root as documented, and from another directory with the file's absolute
// path.
func TestREADMEValidatesExample(t *testing.T) {
	const example = "internal/config/example.yaml"
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go run \./cmd/wsgate (validate .*` + regexp.QuoteMeta(example) + `)$`).FindSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md gives no command line `go run ./cmd/wsgate validate … %s`", example)
	}
	args := strings.Fields(string(m[1]))
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(root, example)
	elsewhere := slices.Clone(args)
	elsewhere[slices.Index(elsewhere, example)] = abs
	for _, run := range []struct {
		dir, file string
		args      []string
	}{
		{root, example, args},
		{t.TempDir(), abs, elsewhere},
	} {
		cmd := exec.Command(bin, run.args...)
		cmd.Dir = run.dir
		cmd.Env = []string{}
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		if err != nil || !strings.HasPrefix(stdout.String(), run.file+": ok") {
			t.Errorf("wsgate %s in %s: want exit 0 and %q, got %v\nstdout:\n%s\nstderr:\n%s",
				strings.Join(run.args, " "), run.dir, run.file+": ok", err, stdout.String(), stderr.String())
		}
	}
}
