package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GoBuild builds a Go main package with the local Go toolchain into
// wsgate's cache, and tells which files its build depends on.
//
// The toolchain is the go command found in PATH when NewGoBuild runs; it
// runs in Dir with wsgate's environment, so GOFLAGS, GOPROXY and the others
// apply, and the module is the one go build finds from Dir.
type GoBuild struct {
	// Dir is the package directory, absolute.
	Dir string
	// GoTool is the go command's path.
	GoTool string
	// Output is where the program is written: the cache's
	// wsgate/functions/{hash of Dir}/bootstrap.
	Output string
}

// NewGoBuild checks that dir is a directory and that the go command is in
// PATH; it builds nothing. An error wraps fs.ErrNotExist when the directory
// does not exist and exec.ErrNotFound when there is no go command.
// cacheDir is the cache root; "" means os.UserCacheDir(), resolved by Build.
func NewGoBuild(dir, cacheDir string) (*GoBuild, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("function directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("function directory: %s is not a directory", abs)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("building %s needs the Go toolchain: %w", abs, err)
	}
	b := &GoBuild{Dir: abs, GoTool: goTool}
	if cacheDir != "" {
		b.Output = cacheOutput(cacheDir, abs)
	}
	return b, nil
}

func cacheOutput(cacheDir, abs string) string {
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(cacheDir, "wsgate", "functions", hex.EncodeToString(sum[:12]), "bootstrap")
}

// BuildError is a failed go build. Lines are the compiler's output lines,
// each a "file:line:col: message" where the compiler gives one.
type BuildError struct {
	Dir   string
	Lines []string
	Err   error
}

func (e *BuildError) Error() string {
	first := ""
	for _, l := range e.Lines {
		if !strings.HasPrefix(l, "#") {
			first = l
			break
		}
	}
	if first == "" {
		return fmt.Sprintf("go build in %s: %v", e.Dir, e.Err)
	}
	return fmt.Sprintf("go build in %s: %s", e.Dir, first)
}

func (e *BuildError) Unwrap() error { return e.Err }

// compilerLine matches a compiler diagnostic, "./main.go:12:3: message" or
// "main.go:12: message".
var compilerLine = regexp.MustCompile(`^(\S+?\.go):(\d+)(?::(\d+))?: (.*)$`)

// Log logs each line of the build's output as one Error record: with the
// file (absolute), line and column as attributes where the line is a
// compiler diagnostic.
func (e *BuildError) Log(log *slog.Logger, dir string) {
	for _, l := range e.Lines {
		if strings.HasPrefix(l, "#") {
			continue
		}
		m := compilerLine.FindStringSubmatch(l)
		if m == nil {
			log.Error("function build error", "dir", dir, "output", l)
			continue
		}
		file := m[1]
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		line, _ := strconv.Atoi(m[2])
		attrs := []any{"file", file, "line", line}
		if m[3] != "" {
			col, _ := strconv.Atoi(m[3])
			attrs = append(attrs, "column", col)
		}
		log.Error("function build error", append(attrs, "error", m[4])...)
	}
	if len(e.Lines) == 0 {
		log.Error("function build error", "dir", dir, "err", e.Err)
	}
}

// Build compiles the package into Output, replacing the program there only
// when the build succeeds. A failed compilation is a *BuildError.
func (b *GoBuild) Build(ctx context.Context) error {
	if b.Output == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("function cache: %w", err)
		}
		b.Output = cacheOutput(cache, b.Dir)
	}
	if err := os.MkdirAll(filepath.Dir(b.Output), 0o700); err != nil {
		return fmt.Errorf("function cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(b.Output), "bootstrap-*")
	if err != nil {
		return fmt.Errorf("function cache: %w", err)
	}
	_ = tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.CommandContext(ctx, b.GoTool, "build", "-o", tmp.Name(), ".")
	cmd.Dir = b.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var lines []string
		for l := range strings.Lines(out.String()) {
			if l = strings.TrimRight(l, "\r\n"); strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		return &BuildError{Dir: b.Dir, Lines: lines, Err: err}
	}
	// A rename leaves a running process's program intact: it keeps the
	// old file.
	if err := os.Rename(tmp.Name(), b.Output); err != nil {
		return fmt.Errorf("function cache: %w", err)
	}
	return nil
}

// Sources returns the files the build depends on, for watching: the
// directories of the packages of the main module that the package imports,
// directly or not, with the package's own, the files they embed, and the
// module's go.mod and go.sum. The standard library and other modules are left out. It asks
// go list, which works on sources that do not compile as long as they
// parse.
func (b *GoBuild) Sources(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, b.GoTool, "list", "-e", "-deps", "-json=Dir,Standard,Module,EmbedFiles", ".")
	cmd.Dir = b.Dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list in %s: %v: %s", b.Dir, err, bytes.TrimSpace(stderr.Bytes()))
	}
	type pkg struct {
		Dir        string
		Standard   bool
		EmbedFiles []string
		Module     *struct {
			Main  bool
			GoMod string
		}
	}
	paths := []string{b.Dir}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list in %s: %w", b.Dir, err)
		}
		if p.Standard || p.Module == nil || !p.Module.Main || p.Dir == "" {
			continue
		}
		paths = append(paths, p.Dir)
		for _, f := range p.EmbedFiles {
			paths = append(paths, filepath.Join(p.Dir, f))
		}
		if p.Module.GoMod != "" {
			paths = append(paths, p.Module.GoMod, filepath.Join(filepath.Dir(p.Module.GoMod), "go.sum"))
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths), nil
}

// fingerprint sums the name, size and modification time of each path and,
// for a directory, of each regular file in it that is not hidden or an
// editor's backup (not below it: a package's subdirectories are other
// packages, and its embedded files may have any name). A path that does not exist counts as
// such, so that creating or removing it changes the sum.
func fingerprint(paths []string) string {
	h := sha256.New()
	stat := func(p string, fi fs.FileInfo) {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, fi.Size(), fi.ModTime().UnixNano())
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(h, "%s\x00missing\x00", p)
			continue
		}
		if !fi.IsDir() {
			stat(p, fi)
			continue
		}
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || strings.HasSuffix(e.Name(), "~") {
				continue
			}
			if info, err := e.Info(); err == nil {
				stat(filepath.Join(p, e.Name()), info)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pollInterval is how often a watched function's sources are checked.
const pollInterval = 500 * time.Millisecond
