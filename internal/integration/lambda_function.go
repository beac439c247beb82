package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"
)

// LocalFunctionConfig describes a local Lambda function: a program, or a Go
// package that wsgate builds.
type LocalFunctionConfig struct {
	// Runtime runs the program. With Build, its Command is ignored: the
	// program is the one Build writes.
	Runtime RuntimeConfig
	// Build, when set, is the Go package the program is built from, and
	// rebuilt from when its sources change.
	Build *GoBuild
	// PollInterval is how often Build's sources are checked for changes.
	// Default 500ms.
	PollInterval time.Duration
}

// LocalFunction is a local Lambda function. It runs the program under a
// LocalRuntime; with a Build, it builds the program at Start, then watches
// the sources and, on a change, rebuilds it and swaps in a new LocalRuntime
// for the next invocations, closing the old one once the invocations it
// is running have ended. A failed rebuild is logged, with each compiler
// diagnostic's file and line, and the running program keeps serving.
//
// The sources are polled rather than watched through inotify: polling needs
// no dependency, sees changes on network and container-mounted file systems
// and through editors that save by renaming, and a function's package
// directories are few enough for a stat of each every PollInterval to cost
// nothing that matters.
//
// Invoke is safe for concurrent use. Start starts it once; Close stops it
// and waits for every goroutine and process it started.
type LocalFunction struct {
	cfg LocalFunctionConfig
	log *slog.Logger
	// done is closed by Close; it ends the watcher and the waits of the
	// retired runtimes. ctx is cancelled by Close too, ending a build.
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stateMu sync.Mutex
	started bool
	closed  bool

	// curMu guards cur, the runtime new invocations go to, and the
	// counts of every generation.
	curMu sync.Mutex
	cur   *generation
}

var _ Invoker = (*LocalFunction)(nil)

// generation is one LocalRuntime and the invocations running on it.
type generation struct {
	rt       *LocalRuntime
	inflight int
	retired  bool
	// idle is closed when the generation is retired and has no invocation
	// left.
	idle chan struct{}
}

// NewLocalFunction prepares the function without starting anything: it
// resolves the command (see NewLocalRuntime); a Build has been checked by
// NewGoBuild.
func NewLocalFunction(cfg LocalFunctionConfig) (*LocalFunction, error) {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = pollInterval
	}
	if cfg.Runtime.Logger == nil {
		cfg.Runtime.Logger = slog.New(slog.DiscardHandler)
	}
	f := &LocalFunction{cfg: cfg, done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if cfg.Build != nil {
		if f.cfg.Runtime.FunctionName == "" {
			f.cfg.Runtime.FunctionName = filepath.Base(cfg.Build.Dir)
		}
		f.log = cfg.Runtime.Logger.With("component", "lambda", "function", f.cfg.Runtime.FunctionName)
		return f, nil
	}
	rt, err := NewLocalRuntime(cfg.Runtime)
	if err != nil {
		return nil, err
	}
	f.cur = &generation{rt: rt, idle: make(chan struct{})}
	f.log = rt.log
	return f, nil
}

// Start builds the program when the function has a Build, starts it with
// environ added to its environment (see RuntimeConfig.Environ), and starts
// watching the sources. It fails when the first build fails, after logging
// the compiler's diagnostics, or when the program cannot be started. Close
// ends a build in progress.
func (f *LocalFunction) Start(environ []string) error {
	ctx := f.ctx
	f.stateMu.Lock()
	if f.closed || f.started {
		closed := f.closed
		f.stateMu.Unlock()
		if closed {
			return ErrRuntimeClosed
		}
		return nil
	}
	f.started = true
	f.cfg.Runtime.Environ = environ
	if f.cfg.Build == nil {
		defer f.stateMu.Unlock()
		f.cur.rt.cfg.Environ = environ
		return f.cur.rt.Start()
	}
	f.stateMu.Unlock()
	srcs, err := f.cfg.Build.Sources(ctx)
	if err != nil {
		f.log.Warn("function sources not listed; watching the package directory only", "err", err)
		srcs = []string{f.cfg.Build.Dir}
	}
	sum := fingerprint(srcs)
	rt, err := f.build(ctx)
	if err != nil {
		return err
	}
	if err := rt.Start(); err != nil {
		return err
	}
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	if f.closed {
		_ = rt.Close()
		return ErrRuntimeClosed
	}
	f.curMu.Lock()
	f.cur = &generation{rt: rt, idle: make(chan struct{})}
	f.curMu.Unlock()
	f.log.Info("function built", "dir", f.cfg.Build.Dir)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.watch(srcs, sum)
	}()
	return nil
}

