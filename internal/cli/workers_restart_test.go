package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// fakeWorkerEnv makes this test binary, started by superviseWorkers as
// `serve -c FILE -reuse-port`, act as a worker: it refuses to start (exit
// 1) when FILE says "bad", as serve does with a configuration it cannot
// load, and otherwise serves until SIGTERM (exit 0).
const fakeWorkerEnv = "WSGATE_TEST_FAKE_WORKER"

func init() {
	if os.Getenv(fakeWorkerEnv) == "" || os.Getenv(workerEnv) == "" {
		return
	}
	data, err := os.ReadFile(os.Args[3])
	if err != nil || bytes.HasPrefix(data, []byte("bad")) {
		os.Exit(1)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	<-term
	os.Exit(0)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestWorkerCrashWithBadConfigKeepsTheOthers: a worker that crashes while
// the others serve is restarted, and reads the file as it then is
// (docs/reload.md). When that file no longer loads (an edit the running
// workers refused at SIGHUP), the restarted worker cannot start; that must
// not stop the workers still serving clients: one crash is not a reason
// for a complete outage.
func TestWorkerCrashWithBadConfigKeepsTheOthers(t *testing.T) {
	t.Setenv(fakeWorkerEnv, "1")
	path := t.TempDir() + "/wsgate.yaml"
	if err := os.WriteFile(path, []byte("ok"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- superviseWorkers(ctx, 2, path, &config.Config{ShutdownTimeout: time.Second}, logger,
			make(chan os.Signal), make(chan os.Signal), io.Discard, io.Discard)
	}()

	pidRE := regexp.MustCompile(`msg="worker started" worker=(\d) pid=(\d+)`)
	pids := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for len(pids) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("workers did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
		for _, m := range pidRE.FindAllStringSubmatch(logs.String(), -1) {
			pids[m[1]], _ = strconv.Atoi(m[2])
		}
	}
	// Both run past the startup grace: the gateway is serving.
	time.Sleep(startupGrace + 500*time.Millisecond)

	if err := os.WriteFile(path, []byte("bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Worker 0 crashes.
	if err := syscall.Kill(pids["0"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("one worker's crash stopped the whole gateway: superviseWorkers returned %v\n%s", err, logs.String())
	case <-time.After(restartDelay + startupGrace):
	}
	if err := syscall.Kill(pids["1"], 0); err != nil {
		t.Fatalf("worker 1, which did not crash, is gone: %v\n%s", err, logs.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("superviseWorkers: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("superviseWorkers did not stop")
	}
}
