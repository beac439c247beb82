//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/wsproto"
)

// A load worker is wsbench re-executed as "wsbench idle-worker": it opens
// its share of an idle run's connections from its own source addresses,
// holds them, answers the gateway's pings, and closes them when told. It
// talks to the parent in lines:
//
//	parent → worker (stdin):  "go" starts dialing, "close" ends the hold.
//	                          EOF (the parent went away) closes everything.
//	worker → parent (stdout): one JSON workerMsg per line.

// workerSpec is one load worker's share of an idle run.
type workerSpec struct {
	ID          int
	Start       int // global index of the worker's first connection
	Count       int
	Targets     []target
	Sources     []net.IP
	Dialers     int
	DialTimeout time.Duration
	Keepalive   time.Duration // how often held connections are read (pings answered)
	CloseWait   time.Duration // how long to wait for the gateway's close replies
}

// args returns the command line that makes a child process run spec.
func (s workerSpec) args() []string {
	urls := make([]string, len(s.Targets))
	for i, t := range s.Targets {
		urls[i] = t.URL
	}
	srcs := make([]string, len(s.Sources))
	for i, ip := range s.Sources {
		srcs[i] = ip.String()
	}
	args := []string{
		"idle-worker",
		"-id", fmt.Sprint(s.ID),
		"-start", fmt.Sprint(s.Start),
		"-count", fmt.Sprint(s.Count),
		"-targets", strings.Join(urls, ","),
		"-sources", strings.Join(srcs, ","),
		"-dialers", fmt.Sprint(s.Dialers),
		"-dial-timeout", s.DialTimeout.String(),
		"-keepalive", s.Keepalive.String(),
		"-close-wait", s.CloseWait.String(),
	}
	// The URLs do not say the TLS version; every wss:// target has the
	// same one.
	for _, t := range s.Targets {
		if t.TLSVersion != 0 {
			args = append(args, "-tls-version", fmt.Sprintf("%#x", t.TLSVersion))
			break
		}
	}
	return args
}

