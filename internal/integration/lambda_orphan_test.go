package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// orphanRuntime starts a runtime whose program forks a long-running child
// that keeps the program's stdout and stderr, writes the child's pid to a
// file, and then exits, as a function that starts a helper in the
// background and crashes does. It returns the runtime and the child's pid.
func orphanRuntime(t *testing.T) (*LocalRuntime, int) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	pidFile := filepath.Join(t.TempDir(), "child")
	// The first process forks the sleeper and exits; its restarts exit at
	// once without forking another.
	script := `[ -s "$1" ] && exit 1; sleep 60 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; exit 1`
	rt, err := NewLocalRuntime(RuntimeConfig{Command: sh, Args: []string{"-c", script, "sh", pidFile}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the program did not fork its child")
		}
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return rt, pid
}

// A program that exits while a child it forked still holds its output
// fails the invocation it was handling at once and is restarted: the
// runtime does not wait for the child to close the output pipes.
func TestLocalRuntimeExitWithOrphanChild(t *testing.T) {
	rt, _ := orphanRuntime(t)
	defer func() {
		done := make(chan struct{})
		go func() { _ = rt.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Close did not return")
		}
	}()
	// The program exited; the runtime must have noticed and restarted it.
	w := rt.workers[0]
	// The child sleeps for 60s: a runtime that waits for it to close the
	// pipes restarts the program only then.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		w.mu.Lock()
		gen := w.gen
		w.mu.Unlock()
		if gen > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the exited program was not restarted while its child held the output pipe")
		}
	}
}

// Close returns promptly and leaves no process behind, even when the
// program forked a child that holds its output and outlives it.
func TestLocalRuntimeCloseKillsOrphanChild(t *testing.T) {
	rt, pid := orphanRuntime(t)
	done := make(chan struct{})
	go func() { _ = rt.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL) // lets Close return
		<-done
		t.Fatal("Close did not return within 10s: it waits for the program's orphaned child")
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if !alive(pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the program's child %d still runs after Close", pid)
		}
	}
	if _, err := rt.Invoke(context.Background(), []byte("{}")); !errors.Is(err, ErrRuntimeClosed) {
		t.Fatalf("Invoke after Close: %v", err)
	}
}

// alive reports whether process pid runs: it exists and is not a zombie
// waiting for whichever process it was handed to (where PID 1 does not
// reap, one stays a zombie).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name, which is in parentheses.
	rest := stat[strings.LastIndexByte(string(stat), ')')+1:]
	return !strings.HasPrefix(strings.TrimSpace(string(rest)), "Z")
}
