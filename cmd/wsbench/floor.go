//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/wsproto"
)

// wsbench floor measures what a fan-out costs on this machine before any
// gateway work: a child process writes one ready-made WebSocket text frame
// to each of -n loopback TCP sockets with write(2), from -writers threads,
// -rate times a second, and wsbench reads them as it reads a gateway's in
// push -mode topic. Its "last delivery" line is the floor under push -mode
// topic's at the same -n and -rate.

type floorOptions struct {
	n         int
	rate      float64
	duration  time.Duration
	writers   int
	readLoops int
	size      int
	timeout   time.Duration
	uring     int
}

func (o *floorOptions) register(fs *flag.FlagSet) {
	fs.IntVar(&o.n, "n", 10_000, "sockets, 1 to 19000")
	fs.Float64Var(&o.rate, "rate", 10, "sweeps (publications) per second, 0.1 to 1000")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long the writer sweeps")
	fs.IntVar(&o.writers, "writers", runtime.GOMAXPROCS(0), "writer threads, each writing to its share of the sockets, 1 to 64")
	fs.IntVar(&o.size, "size", 64, "payload bytes, 40 to 32768")
	fs.IntVar(&o.uring, "uring", 0, "send through an io_uring per writer thread, this many sends per io_uring_enter (1 to 4096); 0 writes with write(2)")
}

func (o *floorOptions) validate() error {
	errs := []error{
		outOfRange("n", o.n, 1, maxPerProcess),
		outOfRange("writers", o.writers, 1, 64),
		outOfRange("read-loops", o.readLoops, 0, 64),
		outOfRange("size", o.size, 40, 32768),
		outOfRange("uring", o.uring, 0, 4096),
	}
	if o.rate < 0.1 || o.rate > 1000 {
		errs = append(errs, fmt.Errorf("-rate %g: must be 0.1 to 1000", o.rate))
	}
	if o.duration <= 0 || o.duration > 10*time.Minute {
		errs = append(errs, fmt.Errorf("-duration %s: must be more than 0 and at most 10m", o.duration))
	}
	if o.timeout <= o.duration {
		errs = append(errs, fmt.Errorf("-timeout %s: must be more than -duration %s", o.timeout, o.duration))
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	return nil
}

// outOfRange says when the value v of flag -name is not within lo..hi.
func outOfRange(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("-%s %d: must be %d to %d", name, v, lo, hi)
	}
	return nil
}

// sweeps is the number of publications of a run.
func (o *floorOptions) sweeps() int { return max(int(o.rate*o.duration.Seconds()+0.5), 1) }

