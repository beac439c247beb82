package integration

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// functionModule writes a module in a temporary directory that builds from
// the module cache alone (GOFLAGS=-mod=mod, GOPROXY=off): its go.mod
// requires aws-lambda-go at wsgate's version, with wsgate's go.sum lines
// for it. write replaces its main.go.
func functionModule(t *testing.T) (dir string, write func(src string)) {
	t.Helper()
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOPROXY", "off")
	dir = t.TempDir()
	var require, sum strings.Builder
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(gomod)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/aws/aws-lambda-go" {
			require.WriteString("require github.com/aws/aws-lambda-go " + f[1] + "\n")
		}
	}
	gosum, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(gosum)) {
		if strings.HasPrefix(line, "github.com/aws/aws-lambda-go ") {
			sum.WriteString(line)
		}
	}
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.test/fn\n\ngo 1.26\n\n"+require.String())
	writeFile(t, filepath.Join(dir, "go.sum"), sum.String())
	return dir, func(src string) { writeFile(t, filepath.Join(dir, "main.go"), src) }
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// holdingSource is a function answering prefix+body; a body naming a
// directory writes "started" there and waits for "release" to appear.
func holdingSource(prefix string) string {
	return `package main

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

func handler(body string) (string, error) {
	if dir, ok := strings.CutPrefix(body, "hold:"); ok {
		os.WriteFile(filepath.Join(dir, "started"), nil, 0o600)
		for {
			if _, err := os.Stat(filepath.Join(dir, "release")); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return "` + prefix + `" + body, nil
}

func main() { lambda.Start(handler) }
`
}

func invokeString(t *testing.T, f *LocalFunction, body string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := f.Invoke(ctx, []byte(`"`+body+`"`))
	return strings.Trim(string(out), `"`), err
}

