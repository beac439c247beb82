package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// workerEnv tells a process started by -workers its number, for its logs.
const workerEnv = "WSGATE_WORKER"

// startupGrace is how long a worker must run before its exit counts as a
// crash to recover from rather than a failure to start.
const startupGrace = 3 * time.Second

// restartDelay spaces restarts of a crashed worker. A restarted worker that
// cannot start either (the file it reads no longer loads) is tried again
// after twice the previous delay, up to maxRestartDelay.
const (
	restartDelay    = time.Second
	maxRestartDelay = 30 * time.Second
)

// checkWorkers refuses configurations several processes cannot share: each
// process would have its own registry, or its own random port.
func checkWorkers(cfg *config.Config, path string) error {
	if path == "" {
		return usageError{errors.New("-workers needs a config file (-c) with registry.type redis or nats")}
	}
	if cfg.Registry.Type == config.RegistryMemory {
		return usageError{errors.New("-workers needs registry.type redis or nats: with the memory registry each process would see only its own connections")}
	}
	for _, addr := range []string{cfg.Listen, cfg.Management.Listen} {
		if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
			return usageError{fmt.Errorf("-workers needs fixed ports; %s picks a random one per process", addr)}
		}
	}
	return nil
}

type workerExit struct {
	n   int
	err error
}

// exitedWithError reports whether a worker ended with a failure status, as
// it does when it cannot start (a port taken, a bad secret). One killed by a
// signal crashed, a crash to recover from; one that exited 0 was stopped by
// a signal it handles (SIGTERM, SIGINT, SIGHUP).
func exitedWithError(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() > 0
}

// superviseWorkers runs n copies of this program as `serve -c path
// -reuse-port`, restarts one that crashes or is stopped on its own, passes
// each signal from hup (SIGHUP: reload the configuration) and reopen (reopen
// the access log) on to every worker, and stops them all with SIGTERM when
// ctx ends. A worker that exits with a failure status within startupGrace of
// its first start (a port taken, a bad secret) stops all of them: the error
// is not one a restart fixes. A worker restarted after a crash that cannot
// start (the file now holds an error) is tried again, less and less often,
// while the others keep serving.
func superviseWorkers(ctx context.Context, n int, path string, cfg *config.Config, logger *slog.Logger, hup, reopen <-chan os.Signal, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to start workers: %w", err)
	}
	exits := make(chan workerExit, n)
	procs := make([]*exec.Cmd, n)
	started := make([]time.Time, n)
	// restarted[i] is set once worker i is restarted: a restart that
	// fails to start leaves the other workers serving. delay[i] is the
	// wait before its next restart.
	restarted := make([]bool, n)
	delay := make([]time.Duration, n)
	running := 0
	start := func(i int) error {
		cmd := exec.Command(exe, "serve", "-c", path, "-reuse-port")
		cmd.Env = append(os.Environ(), workerEnv+"="+strconv.Itoa(i))
		cmd.Stdout, cmd.Stderr = stdout, stderr
		// A worker outlives a supervisor killed without a chance to stop
		// it only until the kernel tells it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting worker %d: %w", i, err)
		}
		procs[i], started[i] = cmd, time.Now()
		running++
		go func() { exits <- workerExit{i, cmd.Wait()} }()
		logger.Info("worker started", "worker", i, "pid", cmd.Process.Pid)
		return nil
	}
	stopAll := func() {
		for _, p := range procs {
			if p != nil {
				_ = p.Process.Signal(syscall.SIGTERM)
			}
		}
		deadline := time.NewTimer(cfg.ShutdownTimeout + 5*time.Second)
		defer deadline.Stop()
		for running > 0 {
			select {
			case e := <-exits:
				running--
				procs[e.n] = nil
			case <-deadline.C:
				for _, p := range procs {
					if p != nil {
						_ = p.Process.Kill()
					}
				}
				deadline.Reset(time.Hour)
			}
		}
	}
	for i := 0; i < n; i++ {
		if err := start(i); err != nil {
			stopAll()
			return err
		}
	}
	logger.Info("workers running", "workers", n, "clients", cfg.Listen, "management", cfg.Management.Listen)
	restart := make(chan int, n)
	for {
		select {
		case <-ctx.Done():
			logger.Info("stopping workers", "workers", running)
			stopAll()
			return nil
		case e := <-exits:
			running--
			procs[e.n] = nil
			if ctx.Err() != nil {
				// The signal stopping the supervisor reached the worker
				// too (Ctrl-C signals the whole process group).
				continue
			}
			failedStart := time.Since(started[e.n]) < startupGrace && exitedWithError(e.err)
			if failedStart && !restarted[e.n] {
				stopAll()
				return fmt.Errorf("worker %d exited while starting (%v); its log above says why", e.n, e.err)
			}
			if failedStart {
				delay[e.n] = min(2*delay[e.n], maxRestartDelay)
			} else {
				delay[e.n] = restartDelay
			}
			d := delay[e.n]
			logger.Error("worker exited; restarting it", "worker", e.n, "err", e.err, "after", d)
			time.AfterFunc(d, func() { restart <- e.n })
		case <-hup:
			logger.Info("SIGHUP: reloading the configuration of every worker", "workers", running)
			for i, p := range procs {
				if p != nil {
					if err := p.Process.Signal(syscall.SIGHUP); err != nil {
						logger.Warn("could not signal a worker to reload", "worker", i, "err", err)
					}
				}
			}
		case <-reopen:
			// Each worker writes its own access log lines.
			for _, p := range procs {
				if p != nil {
					_ = p.Process.Signal(reopenSignal)
				}
			}
		case i := <-restart:
			restarted[i] = true
			if err := start(i); err != nil {
				logger.Error("restarting worker failed", "worker", i, "err", err)
				time.AfterFunc(restartDelay, func() { restart <- i })
			}
		}
	}
}