func parseFloorOptions(args []string, stderr io.Writer) (*floorOptions, error) {
	o := &floorOptions{}
	fs := flag.NewFlagSet("wsbench floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: wsbench floor [flags]

The fan-out floor of this machine: a child process writes one 2-byte-header
WebSocket text frame to each of -n loopback sockets with write(2), -rate
times a second, from -writers threads; wsbench reads them with the reader
of push -mode topic. No gateway, no framing work, no locks: what one write
per subscriber costs here. Compare its "last delivery" line with push -mode
topic's at the same -n and -rate.

`)
		fs.PrintDefaults()
	}
	o.register(fs)
	fs.IntVar(&o.readLoops, "read-loops", 1, "epoll loops that read the sockets, 0 to 64; 0 reads each on a goroutine of its own")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "the whole run")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return o, o.validate()
}

func parseFloorWriterOptions(args []string, stderr io.Writer) (*floorOptions, error) {
	o := &floorOptions{timeout: time.Hour}
	fs := flag.NewFlagSet("wsbench floor-writer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return o, o.validate()
}

func (o *floorOptions) writerArgs() []string {
	return []string{"floor-writer", "-n", strconv.Itoa(o.n), "-rate", strconv.FormatFloat(o.rate, 'g', -1, 64),
		"-duration", o.duration.String(), "-writers", strconv.Itoa(o.writers), "-size", strconv.Itoa(o.size), "-uring", strconv.Itoa(o.uring)}
}

// dupFD returns a duplicate of c's descriptor, which shares the socket and
// its non-blocking mode, and closes c: the socket leaves Go's poller.
func dupFD(c *net.TCPConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("fcntl", dupErr)
	}
	if err := c.Close(); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// floorWrites counts what the writer threads did.
type floorWrites struct {
	writes, waits, failed atomic.Int64
	until                 time.Time // a socket still without room then counts as failed
}

// writeAll writes b to the non-blocking socket fd, waiting for room when
// the send buffer is full, until w.until.
func (w *floorWrites) writeAll(fd int, b []byte) {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		switch {
		case n > 0:
			b = b[n:]
		case err == unix.EAGAIN:
			w.waits.Add(1)
			wait := time.Until(w.until)
			if wait <= 0 {
				w.failed.Add(1)
				return
			}
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, int(min(wait, time.Second)/time.Millisecond)+1)
		case err == unix.EINTR:
		default:
			w.failed.Add(1)
			return
		}
	}
	w.writes.Add(1)
}

// runFloorWriter is the child of wsbench floor: it accepts -n connections,
// says "ready", and on "go" from stdin sweeps them -rate times a second,
// then says "done …" and waits for stdin to close.
func runFloorWriter(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseFloorWriterOptions(args, stderr)
	if err != nil {
		return err
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	_ = ln.SetDeadline(time.Now().Add(time.Minute))
	fds := make([]int, 0, o.n)
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}()
	for len(fds) < o.n {
		c, err := ln.AcceptTCP()
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("accepted %d of %d: %w", len(fds), o.n, err)
		}
		fd, err := dupFD(c)
		if err != nil {
			_ = ln.Close()
			return err
		}
		fds = append(fds, fd)
	}
	_ = ln.Close()
	var rings []*uringSender
	defer func() {
		for _, r := range rings {
			r.close()
		}
	}()
	for range min(o.uring, 1) * o.writers {
		r, err := newURingSender(o.uring)
		if err != nil {
			return err
		}
		rings = append(rings, r)
	}
	commands := bufio.NewScanner(stdin)
	fmt.Fprintf(stdout, "ready\n")
	if !commands.Scan() || commands.Text() != "go" {
		return errors.New("no go from wsbench floor")
	}

	// A reader that stopped reading fails the writes to it once the
	// sweeps are well over, rather than holding the writer forever.
	counts := &floorWrites{until: time.Now().Add(o.duration + 30*time.Second)}
	var ringErr atomic.Pointer[error]
	frames := make([]chan []byte, o.writers)
	var wg sync.WaitGroup
	for k := range o.writers {
		frames[k] = make(chan []byte)
		share := fds[k*len(fds)/o.writers : (k+1)*len(fds)/o.writers]
		go func() {
			runtime.LockOSThread()
			for frame := range frames[k] {
				if rings != nil {
					if err := rings[k].sendAll(share, frame, counts); err != nil {
						ringErr.CompareAndSwap(nil, &err)
					}
				} else {
					for _, fd := range share {
						counts.writeAll(fd, frame)
					}
				}
				wg.Done()
			}
		}()
	}
	start := time.Now()
	payload := make([]byte, 0, o.size)
	for i := range o.sweeps() {
		sleepUntil(ctx, start.Add(time.Duration(float64(i)/o.rate*float64(time.Second))))
		if ctx.Err() != nil {
			break
		}
		payload = pushPayload(payload[:0], time.Now().UnixNano(), o.size)
		frame := wsproto.AppendFrame(nil, wsproto.OpText, true, payload)
		wg.Add(o.writers)
		for _, ch := range frames {
			ch <- frame
		}
		wg.Wait()
	}
	for _, ch := range frames {
		close(ch)
	}
	if err := ringErr.Load(); err != nil {
		return *err
	}
	fmt.Fprintf(stdout, "done writes=%d waits=%d failed=%d\n", counts.writes.Load(), counts.waits.Load(), counts.failed.Load())
	for commands.Scan() {
	}
	return nil
}

// floorChild is the running floor-writer.
type floorChild struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string   // what it prints, closed at its end of output
	exited  chan struct{} // closed once it has exited, exitErr set
	exitErr error
}

func startFloorWriter(ctx context.Context, o *floorOptions, stderr io.Writer) (*floorChild, string, error) {
	cmd, err := selfCommand(o.writerArgs()...)
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	ch := &floorChild{cmd: cmd, stdin: stdin, lines: make(chan string, 8), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case ch.lines <- sc.Text():
			default: // nobody listens for more than the few lines it says
			}
		}
		close(ch.lines)
		ch.exitErr = cmd.Wait()
		close(ch.exited)
	}()
	addr, err := ch.expect(ctx, "listening ")
	if err != nil {
		ch.stop()
		return nil, "", err
	}
	return ch, addr, nil
}

// expect reads the child's next line, which must start with prefix, and
// returns the rest.
func (ch *floorChild) expect(ctx context.Context, prefix string) (string, error) {
	var line string
	select {
	case l, ok := <-ch.lines:
		if !ok {
			status := "still running"
			select {
			case <-ch.exited:
				status = exitText(ch.exitErr)
			case <-time.After(2 * time.Second):
			}
			return "", fmt.Errorf("floor writer ended before %q (%s)", strings.TrimSpace(prefix), status)
		}
		line = l
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for the floor writer's %q: %w", strings.TrimSpace(prefix), ctx.Err())
	}
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return "", fmt.Errorf("floor writer said %q, want %q…", line, prefix)
	}
	return rest, nil
}

// stop closes the child's input, which ends it, and kills it when it has
// not exited 10 s later.
func (ch *floorChild) stop() {
	_ = ch.stdin.Close()
	select {
	case <-ch.exited:
	case <-time.After(10 * time.Second):
		_ = ch.cmd.Process.Kill()
		<-ch.exited
	}
}

func runFloor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFloorOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	printf := func(format string, args ...any) { fmt.Fprintf(stdout, format, args...) }
	ch, addr, err := startFloorWriter(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer ch.stop()
	pid := ch.cmd.Process.Pid
	printf("wsbench floor: %d loopback sockets, a %d-byte text frame to each %g times a second for %s, %d writer threads with %s (pid %d, %s); reader: %s\n",
		o.n, 2+o.size, o.rate, o.duration, o.writers, senderText(o.uring), pid, addr, readerText(o.readLoops))
	printf("environment: %s; load average %s; %d CPUs\n", envSummary(), loadAverage(), runtime.NumCPU())

	r := &pushRun{}
	defer r.closeAll()
	d := net.Dialer{Timeout: 10 * time.Second}
	for range o.n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("dial %d of %d: %w", len(r.conns)+1, o.n, err)
		}
		r.conns = append(r.conns, &pushConn{c: c.(*net.TCPConn), fd: -1, done: make(chan struct{})})
	}
	if _, err := ch.expect(ctx, "ready"); err != nil {
		return err
	}
	if err := r.startReading(o.readLoops); err != nil {
		return err
	}

	r.measure.Store(true)
	self0, child0 := cpuOf([]int{os.Getpid()}), cpuOf([]int{pid})
	start := time.Now()
	if _, err := io.WriteString(ch.stdin, "go\n"); err != nil {
		return err
	}
	want := int64(o.n * o.sweeps())
	received, lastRecv := r.wait(ctx, want)
	self, child := cpuOf([]int{os.Getpid()})-self0, cpuOf([]int{pid})-child0
	done, err := ch.expect(ctx, "done ")
	if err != nil {
		return err
	}

	var lat []time.Duration
	last := make(map[int64]time.Duration)
	for _, p := range r.conns {
		p.latMu.Lock()
		lat = append(lat, p.lat...)
		slowestByPublication(last, p.sentAt, p.lat)
		p.latMu.Unlock()
	}
	sum := summarize(lat)
	lastSum := summarize(slices.Collect(maps.Values(last)))
	span := lastRecv.Sub(start)
	printf("\nresults\n")
	printf("  sweeps         %d of %d sockets; writer: %s\n", o.sweeps(), o.n, done)
	printf("  deliveries     %d of %d expected\n", received, want)
	printf("  latency        %s\n", sum)
	printf("  last delivery  %s\n", lastSum)
	printf("                 (per sweep: from just before its first write to the read of the last socket)\n")
	per := func(d time.Duration) string { return fmtDur(d / time.Duration(max(received, 1))) }
	printf("  CPU            writer %s (%.0f%% of one core), wsbench %s (%.0f%%) over %s; writer %s per delivery, wsbench %s per delivery\n",
		fmtDur(child), 100*child.Seconds()/max(span.Seconds(), 1e-9), fmtDur(self), 100*self.Seconds()/max(span.Seconds(), 1e-9), fmtDur(span), per(child), per(self))
	printf("\nsummary: mode=floor n=%d writers=%d uring=%d read_loops=%d size=%d rate=%g deliveries=%d expected=%d p50=%s p99=%s last_p50=%s last_p99=%s last_max=%s writer_cpu=%s wsbench_cpu=%s\n",
		o.n, o.writers, o.uring, o.readLoops, o.size, o.rate, received, want, fmtDur(sum.P50), fmtDur(sum.P99),
		fmtDur(lastSum.P50), fmtDur(lastSum.P99), fmtDur(lastSum.Max), fmtDur(child), fmtDur(self))
	if received < want {
		return fmt.Errorf("%d of %d deliveries did not arrive", want-received, want)
	}
	return nil
}

// senderText says how the writer threads send with -uring n.
func senderText(n int) string {
	if n == 0 {
		return "write(2)"
	}
	return fmt.Sprintf("io_uring sends, up to %d per io_uring_enter", n)
}

// readerText says how wsbench reads its sockets with -read-loops n.
func readerText(n int) string {
	if n == 0 {
		return "a goroutine per socket"
	}
	return fmt.Sprintf("%d edge-triggered epoll loops", n)
}