// TestLocalFunctionSwapWaitsForInflight rebuilds a function while an
// invocation runs on the old program: the next invocations use the new
// program, and the running one still completes on the old.
func TestLocalFunctionSwapWaitsForInflight(t *testing.T) {
	dir, write := functionModule(t)
	write(holdingSource("old: "))
	b, err := NewGoBuild(dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	f, err := NewLocalFunction(LocalFunctionConfig{
		Runtime:      RuntimeConfig{Concurrency: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		Build:        b,
		PollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Start(nil); err != nil {
		t.Fatal(err)
	}
	hold := t.TempDir()
	held := make(chan string, 1)
	go func() {
		out, err := invokeString(t, f, "hold:"+hold)
		if err != nil {
			out = err.Error()
		}
		held <- out
	}()
	eventually(t, func() bool { _, err := os.Stat(filepath.Join(hold, "started")); return err == nil }, "the held invocation did not start")

	write(holdingSource("new: "))
	eventually(t, func() bool { return strings.Contains(logs.String(), "function rebuilt") }, "no rebuild")
	if out, err := invokeString(t, f, "x"); out != "new: x" || err != nil {
		t.Fatalf("after the rebuild: %q, %v", out, err)
	}
	writeFile(t, filepath.Join(hold, "release"), "")
	if out := <-held; out != "old: hold:"+hold {
		t.Fatalf("the invocation in flight during the swap got %q, want the old program's answer", out)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := invokeString(t, f, "y"); !errors.Is(err, ErrRuntimeClosed) {
		t.Fatalf("Invoke after Close: %v, want ErrRuntimeClosed", err)
	}
}

func TestNewGoBuildChecks(t *testing.T) {
	if _, err := NewGoBuild(filepath.Join(t.TempDir(), "gone"), ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v, want fs.ErrNotExist", err)
	}
	file := filepath.Join(t.TempDir(), "main.go")
	writeFile(t, file, "package main\n")
	if _, err := NewGoBuild(file, ""); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file: %v, want not a directory", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := NewGoBuild(t.TempDir(), ""); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("no go command: %v, want exec.ErrNotFound", err)
	}
}

func TestBuildErrorLog(t *testing.T) {
	var logs syncBuffer
	be := &BuildError{Dir: "/src/fn", Lines: []string{
		"# example.test/fn",
		"./main.go:7:2: undefined: nope",
		"lib/x.go:3: syntax error",
		"note: module requires Go 1.99",
	}}
	be.Log(slog.New(slog.NewTextHandler(&logs, nil)), "/src/fn")
	for _, want := range []string{
		`level=ERROR msg="function build error" file=/src/fn/main.go line=7 column=2 error="undefined: nope"`,
		`level=ERROR msg="function build error" file=/src/fn/lib/x.go line=3 error="syntax error"`,
		`level=ERROR msg="function build error" dir=/src/fn output="note: module requires Go 1.99"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "\n"); n != 3 {
		t.Errorf("%d records, want one per compiler line (3)", n)
	}
	if got := be.Error(); got != "go build in /src/fn: ./main.go:7:2: undefined: nope" {
		t.Errorf("Error() = %q", got)
	}
}

// syncBuffer collects log output written from any goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLocalRuntimeFunctionTimeout checks that an invocation running past
// FunctionTimeout fails as Lambda reports it, that the process is
// restarted, and that the next invocation works.
func TestLocalRuntimeFunctionTimeout(t *testing.T) {
	rt, err := NewLocalRuntime(RuntimeConfig{Command: echoFunction(t), Concurrency: 1,
		FunctionTimeout: 250 * time.Millisecond, MemorySize: 512})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	before, err := invokeBody(t, rt, "pid")
	if err != nil {
		t.Fatal(err)
	}
	// "meet" waits 20s for a second invocation that never comes.
	_, err = invokeBody(t, rt, "meet:"+t.TempDir())
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "Sandbox.Timedout" ||
		!strings.HasPrefix(fe.Message, "RequestId: ") || !strings.HasSuffix(fe.Message, " Error: Task timed out after 0.25 seconds") {
		t.Fatalf("timed-out invocation: %v, want Sandbox.Timedout", err)
	}
	after, err := invokeBody(t, rt, "pid")
	if err != nil {
		t.Fatal(err)
	}
	if after.Body == before.Body {
		t.Fatalf("process %s still serving after a timeout, want a new one", after.Body)
	}
}

// TestGoBuildSources checks what is watched: the packages of the function's
// own module that it imports, the files they embed, go.mod and go.sum —
// not the standard library or other modules.
func TestGoBuildSources(t *testing.T) {
	dir, write := functionModule(t)
	write(`package main

import (
	_ "embed"

	"github.com/aws/aws-lambda-go/lambda"

	"example.test/fn/lib"
)

//go:embed static/reply.txt
var reply string

func main() { lambda.Start(func() (string, error) { return reply + lib.Name, nil }) }
`)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "lib"), 0o700))
	must(os.MkdirAll(filepath.Join(dir, "static"), 0o700))
	must(os.MkdirAll(filepath.Join(dir, "unused"), 0o700))
	writeFile(t, filepath.Join(dir, "lib", "lib.go"), "package lib\n\nconst Name = \"lib\"\n")
	writeFile(t, filepath.Join(dir, "static", "reply.txt"), "hello ")
	writeFile(t, filepath.Join(dir, "unused", "unused.go"), "package unused\n")
	b, err := NewGoBuild(dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Sources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{dir, filepath.Join(dir, "go.mod"), filepath.Join(dir, "go.sum"), filepath.Join(dir, "lib"), filepath.Join(dir, "static", "reply.txt")}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sources:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	before := fingerprint(got)
	writeFile(t, filepath.Join(dir, "static", "reply.txt"), "hello again ")
	if fingerprint(got) == before {
		t.Error("changing an embedded file does not change the fingerprint")
	}
	before = fingerprint(got)
	writeFile(t, filepath.Join(dir, "unused", "unused.go"), "package unused\n\nconst X = 1\n")
	writeFile(t, filepath.Join(dir, ".main.go.swp"), "editor state")
	if fingerprint(got) != before {
		t.Error("a package the function does not import, or an editor's file, changes the fingerprint")
	}
}