// parseWorkerArgs parses the flags written by workerSpec.args.
func parseWorkerArgs(args []string, stderr io.Writer) (workerSpec, error) {
	var s workerSpec
	var targets, sources string
	fs := flag.NewFlagSet("wsbench idle-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&s.ID, "id", 0, "worker number")
	fs.IntVar(&s.Start, "start", 0, "global index of the first connection")
	fs.IntVar(&s.Count, "count", 0, "connections to open")
	fs.StringVar(&targets, "targets", "", "comma-separated ws:// URLs")
	fs.StringVar(&sources, "sources", "", "comma-separated source addresses")
	fs.IntVar(&s.Dialers, "dialers", 64, "parallel dialers")
	fs.DurationVar(&s.DialTimeout, "dial-timeout", 10*time.Second, "bound on one connection attempt")
	fs.DurationVar(&s.Keepalive, "keepalive", 5*time.Second, "read interval of held connections")
	fs.DurationVar(&s.CloseWait, "close-wait", 3*time.Second, "wait for close replies")
	tlsVersion := fs.Uint("tls-version", 0, "the one TLS version of wss:// targets, as crypto/tls numbers it (0: the highest)")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	var errs []error
	if s.Count < 1 || s.Count > maxPerProcess {
		errs = append(errs, fmt.Errorf("-count %d: must be 1 to %d", s.Count, maxPerProcess))
	}
	if s.Start < 0 || s.Dialers < 1 || s.Dialers > maxDialers || s.DialTimeout <= 0 || s.Keepalive <= 0 || s.CloseWait < 0 {
		errs = append(errs, errors.New("invalid -start, -dialers, -dial-timeout, -keepalive or -close-wait"))
	}
	for _, raw := range strings.Split(targets, ",") {
		t, err := parseTarget(raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if t.TLS {
			t.TLSVersion = uint16(*tlsVersion)
		}
		s.Targets = append(s.Targets, t)
	}
	if *tlsVersion != 0 && *tlsVersion != tls.VersionTLS12 && *tlsVersion != tls.VersionTLS13 {
		errs = append(errs, fmt.Errorf("-tls-version %#x: not TLS 1.2 or 1.3", *tlsVersion))
	}
	if sources != "" {
		for _, raw := range strings.Split(sources, ",") {
			ip := net.ParseIP(raw)
			if ip == nil || !isLoopback(ip) {
				errs = append(errs, fmt.Errorf("-sources: %q is not a loopback address", raw))
				continue
			}
			s.Sources = append(s.Sources, ip)
		}
	}
	return s, errors.Join(errs...)
}

// workerMsg is one line a worker writes to the parent.
type workerMsg struct {
	Type   string `json:"type"` // ready, progress, established, closed
	Worker int    `json:"worker"`
	PID    int    `json:"pid,omitempty"`

	// progress and established
	OK       int      `json:"ok"`
	Failed   int      `json:"failed"`
	Failures failures `json:"failures"`
	// established
	FirstDialNs int64   `json:"first_dial_ns,omitempty"` // unix ns of the first connection attempt
	Last101Ns   int64   `json:"last_101_ns,omitempty"`   // unix ns of the last 101 read
	LatencyNs   []int64 `json:"latency_ns,omitempty"`    // handshake latency of each established connection

	// closed
	OpenAtClose   int      `json:"open_at_close"` // established connections still open when the hold ended
	Dropped       failures `json:"dropped"`       // connections the gateway closed during the hold, by cause
	PingsAnswered int      `json:"pings_answered"`
	DataFrames    int      `json:"data_frames"`  // unexpected data frames received while idle
	CleanClose    int      `json:"clean_close"`  // close replied to and socket ended by the gateway
	ForcedClose   int      `json:"forced_close"` // no close reply within -close-wait
}

// heldConn is one established connection of a worker.
type heldConn struct {
	c       net.Conn
	rc      syscall.RawConn // plain connections: the socket
	tc      *tls.Conn       // wss:// connections; its transport reads without blocking
	pending []byte          // start of a server frame not yet complete
	state   uint8
	gotEcho bool // the gateway answered our close frame
}

const (
	heldOpen    uint8 = iota
	heldClosing       // we sent a close frame
	heldDone          // the socket ended
)

// idlePool opens and holds one worker's connections. Its methods run on
// the worker's goroutine, except dialAll, which starts and waits for the
// dialers.
type idlePool struct {
	spec  workerSpec
	conns []heldConn

	ok, failed atomic.Int64

	// resultsMu guards the dial results merged by the dialers.
	resultsMu sync.Mutex
	failures  failures
	latency   []int64
	firstDial int64
	last101   int64

	dropped       failures
	pingsAnswered int
	dataFrames    int
	readBuf       []byte
}

func newIdlePool(spec workerSpec) *idlePool {
	return &idlePool{
		spec:    spec,
		conns:   make([]heldConn, spec.Count),
		latency: make([]int64, 0, spec.Count),
		readBuf: make([]byte, 4096),
	}
}

// dialAll opens the worker's connections with spec.Dialers parallel
// dialers and returns when every attempt has finished or ctx is done.
func (p *idlePool) dialAll(ctx context.Context) {
	d := newDialers(p.spec.Sources, p.spec.DialTimeout)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(p.spec.Dialers, p.spec.Count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []int64
			var fails failures
			var first, last int64
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= p.spec.Count {
					break
				}
				g := p.spec.Start + i
				t := p.spec.Targets[g%len(p.spec.Targets)]
				start := time.Now()
				if first == 0 {
					first = start.UnixNano()
				}
				c, rest, err := dialConn(ctx, d.pick(g/len(p.spec.Targets), t), t)
				if err != nil {
					fails.add(err)
					p.failed.Add(1)
					continue
				}
				end := time.Now()
				lat = append(lat, int64(end.Sub(start)))
				last = end.UnixNano()
				h, err := holdConn(c, rest)
				if err != nil {
					_ = c.Close()
					fails.add(err)
					p.failed.Add(1)
					continue
				}
				p.conns[i] = h
				p.ok.Add(1)
			}
			p.resultsMu.Lock()
			p.latency = append(p.latency, lat...)
			p.failures.merge(fails)
			if first != 0 && (p.firstDial == 0 || first < p.firstDial) {
				p.firstDial = first
			}
			p.last101 = max(p.last101, last)
			p.resultsMu.Unlock()
		}()
	}
	wg.Wait()
}

