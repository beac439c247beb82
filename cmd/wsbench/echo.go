//go:build linux

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/wsproto"
)

// seqDigits is the width of the zero-padded sequence number in a message.
const seqDigits = 10

// echoPayload appends the message with sequence number seq to dst:
// {"action":ACTION,"seq":"0000000042","pad":"xxx"}, padded to size bytes
// when size is larger than the message without padding. seq is a string
// so that the zero padding keeps the message valid JSON.
func echoPayload(dst []byte, action string, seq, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"action":"`...)
	dst = append(dst, action...)
	dst = append(dst, `","seq":"`...)
	var num [seqDigits]byte
	for i, v := seqDigits-1, seq; i >= 0; i, v = i-1, v/10 {
		num[i] = byte('0' + v%10)
	}
	dst = append(dst, num[:]...)
	dst = append(dst, `","pad":"`...)
	for pad := size - (len(dst) - start) - 2; pad > 0; pad-- {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// parseSeq returns the sequence number of a message made by echoPayload.
func parseSeq(msg []byte) (int, bool) {
	_, rest, ok := bytes.Cut(msg, []byte(`"seq":"`))
	if !ok || len(rest) < seqDigits {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:seqDigits]))
	return n, err == nil
}

// echoConn is one connection of an echo run.
type echoConn struct {
	c  net.Conn // *net.TCPConn, or *tls.Conn for wss://
	br *bufio.Reader

	// writeMu orders the frames written to c: messages and pongs.
	writeMu sync.Mutex

	// fifoMu guards fifo, the messages sent and not yet echoed (open loop).
	fifoMu sync.Mutex
	fifo   []sentMsg

	// Written by the connection's one reading goroutine.
	lat      []time.Duration // from the write of each message to its echo
	latSched []time.Duration // from each message's scheduled send time (open loop)
}

type sentMsg struct {
	seq  int
	at   time.Time // scheduled send time
	sent time.Time // when it was written
}

func (e *echoConn) write(frame []byte) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	_, err := e.c.Write(frame)
	return err
}

// errClosedByGateway is a close frame from the gateway during an echo run.
var errClosedByGateway = errors.New("gateway closed the connection")

