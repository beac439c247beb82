package cli

import (
	"os/exec"
	"testing"
)

// TestWorkerExitCounts: only a worker that exits with a failure status
// counts as unable to start. One that exits 0 was stopped by a signal it
// handles (SIGTERM, SIGINT), possibly the same one on its way to the
// supervisor, as when Ctrl-C signals the whole process group; one killed
// by a signal crashed.
func TestWorkerExitCounts(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   bool
	}{
		{"exit 0", false},
		{"exit 1", true},
		{"exit 2", true},
		{"kill -KILL $$", false},
		{"kill -HUP $$", false},
	} {
		err := exec.Command("/bin/sh", "-c", tc.script).Run()
		if got := exitedWithError(err); got != tc.want {
			t.Errorf("%q (%v): exitedWithError = %v, want %v", tc.script, err, got, tc.want)
		}
	}
}
