package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestIsMissing(t *testing.T) {
	_, notExist := os.ReadFile(filepath.Join(t.TempDir(), "missing"))
	_, notFound := exec.LookPath("wsgate-test-no-such-program")
	_, notExecutable := exec.LookPath(filepath.Join(t.TempDir(), "missing"))
	problem := errors.New("holds no tokens")
	c := &Config{}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"ErrMissing", ErrMissing, true},
		{"*Error caused by ErrMissing", &Error{Path: "a", Msg: "unset", Err: ErrMissing}, true},
		{"file that does not exist", notExist, true},
		{"program not on PATH", notFound, true},
		{"program path that does not exist", notExecutable, true},
		{"wrapped by Errorf", c.Errorf("a", "reading: %w", notExist), true},
		{"located", c.Locate(&Error{Path: "a", Err: fmt.Errorf("x: %w", ErrMissing)}), true},
		{"joined, all missing", errors.Join(ErrMissing, notExist), true},
		{"joined under a wrapper, all missing", c.Errorf("a", "%w", errors.Join(ErrMissing, notExist)), true},
		{"other error", problem, false},
		{"*Error without cause", &Error{Path: "a", Msg: "unset"}, false},
		{"message only", c.Errorf("a", "%v", notExist), false},
		{"permission denied", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}, false},
		{"joined with a problem", errors.Join(ErrMissing, problem), false},
		{"joined with a problem under a wrapper", c.Errorf("a", "%w", errors.Join(notExist, problem)), false},
		{"empty join", errors.Join(), false},
	}
	for _, tt := range tests {
		if got := IsMissing(tt.err); got != tt.want {
			t.Errorf("%s: IsMissing(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