// readMessage reads frames until a whole data message has arrived,
// answering pings on the way; with pong set, it returns the payload of the
// next pong instead. buf is reused for the result.
func (e *echoConn) readMessage(buf []byte, pong bool) ([]byte, error) {
	msg := buf[:0]
	var hdr [10]byte
	for {
		if _, err := io.ReadFull(e.br, hdr[:2]); err != nil {
			return nil, err
		}
		if hdr[1]&0x80 != 0 {
			return nil, errMaskedServerFrame
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(e.br, hdr[2:4]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(e.br, hdr[2:10]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(hdr[2:10])
			if n > 16<<20 {
				return nil, fmt.Errorf("server frame of %d bytes", n)
			}
		}
		op, fin := wsproto.Opcode(hdr[0]&0x0f), hdr[0]&0x80 != 0
		if op.IsControl() {
			var ctl [125]byte
			if n > uint64(len(ctl)) {
				return nil, fmt.Errorf("control frame of %d bytes", n)
			}
			if _, err := io.ReadFull(e.br, ctl[:n]); err != nil {
				return nil, err
			}
			switch op {
			case wsproto.OpPing:
				if err := e.write(clientFrame(nil, wsproto.OpPong, ctl[:n])); err != nil {
					return nil, err
				}
			case wsproto.OpPong:
				if pong {
					return append(msg, ctl[:n]...), nil
				}
			case wsproto.OpClose:
				return nil, fmt.Errorf("%w with code %d", errClosedByGateway, closeCode(ctl[:n]))
			}
			continue
		}
		at := len(msg)
		msg = append(msg, make([]byte, n)...)
		if _, err := io.ReadFull(e.br, msg[at:]); err != nil {
			return nil, err
		}
		if fin {
			return msg, nil
		}
	}
}

// echoResult is what the connections of an echo run counted.
type echoResult struct {
	sent, received, mismatched int64
	errs                       failures
	firstSend, lastSend        time.Time
	done                       time.Time
	lat                        []time.Duration // measured round trips, from write to echo
	latSched                   []time.Duration // from scheduled send time to echo (open loop)
	cpu                        cpuSnapshot     // CPU used during the run
	backend                    string          // -backend
	backendCPU                 time.Duration   // CPU of the backend's processes during the run
	timeWait                   [2]int          // TIME-WAIT sockets to the backend before and after the run
}

func runEcho(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseEchoOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	printf := func(format string, args ...any) { fmt.Fprintf(stdout, format, args...) }

	pids := o.pidList
	var be *echoBackend
	var workdir string
	if o.gateway != "" || o.peer != "" {
		if workdir, err = makeWorkdir(o.workdir); err != nil {
			return err
		}
		if be, err = o.startBackend(ctx, workdir); err != nil {
			return err
		}
		if be.proc != nil {
			defer be.proc.stop()
			printf("backend: %s, pid %d, %s, log %s\n", o.backend, be.proc.pid(), be.proc.addr, be.log)
		}
	}
	if o.gateway != "" {
		o.enableProfile(&o.commonOptions)
		gws, started, stop, err := startReported(ctx, &o.commonOptions, workdir, printf)
		if err != nil {
			return err
		}
		pids = append(pids, started...)
		defer func() {
			stop()
			if be.port != 0 {
				tw, _ := timeWait(be.port)
				printf("TIME-WAIT sockets to the backend after the gateway exited: %d (it closes its pooled connections)\n", tw)
			}
		}()
		be.gateway = gws[0].pid()
	}
	if o.peer != "" {
		var rpcURL string
		if be.proc != nil {
			rpcURL = "http://" + be.proc.addr + centrifugoRPCPath
		}
		p, err := o.startPeer(ctx, workdir, rpcURL)
		if err != nil {
			return err
		}
		defer func() {
			res := stopGateways([]*gatewayProc{p}, 30*time.Second)
			printf("%s: %s after SIGTERM (%s)\n", o.peer, exitText(res[0].Err), fmtDur(res[0].Took))
			if be.port != 0 {
				tw, _ := timeWait(be.port)
				printf("TIME-WAIT sockets to the backend after %s exited: %d\n", o.peer, tw)
			}
		}()
		pids = append(pids, p.pid())
		printf("%s: pid %d, %s, config %s, log %s\n", o.peer, p.pid(), o.targets[0].URL, p.config, p.log)
	}
	total := o.warmup + o.messages
	what := fmt.Sprintf("text messages with action %q, through route selection and the route's integration", o.action)
	if o.ping {
		what = "ping frames, answered with pongs by the gateway's event loop (no route selection, no integration)"
	}
	if o.peer != "" {
		what = fmt.Sprintf("the data of %s rpc commands with method %q, ", o.peer, o.action)
		if o.backend == backendHTTP {
			what += "through its RPC proxy to the backend, which echoes the data"
		} else {
			what += "answered by its built-in RPC ping with an empty result"
		}
	}
	printf("wsbench echo: %d connections, %d measured after %d warm-up, %d bytes each: %s\n",
		o.n, o.messages, o.warmup, o.size, what)
	printf("environment: %s; load average %s; %d CPUs\n", envSummary(), loadAverage(), runtime.NumCPU())
	printf("%s\n", o.authSummary())
	if o.rate == 0 {
		printf("mode: closed loop: each connection sends its next message when the echo of the previous one has arrived (%d in flight); RTT from write to echo\n", o.n)
	} else {
		printf("mode: open loop: %.0f messages/s offered in total, round robin over the connections; RTT from each write, and latency from each scheduled send time\n", o.rate)
	}

	conns, fails := dialEcho(ctx, o)
	defer func() {
		frame := closeFrame()
		for _, e := range conns {
			_ = e.c.SetWriteDeadline(time.Now().Add(time.Second))
			_ = e.write(frame)
			_ = e.c.Close()
		}
	}()
	if o.peer != "" {
		var refused failures
		conns, refused = centrifugoConnect(conns, o.token, o.dialTimeout)
		fails.merge(refused)
	}
	printf("connect: %d of %d established; failures: %s\n", len(conns), o.n, fails.String())
	if len(conns) == 0 {
		return errors.New("no connection established")
	}
	if dl, ok := ctx.Deadline(); ok {
		for _, e := range conns {
			_ = e.c.SetDeadline(dl)
		}
	}

	profiled := o.startProfile(ctx, o.mgmtPort, printf, "the first message")
	tw0 := be.timeWait()
	cpu0 := takeCPU(pids)
	be0 := be.cpu()
	var res *echoResult
	if o.rate == 0 {
		res = closedLoop(ctx, o, conns, total)
	} else {
		res = openLoop(ctx, o, conns, total)
	}
	res.cpu = takeCPU(pids).since(cpu0)
	res.backendCPU = be.cpu() - be0
	res.timeWait = [2]int{tw0, be.timeWait()}
	res.backend = o.backend
	profiled()
	for _, e := range conns {
		res.lat = append(res.lat, e.lat...)
		res.latSched = append(res.latSched, e.latSched...)
	}
	res.print(stdout, o, len(conns), pids)
	if res.received < int64(total) {
		return fmt.Errorf("%d of %d messages were not echoed", int64(total)-res.received, total)
	}
	return nil
}

// cpuSnapshot is the CPU time used so far by the gateways, by wsbench
// itself and by the whole machine.
type cpuSnapshot struct{ gateway, self, system time.Duration }

func takeCPU(gateways []int) cpuSnapshot {
	var c cpuSnapshot
	c.gateway, _ = cpuTime(gateways)
	c.self, _ = cpuTime([]int{os.Getpid()})
	c.system, _, _ = systemCPU()
	return c
}

func (c cpuSnapshot) since(before cpuSnapshot) cpuSnapshot {
	return cpuSnapshot{c.gateway - before.gateway, c.self - before.self, c.system - before.system}
}

func (res *echoResult) print(w io.Writer, o *echoOptions, conns int, pids []int) {
	printf := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	sum := summarize(res.lat)
	elapsed := res.done.Sub(res.firstSend)
	printf("\nresults\n")
	printf("  messages       %d sent, %d echoed, %d echoes differed from the message sent\n", res.sent, res.received, res.mismatched)
	printf("  errors         %s\n", res.errs.String())
	if elapsed > 0 {
		printf("  throughput     %.0f echoes/s over %s", float64(res.received)/elapsed.Seconds(), fmtDur(elapsed))
		if sendSpan := res.lastSend.Sub(res.firstSend); o.rate > 0 && sendSpan > 0 {
			printf(" (offered %.0f/s, sent at %.0f/s)", o.rate, float64(res.sent-1)/sendSpan.Seconds())
		}
		printf("\n")
	}
	printf("  RTT            %s\n", sum)
	printf("                 (from writing the frame to reading the whole echo)\n")
	var sched latencySummary
	if len(res.latSched) > 0 {
		sched = summarize(res.latSched)
		printf("  from schedule  %s\n", sched)
		printf("                 (from the scheduled send time: adds the sender's lag, which Go's ~1ms timer granularity\n")
		printf("                 makes up to 1ms when the interval between messages is shorter)\n")
	}
	if len(pids) > 0 && elapsed > 0 {
		st, _ := sumStatus(pids)
		gw := res.cpu.gateway
		printf("  %-14s CPU %s over %s (%.0f%% of one core; %s per echo), VmRSS %s, threads %d\n",
			o.server(), fmtDur(gw), fmtDur(elapsed), 100*gw.Seconds()/elapsed.Seconds(), fmtDur(gw/time.Duration(max(res.received, 1))),
			fmtBytes(st.VmRSS), st.Threads)
		ncpu := runtime.NumCPU()
		per := func(d time.Duration) string { return fmtDur(d / time.Duration(max(res.received, 1))) }
		if res.backend != backendMock && res.backend != "" {
			printf("  backend        %s: CPU %s (%s per echo)\n", res.backend, fmtDur(res.backendCPU), per(res.backendCPU))
			if res.backend != backendLocal {
				printf("  TIME-WAIT      %d sockets to the backend's port before the run, %d after it\n", res.timeWait[0], res.timeWait[1])
			}
		}
		printf("  CPU            wsbench %s (%s per echo), all other processes %s (%d CPUs = %s)\n", fmtDur(res.cpu.self), per(res.cpu.self),
			fmtDur(max(res.cpu.system-gw-res.cpu.self-res.backendCPU, 0)), ncpu, fmtDur(time.Duration(ncpu)*elapsed))
	}
	mode := "closed"
	if o.rate > 0 {
		mode = fmt.Sprintf("open(%.0f/s)", o.rate)
	}
	if o.ping {
		mode += ",ping"
	}
	printf("\nsummary: mode=%s n=%d messages=%d size=%d measured=%d rtt_p50=%s p90=%s p99=%s p99.9=%s max=%s echoes_per_s=%.0f\n",
		mode, conns, o.messages, o.size, sum.N, fmtDur(sum.P50), fmtDur(sum.P90), fmtDur(sum.P99), fmtDur(sum.P999), fmtDur(sum.Max),
		float64(res.received)/max(elapsed.Seconds(), 1e-9))
	if res.backend != "" && len(pids) > 0 {
		n := time.Duration(max(res.received, 1))
		printf("summary (cpu): backend=%s gateway_cpu_per_msg=%s backend_cpu_per_msg=%s wsbench_cpu_per_msg=%s time_wait_before=%d time_wait_after=%d load=%s server=%s\n",
			res.backend, fmtDur(res.cpu.gateway/n), fmtDur(res.backendCPU/n), fmtDur(res.cpu.self/n), res.timeWait[0], res.timeWait[1],
			strings.ReplaceAll(loadAverage(), " ", ","), cmp.Or(o.peer, "wsgate"))
	}
	if sched.N > 0 {
		printf("summary (from schedule): p50=%s p90=%s p99=%s p99.9=%s max=%s\n",
			fmtDur(sched.P50), fmtDur(sched.P90), fmtDur(sched.P99), fmtDur(sched.P999), fmtDur(sched.Max))
	}
}

// dialEcho opens the connections of an echo run with o.dialers parallel
// dialers.
func dialEcho(ctx context.Context, o *echoOptions) ([]*echoConn, failures) {
	return dialConns(ctx, &o.commonOptions, o.n)
}

// dialConns opens n connections to o's targets, in turn, with o.dialers
// parallel dialers. It returns those established and the failures of the
// others.
func dialConns(ctx context.Context, o *commonOptions, n int) ([]*echoConn, failures) {
	var srcs []net.IP
	for k := range o.sources {
		srcs = append(srcs, nthSource(o.firstSrc, k))
	}
	d := newDialers(srcs, o.dialTimeout)
	conns := make([]*echoConn, n)
	var next atomic.Int64
	var mu sync.Mutex
	var fails failures
	var wg sync.WaitGroup
	for range min(o.dialers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := o.targets[i%len(o.targets)]
				c, rest, err := dialConn(ctx, d.pick(i/len(o.targets), t), t)
				if err != nil {
					mu.Lock()
					fails.add(err)
					mu.Unlock()
					continue
				}
				var r io.Reader = c
				if len(rest) > 0 {
					r = io.MultiReader(bytes.NewReader(rest), c)
				}
				conns[i] = &echoConn{c: c, br: bufio.NewReaderSize(r, 4096)}
			}
		}()
	}
	wg.Wait()
	established := conns[:0]
	for _, e := range conns {
		if e != nil {
			established = append(established, e)
		}
	}
	return established, fails
}

