package edge

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/lesismal/nbio/logging"
)

// nbio logs through one process-wide logger. Its warnings and errors go to
// the logger of the most recently created Server; its debug and info lines,
// which announce engine starts and stops, are dropped.
var (
	nbioLoggerOnce sync.Once
	nbioTarget     atomic.Pointer[slog.Logger]
)

type nbioLogger struct{}

func (nbioLogger) Debug(string, ...any) {}
func (nbioLogger) Info(string, ...any)  {}
func (nbioLogger) Warn(format string, v ...any) {
	if l := nbioTarget.Load(); l != nil {
		l.Warn(fmt.Sprintf(format, v...), "source", "nbio")
	}
}
func (nbioLogger) Error(format string, v ...any) {
	if l := nbioTarget.Load(); l != nil {
		l.Error(fmt.Sprintf(format, v...), "source", "nbio")
	}
}

func routeNbioLogs(l *slog.Logger) {
	nbioLoggerOnce.Do(func() { logging.SetLogger(nbioLogger{}) })
	nbioTarget.Store(l)
}