// holdConn returns the heldConn of an established connection, whose reads
// from now on do not block.
func holdConn(c net.Conn, rest []byte) (heldConn, error) {
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.NetConn().(*nbTransport).nonBlocking(); err != nil {
			return heldConn{}, err
		}
		return heldConn{c: c, tc: tc, pending: rest}, nil
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return heldConn{}, err
	}
	return heldConn{c: c, rc: rc, pending: rest}, nil
}

// read reads what h received without blocking: syscall.EAGAIN when there
// is nothing, n == 0 at the end of the stream.
func (h *heldConn) read(buf []byte) (int, error) {
	if h.tc != nil {
		n, err := h.tc.Read(buf)
		if err == io.EOF {
			err = nil
		}
		return n, err
	}
	var n int
	var rerr error
	err := h.rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf)
		return true
	})
	if err == nil {
		err = rerr
	}
	return n, err
}

// service reads what the gateway sent on h without blocking, answers pings
// and notes close frames and the end of the socket.
func (p *idlePool) service(h *heldConn) {
	for h.state != heldDone {
		n, err := h.read(p.readBuf)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			p.ended(h, classify(err), err.Error())
			return
		case n == 0:
			p.ended(h, "EOF without close frame", "")
			return
		}
		data := p.readBuf[:n]
		if len(h.pending) > 0 {
			data = append(h.pending, data...)
			h.pending = nil
		}
		for len(data) > 0 && h.state != heldDone {
			f, size, err := parseServerFrame(data)
			if err != nil {
				p.ended(h, "protocol error", err.Error())
				return
			}
			if size == 0 {
				h.pending = append([]byte(nil), data...)
				break
			}
			data = data[size:]
			p.frame(h, f)
		}
		// A TLS connection may hold decrypted records beyond this one.
		if h.tc == nil && n < len(p.readBuf) {
			return
		}
	}
}

func (p *idlePool) frame(h *heldConn, f serverFrame) {
	switch f.op {
	case wsproto.OpPing:
		if h.state == heldOpen {
			_ = h.c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := h.c.Write(clientFrame(nil, wsproto.OpPong, f.payload)); err == nil {
				p.pingsAnswered++
			}
		}
	case wsproto.OpClose:
		code := closeCode(f.payload)
		if h.state == heldClosing {
			h.gotEcho = true
			return
		}
		// The gateway closed a held connection: reply and count it.
		_ = h.c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = h.c.Write(closeFrame())
		p.ended(h, fmt.Sprintf("close %d", code), string(f.payload[min(2, len(f.payload)):]))
	case wsproto.OpPong:
	default:
		p.dataFrames++
	}
}

// ended records that h's socket ended for cause and closes it. A socket
// that ends after our close frame was answered is a clean close.
func (p *idlePool) ended(h *heldConn, cause, example string) {
	if h.state == heldOpen {
		p.dropped.addCause(cause, example, 1)
	}
	h.state = heldDone
	_ = h.c.Close()
}

// sweep services every open connection.
func (p *idlePool) sweep() {
	for i := range p.conns {
		if h := &p.conns[i]; h.c != nil && h.state == heldOpen {
			p.service(h)
		}
	}
}

// open counts the connections that are established and not ended.
func (p *idlePool) open() int {
	n := 0
	for i := range p.conns {
		if p.conns[i].c != nil && p.conns[i].state == heldOpen {
			n++
		}
	}
	return n
}