// closedLoop runs total messages with one in flight per connection.
func closedLoop(ctx context.Context, o *echoOptions, conns []*echoConn, total int) *echoResult {
	res := &echoResult{firstSend: time.Now()}
	var next, sent, received, mismatched atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, e := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var payload, frame, buf, req, reply []byte
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= total {
					return
				}
				payload = echoPayload(payload[:0], o.action, k, o.size)
				msg, want := payload, payload
				if o.peer != "" {
					req, reply = o.centrifugoMessage(req[:0], reply[:0], k, payload)
					msg, want = req, reply
				}
				frame = clientFrame(frame[:0], o.opcode(), msg)
				t0 := time.Now()
				err := e.write(frame)
				if err == nil {
					sent.Add(1)
					if o.peer != "" {
						buf, err = e.readCentrifugo(buf)
					} else {
						buf, err = e.readMessage(buf, o.ping)
					}
				}
				if err != nil {
					mu.Lock()
					res.errs.add(err)
					mu.Unlock()
					return
				}
				rtt := time.Since(t0)
				received.Add(1)
				if !bytes.Equal(buf, want) {
					mismatched.Add(1)
					if o.peer != "" {
						err := checkCentrifugoReply(buf, uint32(k+centrifugoFirstRPCID), false)
						if err == nil {
							err = fmt.Errorf("reply %.200q, want %.200q", buf, want)
						}
						mu.Lock()
						res.errs.addCause("unexpected reply", err.Error(), 1)
						mu.Unlock()
					}
				}
				if k >= o.warmup {
					e.lat = append(e.lat, rtt)
				}
			}
		}()
	}
	wg.Wait()
	res.done = time.Now()
	res.lastSend = res.done
	res.sent, res.received, res.mismatched = sent.Load(), received.Load(), mismatched.Load()
	return res
}

