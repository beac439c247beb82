package accesslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBufferBytes is Config.BufferBytes's default.
const DefaultBufferBytes = 1 << 20

// Output names that are not files.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Config configures a Logger.
type Config struct {
	// Format lays out each line. Required.
	Format *Format
	// Output is where lines go: "" or Stdout for standard output, Stderr,
	// or the path of a file, which is created if needed (mode 0640) and
	// appended to.
	Output string
	// Stdout and Stderr stand for the process's; nil means os.Stdout and
	// os.Stderr.
	Stdout, Stderr io.Writer
	// BufferBytes bounds the bytes of the lines waiting to be written;
	// a line that does not fit is dropped. Default DefaultBufferBytes.
	BufferBytes int
	// Dropped, when set, is told of every n lines dropped, because the
	// buffer was full or writing them failed.
	Dropped func(n int)
	// Logger reports write and reopen failures; nil discards them.
	Logger *slog.Logger
}

// Logger writes access log lines. Log never blocks on the output: lines wait
// in a buffer of at most Config.BufferBytes for the Logger's one writer
// goroutine, which Close stops. The methods are safe for concurrent use, and
// do nothing on a nil *Logger.
type Logger struct {
	format  *Format
	output  string
	max     int
	onDrop  func(int)
	log     *slog.Logger
	dropped atomic.Uint64

	// pendingMu guards pending and closed.
	pendingMu sync.Mutex
	pending   []byte
	closed    bool

	wake   chan struct{}
	reopen chan chan error
	done   chan struct{}
	once   sync.Once

	// Owned by the writer goroutine.
	w        io.Writer
	file     *os.File
	errLast  time.Time
	errCount int
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// New returns a Logger writing to cfg.Output, which it opens, and starts its
// writer. Errors name the output file, never anything else.
func New(cfg Config) (*Logger, error) {
	if cfg.Format == nil {
		return nil, errors.New("accesslog: no format")
	}
	l := &Logger{
		format: cfg.Format,
		output: cfg.Output,
		max:    cfg.BufferBytes,
		onDrop: cfg.Dropped,
		log:    cfg.Logger,
		wake:   make(chan struct{}, 1),
		reopen: make(chan chan error),
		done:   make(chan struct{}),
	}
	if l.max <= 0 {
		l.max = DefaultBufferBytes
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	switch cfg.Output {
	case "", Stdout:
		l.w = cfg.Stdout
		if l.w == nil {
			l.w = os.Stdout
		}
	case Stderr:
		l.w = cfg.Stderr
		if l.w == nil {
			l.w = os.Stderr
		}
	default:
		f, err := openFile(cfg.Output)
		if err != nil {
			return nil, err
		}
		l.w, l.file = f, f
	}
	go l.run()
	return l, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		// The error of os.OpenFile names the file.
		return nil, fmt.Errorf("opening the access log: %w", err)
	}
	return f, nil
}

// Format returns the logger's format.
func (l *Logger) Format() *Format { return l.format }

// Log formats e and queues the line, or drops it when the buffer is full.
// It does not keep e.
func (l *Logger) Log(e *Entry) {
	if l == nil {
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := l.format.Append((*bp)[:0], e)
	b = append(b, '\n')
	l.pendingMu.Lock()
	switch {
	case l.closed:
		l.pendingMu.Unlock()
	case len(l.pending)+len(b) > l.max:
		l.pendingMu.Unlock()
		l.drop(1)
	default:
		l.pending = append(l.pending, b...)
		// Under pendingMu, so that Close cannot have closed wake.
		select {
		case l.wake <- struct{}{}:
		default:
		}
		l.pendingMu.Unlock()
	}
	if cap(b) <= 64<<10 {
		*bp = b
		bufPool.Put(bp)
	}
}

func (l *Logger) drop(n int) {
	l.dropped.Add(uint64(n))
	if l.onDrop != nil {
		l.onDrop(n)
	}
}

// Dropped returns the number of lines dropped so far.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Reopen writes the lines waiting, then closes the output file and opens
// it again by its name, as logrotate expects after moving it. When the file
// cannot be opened, the old one is kept and the error returned. For
// standard output and standard error it does nothing.
func (l *Logger) Reopen() error {
	if l == nil || l.file == nil {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case l.reopen <- reply:
		return <-reply
	case <-l.done:
		return errors.New("the access log is closed")
	}
}

// Close writes the lines waiting, closes the output file and stops the
// writer. Lines logged afterwards are discarded. Close is idempotent.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		l.pendingMu.Lock()
		l.closed = true
		close(l.wake)
		l.pendingMu.Unlock()
	})
	<-l.done
	return nil
}

// run is the writer goroutine.
func (l *Logger) run() {
	defer close(l.done)
	var spare []byte
	for {
		var reply chan error
		select {
		case _, ok := <-l.wake:
			if !ok {
				l.flush(&spare)
				if l.file != nil {
					_ = l.file.Close()
				}
				return
			}
		case reply = <-l.reopen:
		}
		l.flush(&spare)
		if reply != nil {
			reply <- l.reopenFile()
		}
	}
}

// flush writes the lines waiting; *spare is the writer's empty buffer,
// swapped with the pending one.
func (l *Logger) flush(spare *[]byte) {
	l.pendingMu.Lock()
	buf := l.pending
	l.pending = (*spare)[:0]
	l.pendingMu.Unlock()
	if len(buf) > 0 {
		if _, err := l.w.Write(buf); err != nil {
			l.drop(bytes.Count(buf, []byte{'\n'}))
			l.writeFailed(err)
		}
	}
	*spare = buf[:0]
}

// writeFailed logs a write error, at most once every ten seconds.
func (l *Logger) writeFailed(err error) {
	l.errCount++
	if now := time.Now(); now.Sub(l.errLast) >= 10*time.Second {
		l.log.Error("writing the access log failed; lines were dropped", "output", l.output, "err", err, "failures", l.errCount)
		l.errLast, l.errCount = now, 0
	}
}

func (l *Logger) reopenFile() error {
	f, err := openFile(l.output)
	if err != nil {
		l.log.Error("reopening the access log failed; still writing to the file opened before", "output", l.output, "err", err)
		return err
	}
	_ = l.file.Close()
	l.w, l.file = f, f
	return nil
}