// closeAll sends a close frame (1000) on every open connection, waits up
// to wait for the gateway to answer and end each socket, and closes what
// is left.
func (p *idlePool) closeAll(wait time.Duration) (clean, forced int) {
	frame := closeFrame()
	for i := range p.conns {
		h := &p.conns[i]
		if h.c == nil || h.state != heldOpen {
			continue
		}
		_ = h.c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := h.c.Write(frame); err != nil {
			p.ended(h, classify(err), err.Error())
			continue
		}
		h.state = heldClosing
	}
	deadline := time.Now().Add(wait)
	for {
		closing := 0
		for i := range p.conns {
			h := &p.conns[i]
			if h.c == nil || h.state != heldClosing {
				continue
			}
			p.service(h)
			if h.state == heldDone {
				if h.gotEcho {
					clean++
				} else {
					forced++
				}
				continue
			}
			closing++
		}
		if closing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range p.conns {
		h := &p.conns[i]
		if h.c != nil && h.state == heldClosing {
			forced++
			h.state = heldDone
			_ = h.c.Close()
		}
	}
	return clean, forced
}

// closeNow closes every socket at once, for an aborted run.
func (p *idlePool) closeNow() {
	for i := range p.conns {
		if h := &p.conns[i]; h.c != nil && h.state != heldDone {
			h.state = heldDone
			_ = h.c.Close()
		}
	}
}

// runIdleWorker is "wsbench idle-worker": see the protocol above.
func runIdleWorker(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	spec, err := parseWorkerArgs(args, stderr)
	if err != nil {
		return err
	}
	var outMu sync.Mutex
	enc := json.NewEncoder(stdout)
	emit := func(m workerMsg) error {
		m.Worker = spec.ID
		outMu.Lock()
		defer outMu.Unlock()
		return enc.Encode(m)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The stdin reader ends with the process: a blocked read on the
	// parent's pipe cannot be interrupted, and EOF cancels the run.
	commands := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			commands <- strings.TrimSpace(sc.Text())
		}
		cancel()
	}()
	if err := emit(workerMsg{Type: "ready", PID: os.Getpid()}); err != nil {
		return err
	}
	if err := waitCommand(ctx, commands, "go"); err != nil {
		return err
	}

	p := newIdlePool(spec)
	dialed := make(chan struct{})
	go func() {
		defer close(dialed)
		p.dialAll(ctx)
	}()
	tick := time.NewTicker(time.Second)
dialing:
	for {
		select {
		case <-dialed:
			break dialing
		case <-tick.C:
			_ = emit(workerMsg{Type: "progress", OK: int(p.ok.Load()), Failed: int(p.failed.Load())})
		}
	}
	tick.Stop()
	if ctx.Err() != nil {
		p.closeNow()
		return ctx.Err()
	}
	if err := emit(workerMsg{
		Type: "established", OK: int(p.ok.Load()), Failed: int(p.failed.Load()), Failures: p.failures,
		FirstDialNs: p.firstDial, Last101Ns: p.last101, LatencyNs: p.latency,
	}); err != nil {
		p.closeNow()
		return err
	}

	keepalive := time.NewTicker(spec.Keepalive)
	defer keepalive.Stop()
	for hold := true; hold; {
		select {
		case <-ctx.Done():
			p.closeNow()
			return ctx.Err()
		case cmd := <-commands:
			hold = cmd != "close"
		case <-keepalive.C:
			p.sweep()
		}
	}
	p.sweep()
	m := workerMsg{Type: "closed", OpenAtClose: p.open()}
	m.CleanClose, m.ForcedClose = p.closeAll(spec.CloseWait)
	m.Dropped, m.PingsAnswered, m.DataFrames = p.dropped, p.pingsAnswered, p.dataFrames
	return emit(m)
}

func waitCommand(ctx context.Context, commands <-chan string, want string) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case cmd := <-commands:
			if cmd == want {
				return nil
			}
		}
	}
}