// openLoop sends total messages at o.rate per second on a fixed schedule,
// round robin over conns, while one goroutine per connection reads the
// echoes.
func openLoop(ctx context.Context, o *echoOptions, conns []*echoConn, total int) *echoResult {
	res := &echoResult{}
	var received, mismatched atomic.Int64
	allIn := make(chan struct{})
	var mu sync.Mutex
	var wg sync.WaitGroup
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	for _, e := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				var err error
				buf, err = e.readMessage(buf, o.ping)
				now := time.Now()
				if err != nil {
					if readCtx.Err() == nil {
						mu.Lock()
						res.errs.add(err)
						mu.Unlock()
					}
					return
				}
				seq, ok := parseSeq(buf)
				e.fifoMu.Lock()
				var m sentMsg
				if len(e.fifo) > 0 {
					m = e.fifo[0]
					e.fifo = e.fifo[1:]
				}
				e.fifoMu.Unlock()
				if !ok || seq != m.seq {
					mismatched.Add(1)
				}
				if m.seq >= o.warmup {
					e.lat = append(e.lat, now.Sub(m.sent))
					e.latSched = append(e.latSched, now.Sub(m.at))
				}
				if received.Add(1) == int64(total) {
					close(allIn)
				}
			}
		}()
	}
	// Unblock the readers once the run is over: a past deadline makes
	// their reads return.
	defer func() {
		stopReading()
		for _, e := range conns {
			_ = e.c.SetReadDeadline(time.Unix(1, 0))
		}
		wg.Wait()
	}()

	interval := float64(time.Second) / o.rate
	var payload, frame []byte
	res.firstSend = time.Now()
	for k := 0; k < total && ctx.Err() == nil; k++ {
		at := res.firstSend.Add(time.Duration(float64(k) * interval))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		e := conns[k%len(conns)]
		payload = echoPayload(payload[:0], o.action, k, o.size)
		frame = clientFrame(frame[:0], o.opcode(), payload)
		e.fifoMu.Lock()
		e.fifo = append(e.fifo, sentMsg{seq: k, at: at, sent: time.Now()})
		e.fifoMu.Unlock()
		if err := e.write(frame); err != nil {
			mu.Lock()
			res.errs.add(err)
			mu.Unlock()
			break
		}
		res.sent++
		res.lastSend = time.Now()
	}
	// Wait for the echoes of what was sent: all of it, or less when
	// sending stopped early.
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
wait:
	for received.Load() < res.sent {
		select {
		case <-allIn:
			break wait
		case <-poll.C:
		case <-ctx.Done():
			mu.Lock()
			res.errs.addCause(causeTimeout, "run ended before every echo arrived", 1)
			mu.Unlock()
			break wait
		}
	}
	res.done = time.Now()
	res.received, res.mismatched = received.Load(), mismatched.Load()
	return res
}