// build compiles the program and prepares a runtime for it. A failed
// compilation is logged and returned.
func (f *LocalFunction) build(ctx context.Context) (*LocalRuntime, error) {
	if err := f.cfg.Build.Build(ctx); err != nil {
		var be *BuildError
		if errors.As(err, &be) {
			be.Log(f.log, f.cfg.Build.Dir)
		}
		return nil, err
	}
	rc := f.cfg.Runtime
	rc.Command = f.cfg.Build.Output
	return NewLocalRuntime(rc)
}

// watch polls the sources until Close and rebuilds on a change. After each
// build the sources are listed again, as imports may have changed.
func (f *LocalFunction) watch(srcs []string, sum string) {
	ctx := f.ctx
	t := time.NewTicker(f.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-f.done:
			return
		case <-t.C:
		}
		if fingerprint(srcs) == sum {
			continue
		}
		if listed, err := f.cfg.Build.Sources(ctx); err == nil {
			srcs = listed
		}
		sum = fingerprint(srcs)
		f.log.Info("function sources changed; rebuilding", "dir", f.cfg.Build.Dir)
		rt, err := f.build(ctx)
		if err == nil {
			err = rt.Start()
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.Error("function rebuild failed; the previous program keeps serving", "dir", f.cfg.Build.Dir, "err", err)
			continue
		}
		if !f.swap(rt) {
			_ = rt.Close()
			return
		}
		f.log.Info("function rebuilt", "dir", f.cfg.Build.Dir)
	}
}

// swap makes rt the runtime of the next invocations and retires the old
// one, which is closed once its invocations have ended. It reports false
// when the function is closed.
func (f *LocalFunction) swap(rt *LocalRuntime) bool {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	if f.closed {
		return false
	}
	f.curMu.Lock()
	old := f.cur
	f.cur = &generation{rt: rt, idle: make(chan struct{})}
	old.retired = true
	if old.inflight == 0 {
		close(old.idle)
	}
	f.curMu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		select {
		case <-old.idle:
		case <-f.done:
		}
		_ = old.rt.Close()
	}()
	return true
}

// Invoke implements Invoker on the current program.
func (f *LocalFunction) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	f.curMu.Lock()
	g := f.cur
	if g == nil {
		f.curMu.Unlock()
		return nil, fmt.Errorf("function %s not started", f.cfg.Runtime.FunctionName)
	}
	g.inflight++
	f.curMu.Unlock()
	defer func() {
		f.curMu.Lock()
		g.inflight--
		if g.retired && g.inflight == 0 {
			close(g.idle)
		}
		f.curMu.Unlock()
	}()
	return g.rt.Invoke(ctx, payload)
}

// Close stops the watcher and every runtime, and waits for them. It is
// idempotent.
func (f *LocalFunction) Close() error {
	f.stateMu.Lock()
	if f.closed {
		f.stateMu.Unlock()
		return nil
	}
	f.closed = true
	close(f.done)
	f.cancel()
	f.stateMu.Unlock()
	f.curMu.Lock()
	g := f.cur
	f.curMu.Unlock()
	if g != nil {
		_ = g.rt.Close()
	}
	f.wg.Wait()
	return nil
}
