package accesslog

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func mustFormat(t *testing.T, s string) *Format {
	t.Helper()
	f, err := ParseFormat(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// eventually polls cond until it holds, failing the test after 10 seconds.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFileOutputAndReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := New(Config{Format: mustFormat(t, "$context.requestId $context.status"), Output: path})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Log(&Entry{RequestID: "one", Status: 200})
	eventually(t, func() bool { return readFile(t, path) == "one 200\n" }, "the first line")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("access log mode: %v %v", fi, err)
	}

	// logrotate moves the file; lines keep going to the moved file until
	// the reopen, then to a new file by the configured name.
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	l.Log(&Entry{RequestID: "two", Status: 403})
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Log(&Entry{RequestID: "three", Status: 200})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, rotated); got != "one 200\ntwo 403\n" {
		t.Errorf("rotated file holds %q", got)
	}
	if got := readFile(t, path); got != "three 200\n" {
		t.Errorf("new file holds %q", got)
	}
	// After Close, lines are discarded and Reopen fails without blocking.
	l.Log(&Entry{RequestID: "four"})
	if err := l.Reopen(); err == nil {
		t.Error("Reopen after Close succeeded")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestReopenFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "access.log")
	l, err := New(Config{Format: mustFormat(t, "$context.requestId"), Output: path})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Rename(sub, filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	err = l.Reopen()
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Reopen into a missing directory = %v, want an error naming %s", err, path)
	}
	l.Log(&Entry{RequestID: "kept"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "moved", "access.log")); got != "kept\n" {
		t.Errorf("old file holds %q", got)
	}
}

func TestNewFailsOnUnopenableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "access.log")
	_, err := New(Config{Format: mustFormat(t, "clf"), Output: path})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("New = %v, want an error naming %s", err, path)
	}
}

// blockingWriter holds every Write until release is closed.
type blockingWriter struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     strings.Builder
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *blockingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestFullBufferDropsAndCounts(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{}), entered: make(chan struct{})}
	var mu sync.Mutex
	counted := 0
	l, err := New(Config{
		Format:      mustFormat(t, "$context.requestId"),
		Stdout:      w,
		BufferBytes: 10,
		Dropped: func(n int) {
			mu.Lock()
			counted += n
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The writer takes the first line and blocks in Write; then 10 bytes
	// of lines fit in the buffer ("aaaa\n" twice) and the rest are dropped,
	// without Log waiting.
	l.Log(&Entry{RequestID: "zero"})
	<-w.entered
	for range 5 {
		l.Log(&Entry{RequestID: "aaaa"})
	}
	if got := l.Dropped(); got != 3 {
		t.Errorf("Dropped() = %d, want 3", got)
	}
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.String(); got != "zero\naaaa\naaaa\n" {
		t.Errorf("written %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if counted != 3 {
		t.Errorf("Dropped callback counted %d, want 3", counted)
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestWriteFailuresCountAsDropped(t *testing.T) {
	l, err := New(Config{Format: mustFormat(t, "$context.requestId"), Stdout: failingWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(&Entry{RequestID: "a"})
	l.Log(&Entry{RequestID: "b"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.Dropped(); got != 2 {
		t.Errorf("Dropped() = %d, want 2", got)
	}
}

func TestStdoutReopenIsNoop(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{}), entered: make(chan struct{})}
	close(w.release)
	l, err := New(Config{Format: mustFormat(t, "$context.eventType"), Output: Stdout, Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(&Entry{EventType: "CONNECT"})
	if err := l.Reopen(); err != nil {
		t.Errorf("Reopen: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.String(); got != "CONNECT\n" {
		t.Errorf("written %q", got)
	}
}

func TestNilLogger(t *testing.T) {
	var l *Logger
	l.Log(&Entry{})
	if l.Dropped() != 0 || l.Reopen() != nil || l.Close() != nil {
		t.Error("nil Logger is not inert")
	}
}

func TestConcurrentLogging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := New(Config{Format: mustFormat(t, "$context.requestId $context.connectionId"), Output: path})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				l.Log(&Entry{RequestID: "r", ConnectionID: strings.Repeat(string(rune('a'+g)), i%7+1)})
				if i == 100 && g == 0 {
					_ = l.Reopen()
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(readFile(t, path), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, ln := range lines {
		if !strings.HasPrefix(ln, "r ") || strings.Trim(ln[2:], ln[2:3]) != "" {
			t.Fatalf("torn line %q", ln)
		}
	}
}