// echoBackend is the backend of an echo run: a wsbench backend process
// (http, h2c, lambda), the local function processes the gateway starts
// (local), or nothing (mock).
type echoBackend struct {
	proc    *backendProc
	log     string
	port    int // the backend's port; 0 when it has none
	local   bool
	gateway int // pid of the gateway whose children are local functions
}

// startBackend starts the backend of -backend and sets route x's
// integration to it.
func (o *echoOptions) startBackend(ctx context.Context, workdir string) (*echoBackend, error) {
	be := &echoBackend{}
	switch o.backend {
	case backendMock:
		return be, nil
	case backendLocal:
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		be.local = true
		o.routeX = backendIntegration(o.backend, "", []string{exe, "lambda-function"}, o.backendConcurrency)
		return be, nil
	}
	be.log = filepath.Join(workdir, "backend.log")
	p, err := startBackend(ctx, be.log)
	if err != nil {
		return nil, err
	}
	be.proc, be.port = p, p.port
	o.routeX = backendIntegration(o.backend, p.addr, nil, 0)
	return be, nil
}

// cpu returns the CPU time the backend's processes have used so far. The
// local functions are the gateway's children; one started during the run
// counts from its start.
func (be *echoBackend) cpu() time.Duration {
	var pids []int
	switch {
	case be == nil:
		return 0
	case be.proc != nil:
		pids = []int{be.proc.pid()}
	case be.local && be.gateway != 0:
		pids = childPIDs(be.gateway)
	}
	d, _ := cpuTime(pids)
	return d
}

// timeWait counts the TIME-WAIT sockets to the backend's port.
func (be *echoBackend) timeWait() int {
	if be == nil || be.port == 0 {
		return 0
	}
	n, _ := timeWait(be.port)
	return n
}
