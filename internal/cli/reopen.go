package cli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// reopenSignal is the signal on which serve reopens the access log file,
// as logrotate's postrotate script sends it.
const reopenSignal = syscall.SIGUSR1

// notifyReopen delivers reopenSignal on the returned channel until stop is
// called. serve installs it before anything else, so that the signal never
// takes its default action, which ends the process.
func notifyReopen() (ch <-chan os.Signal, stop func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, reopenSignal)
	return c, func() { signal.Stop(c) }
}

// reopenOnSignal calls reopen for every signal on ch until ctx is done; the
// returned function waits for that.
func reopenOnSignal(ctx context.Context, ch <-chan os.Signal, reopen func() error, logger *slog.Logger) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				if err := reopen(); err != nil {
					logger.Error("reopening the access log failed", "err", err)
					continue
				}
				logger.Info("access log reopened")
			}
		}
	}()
	return wg.Wait
}
