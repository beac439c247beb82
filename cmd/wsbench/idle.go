//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// workerProc is one load worker child process.
type workerProc struct {
	spec  workerSpec
	cmd   *exec.Cmd
	stdin io.WriteCloser
	last  workerMsg // latest progress
}

// workerEvent is a line from a worker, or the end of its output.
type workerEvent struct {
	worker int
	msg    workerMsg
	err    error // the line did not decode, or reading failed
	eof    bool
}

// workerSet runs the load workers of an idle run and collects their
// lines. Every reader goroutine it starts ends with its worker's stdout;
// close waits for them.
type workerSet struct {
	procs  []*workerProc
	events chan workerEvent
	open   int // workers whose output has not ended
}

func startWorkers(specs []workerSpec, stderr io.Writer) (*workerSet, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for the load workers: %w", err)
	}
	ws := &workerSet{events: make(chan workerEvent, 64*len(specs))}
	for _, spec := range specs {
		cmd := exec.Command(self, spec.args()...)
		cmd.Stderr = stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			ws.close()
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			ws.close()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			ws.close()
			return nil, fmt.Errorf("start load worker %d: %w", spec.ID, err)
		}
		w := &workerProc{spec: spec, cmd: cmd, stdin: stdin}
		ws.procs = append(ws.procs, w)
		ws.open++
		go ws.read(spec.ID, stdout)
	}
	return ws, nil
}

func (ws *workerSet) read(id int, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var m workerMsg
		err := json.Unmarshal(sc.Bytes(), &m)
		ws.events <- workerEvent{worker: id, msg: m, err: err}
	}
	ws.events <- workerEvent{worker: id, err: sc.Err(), eof: true}
}

func (ws *workerSet) pids() []int {
	var pids []int
	for _, w := range ws.procs {
		pids = append(pids, w.cmd.Process.Pid)
	}
	return pids
}

func (ws *workerSet) send(cmd string) error {
	var errs []error
	for _, w := range ws.procs {
		if _, err := io.WriteString(w.stdin, cmd+"\n"); err != nil {
			errs = append(errs, fmt.Errorf("load worker %d: %w", w.spec.ID, err))
		}
	}
	return errors.Join(errs...)
}

// await collects lines until every worker has sent one of type typ, and
// returns them by worker. tick runs about every 200ms while waiting; an
// error from it (a gateway died) ends the wait.
func (ws *workerSet) await(ctx context.Context, typ string, tick func() error) ([]workerMsg, error) {
	got := make([]workerMsg, len(ws.procs))
	have := make([]bool, len(ws.procs))
	missing := len(ws.procs)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for missing > 0 {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the load workers (%s): %w", typ, ctx.Err())
		case <-t.C:
			if tick != nil {
				if err := tick(); err != nil {
					return nil, err
				}
			}
		case ev := <-ws.events:
			w := ws.procs[ev.worker]
			switch {
			case ev.eof:
				ws.open--
				if have[ev.worker] {
					continue // it has said what was awaited, and exited
				}
				return nil, fmt.Errorf("load worker %d ended before %q: %v (%v)", ev.worker, typ, ev.err, waitText(w.cmd))
			case ev.err != nil:
				return nil, fmt.Errorf("load worker %d: bad line: %w", ev.worker, ev.err)
			case ev.msg.Type == "progress":
				w.last = ev.msg
			case ev.msg.Type == typ && !have[ev.worker]:
				got[ev.worker], have[ev.worker] = ev.msg, true
				w.last = ev.msg
				missing--
			}
		}
	}
	return got, nil
}

// progress sums the latest counts of every worker.
func (ws *workerSet) progress() (ok, failed int) {
	for _, w := range ws.procs {
		ok += w.last.OK
		failed += w.last.Failed
	}
	return ok, failed
}

// close ends every worker: stdin EOF makes a worker close its sockets and
// exit; one that has not exited after 10s is killed. It waits for the
// reader goroutines.
func (ws *workerSet) close() {
	for _, w := range ws.procs {
		_ = w.stdin.Close()
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for ws.open > 0 {
		select {
		case ev := <-ws.events:
			if ev.eof {
				ws.open--
			}
		case <-timer.C:
			for _, w := range ws.procs {
				_ = w.cmd.Process.Kill()
			}
		}
	}
	for _, w := range ws.procs {
		_ = w.cmd.Wait()
	}
}

func waitText(cmd *exec.Cmd) string {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitText(err)
	case <-time.After(2 * time.Second):
		return "still running"
	}
}

// idleRun is one "wsbench idle" run.
type idleRun struct {
	o        *idleOptions
	out      io.Writer
	errw     io.Writer
	gateways []*gatewayProc
	pids     []int // gateway processes measured
	workers  *workerSet

	base     rssReading // gateway RSS before the connections
	baseFDs  int
	baseSock sockstat
	ok       int      // connections established
	summary  []string // the main figures, printed last on one line
}

// rssInterval is the time between two RSS samples.
const rssInterval = 500 * time.Millisecond

func runIdle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseIdleOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	r := &idleRun{o: o, out: stdout, errw: stderr, pids: o.pidList}
	err = r.run(ctx)
	if r.workers != nil {
		r.workers.close()
	}
	if len(r.gateways) > 0 {
		r.stopGateways()
	}
	if len(r.summary) > 0 {
		r.printf("\nsummary: %s\n", strings.Join(r.summary, " "))
	}
	return err
}

// gatewaysAlive reports the first gateway that has exited.
func (r *idleRun) gatewaysAlive() error {
	for _, g := range r.gateways {
		if err := g.exited(); err != nil {
			return err
		}
	}
	return nil
}

func (r *idleRun) printf(format string, args ...any) {
	fmt.Fprintf(r.out, format, args...)
}

func (r *idleRun) run(ctx context.Context) error {
	for _, phase := range []func(context.Context) error{r.setup, r.connect, r.measure, r.hold, r.close} {
		if err := phase(ctx); err != nil {
			return err
		}
	}
	return nil
}

// setup starts the gateways, reads their baseline and starts the load
// workers.
func (r *idleRun) setup(ctx context.Context) error {
	o := r.o
	r.printf("wsbench idle: %d connections, %d load worker(s), %d dialers in total, %d source address(es) per worker from %s, dial timeout %s\n",
		o.n, o.workers, o.dialers, o.sources, o.firstSrc, o.dialTimeout)
	r.printf("environment: %s; load average %s; %d CPUs\n", envSummary(), loadAverage(), runtime.NumCPU())
	r.printf("%s\n", o.authSummary())
	if o.gateway != "" {
		workdir, err := makeWorkdir(o.workdir)
		if err != nil {
			return err
		}
		r.gateways, err = startGateways(ctx, &o.commonOptions, workdir)
		if err != nil {
			return err
		}
		for _, g := range r.gateways {
			r.pids = append(r.pids, g.pid())
			r.printf("gateway %d: pid %d, ws://%s/, config %s, log %s\n", g.index, g.pid(), g.addr, g.config, g.log)
		}
	} else {
		for _, t := range o.targets {
			r.printf("target: %s\n", t.URL)
		}
		if len(r.pids) == 0 {
			r.printf("gateway memory: not measured (give -pid or let wsbench start the gateway with -gateway)\n")
		}
	}
	if len(r.pids) > 0 {
		var err error
		if r.base, err = settleRSS(ctx, r.pids, rssInterval, o.settle); err != nil {
			return fmt.Errorf("read gateway RSS: %w", err)
		}
		r.baseFDs, _ = countFDs(r.pids)
	}
	r.baseSock, _ = readSockstat()
	var err error
	if r.workers, err = startWorkers(r.workerSpecs(), r.errw); err != nil {
		return err
	}
	_, err = r.workers.await(ctx, "ready", r.gatewaysAlive)
	return err
}

// connect lets the workers dial and reports how the connections were
// established.
func (r *idleRun) connect(ctx context.Context) error {
	o := r.o
	cpuGW0, _ := cpuTime(r.pids)
	cpuW0, _ := cpuTime(r.workers.pids())
	sys0, _, _ := systemCPU()
	net0 := netCounters()
	start := time.Now()
	if err := r.workers.send("go"); err != nil {
		return err
	}
	lastPrint := time.Now()
	est, err := r.workers.await(ctx, "established", func() error {
		if time.Since(lastPrint) >= 2*time.Second {
			lastPrint = time.Now()
			ok, failed := r.workers.progress()
			fmt.Fprintf(r.errw, "connecting: %d/%d established, %d failed, %s\n", ok, o.n, failed, time.Since(start).Round(time.Millisecond))
		}
		return r.gatewaysAlive()
	})
	if err != nil {
		return err
	}
	wall := time.Since(start)
	cpuGW1, _ := cpuTime(r.pids)
	cpuW1, _ := cpuTime(r.workers.pids())
	sys1, _, _ := systemCPU()
	net1 := netCounters()

	failed := 0
	var fails failures
	var lat []time.Duration
	var first, last int64
	for _, m := range est {
		r.ok += m.OK
		failed += m.Failed
		fails.merge(m.Failures)
		for _, ns := range m.LatencyNs {
			lat = append(lat, time.Duration(ns))
		}
		if m.FirstDialNs != 0 && (first == 0 || m.FirstDialNs < first) {
			first = m.FirstDialNs
		}
		last = max(last, m.Last101Ns)
	}
	span := time.Duration(last - first)
	lsum := summarize(lat)
	r.printf("\nconnect\n")
	r.printf("  established    %d of %d (%d failed)\n", r.ok, o.n, failed)
	r.printf("  failures       %s\n", fails.String())
	rate := 0.0
	if r.ok > 0 && span > 0 {
		rate = float64(r.ok) / span.Seconds()
		r.printf("  span           %s from the first dial to the last 101\n", fmtDur(span))
		r.printf("  rate           %.0f connections/s (established / span)\n", rate)
	}
	r.printf("  handshake      %s\n", lsum)
	r.printf("                 (connect() + upgrade request + 101 response, per connection)\n")
	gwCPU, wCPU := cpuGW1-cpuGW0, cpuW1-cpuW0
	other := (sys1 - sys0) - gwCPU - wCPU
	ncpu := runtime.NumCPU()
	r.printf("  CPU            gateway %s, load workers %s, all other processes %s, over %s wall (%d CPUs = %s)\n",
		fmtDur(gwCPU), fmtDur(wCPU), fmtDur(max(other, 0)), fmtDur(wall), ncpu, fmtDur(time.Duration(ncpu)*wall))
	if len(r.pids) > 0 && r.ok > 0 {
		r.printf("                 gateway CPU per connection %s\n", fmtDur(gwCPU/time.Duration(r.ok)))
	}
	r.printf("  kernel         %s\n", counterDeltas(net0, net1, "TcpExt.ListenOverflows", "TcpExt.ListenDrops",
		"TcpExt.TCPReqQFullDrop", "TcpExt.TCPTimeouts", "Tcp.RetransSegs", "Tcp.AttemptFails", "Tcp.EstabResets"))
	r.summary = append(r.summary, fmt.Sprintf("n=%d established=%d failed=%d conn_per_s=%.0f handshake_p50=%s p99=%s max=%s",
		o.n, r.ok, failed, rate, fmtDur(lsum.P50), fmtDur(lsum.P99), fmtDur(lsum.Max)))
	return nil
}

// measure reads the gateways' memory once it has settled after the
// connections were established.
func (r *idleRun) measure(ctx context.Context) error {
	if len(r.pids) == 0 {
		return nil
	}
	after, err := settleRSS(ctx, r.pids, rssInterval, r.o.settle)
	if err != nil {
		return fmt.Errorf("read gateway RSS: %w", err)
	}
	fds, _ := countFDs(r.pids)
	sock, _ := readSockstat()
	base := r.base
	delta := after.Value() - base.Value()
	r.printf("\ngateway memory (VmRSS of /proc/PID/status, summed over %d process(es))\n", len(r.pids))
	r.printf("  baseline       %s (%s)\n", fmtBytes(base.Value()), base.Describe())
	r.printf("  established    %s (%s)\n", fmtBytes(after.Value()), after.Describe())
	r.printf("  samples        %s\n", fmtSamples(after.Samples))
	r.printf("  delta          %s\n", fmtBytes(delta))
	perConn := 0.0
	if r.ok > 0 {
		perConn = float64(delta) / float64(r.ok)
		anon := after.Status.RssAnon - base.Status.RssAnon
		r.printf("  per connection %.0f bytes = %.2f KiB (delta / %d established)\n", perConn, perConn/1024, r.ok)
		r.printf("  RssAnon delta  %s = %.2f KiB per connection\n", fmtBytes(anon), float64(anon)/float64(r.ok)/1024)
	}
	r.printf("  peak (VmHWM)   %s\n", fmtBytes(after.Status.VmHWM))
	r.printf("  threads        %d (baseline %d)\n", after.Status.Threads, base.Status.Threads)
	r.printf("  open fds       %d (baseline %d)\n", fds, r.baseFDs)
	r.printf("  kernel TCP     %s (before: %s); socket buffers are kernel memory, not in any RSS\n", sock, r.baseSock)
	r.printGC()
	r.summary = append(r.summary, fmt.Sprintf("rss_base=%s rss_established=%s rss_per_conn=%.0fB",
		fmtBytes(base.Value()), fmtBytes(after.Value()), perConn))
	return nil
}

// hold keeps the connections open for -hold and reads the gateways'
// memory at its end.
func (r *idleRun) hold(ctx context.Context) error {
	if r.o.hold > 0 {
		fmt.Fprintf(r.errw, "holding %d connections for %s\n", r.ok, r.o.hold)
		if err := r.sleep(ctx, r.o.hold); err != nil {
			return err
		}
	}
	if len(r.pids) == 0 {
		return nil
	}
	st, err := sumStatus(r.pids)
	if err != nil {
		return fmt.Errorf("read gateway RSS: %w", err)
	}
	fds, _ := countFDs(r.pids)
	perConn := float64(st.VmRSS-r.base.Value()) / float64(max(r.ok, 1))
	r.printf("\nend of hold\n")
	r.printf("  VmRSS          %s (one sample; %.0f bytes per connection against the baseline)\n", fmtBytes(st.VmRSS), perConn)
	r.printf("  open fds       %d\n", fds)
	r.printGC()
	r.summary = append(r.summary, fmt.Sprintf("rss_end_of_hold=%s (%.0fB/conn)", fmtBytes(st.VmRSS), perConn))
	return nil
}

// close has the workers close their connections, and checks that the
// gateways released them.
func (r *idleRun) close(ctx context.Context) error {
	if err := r.workers.send("close"); err != nil {
		return err
	}
	closed, err := r.workers.await(ctx, "closed", r.gatewaysAlive)
	if err != nil {
		return err
	}
	var dropped failures
	open, clean, forced, pings, data := 0, 0, 0, 0, 0
	for _, m := range closed {
		open += m.OpenAtClose
		clean += m.CleanClose
		forced += m.ForcedClose
		pings += m.PingsAnswered
		data += m.DataFrames
		dropped.merge(m.Dropped)
	}
	r.printf("\nhold %s\n", r.o.hold)
	r.printf("  still open     %d of %d established\n", open, r.ok)
	r.printf("  closed by gateway during hold: %s\n", dropped.String())
	r.printf("  pings answered %d, unexpected data frames %d\n", pings, data)
	r.printf("  close          %d clean (close 1000 answered, socket ended by the gateway), %d without reply within 3s\n", clean, forced)
	r.workers.close()
	r.workers = nil
	r.summary = append(r.summary, fmt.Sprintf("open_at_end=%d gateway_processes=%d workers=%d", open, len(r.o.targets), r.o.workers))
	if len(r.pids) == 0 {
		return nil
	}
	closedRSS, err := settleRSS(ctx, r.pids, rssInterval, r.o.settle)
	if err != nil {
		return fmt.Errorf("read gateway RSS: %w", err)
	}
	fds, _ := countFDs(r.pids)
	sock, _ := readSockstat()
	r.printf("\nafter close\n")
	r.printf("  VmRSS          %s (%s)\n", fmtBytes(closedRSS.Value()), closedRSS.Describe())
	r.printf("  open fds       %d (baseline %d)\n", fds, r.baseFDs)
	r.printf("  kernel TCP     %s\n", sock)
	return nil
}

// printGC prints each gateway's last gctrace line, when -gctrace is on.
func (r *idleRun) printGC() {
	if !r.o.gctrace {
		return
	}
	for _, g := range r.gateways {
		if line := g.lastGC(); line != "" {
			r.printf("  last GC %d      %s\n", g.index, line)
		}
	}
}

// sleep waits d while watching the gateways and ctx.
func (r *idleRun) sleep(ctx context.Context, d time.Duration) error {
	end := time.NewTimer(d)
	defer end.Stop()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			return nil
		case <-t.C:
			if err := r.gatewaysAlive(); err != nil {
				return err
			}
		}
	}
}

func (r *idleRun) stopGateways() {
	res := stopGateways(r.gateways, 30*time.Second)
	r.printf("\ngateway shutdown (SIGTERM)\n")
	for i, g := range r.gateways {
		s := res[i]
		switch {
		case s.Already:
			r.printf("  gateway %d: had already exited: %s\n", g.index, exitText(s.Err))
		case s.Killed:
			r.printf("  gateway %d: did not exit within 30s of SIGTERM; killed\n", g.index)
		default:
			r.printf("  gateway %d: %s after %s\n", g.index, exitText(s.Err), fmtDur(s.Took))
		}
		n, lines, err := g.logProblems(5)
		switch {
		case err != nil:
			r.printf("    log: %v\n", err)
		case n == 0:
			r.printf("    log: no warnings or errors (%s)\n", g.log)
		default:
			r.printf("    log: %d warning/error lines (%s), first:\n      %s\n", n, g.log, strings.Join(lines, "\n      "))
		}
	}
	r.gateways = nil
}

// workerSpecs splits the run over the load workers: contiguous shares of
// the connection indexes, disjoint source addresses, and the dialers
// spread evenly.
func (r *idleRun) workerSpecs() []workerSpec {
	o := r.o
	specs := make([]workerSpec, o.workers)
	for w := range specs {
		start, count := share(o.n, o.workers, w)
		_, dialers := share(o.dialers, o.workers, w)
		var srcs []net.IP
		for k := range o.sources {
			srcs = append(srcs, nthSource(o.firstSrc, w*o.sources+k))
		}
		specs[w] = workerSpec{
			ID: w, Start: start, Count: count, Targets: o.targets, Sources: srcs,
			Dialers: dialers, DialTimeout: o.dialTimeout, Keepalive: 5 * time.Second, CloseWait: 3 * time.Second,
		}
	}
	return specs
}

func makeWorkdir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "wsbench-")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

func fmtSamples(s []int64) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmtBytes(v)
	}
	return strings.Join(parts, ", ")
}

// envSummary names the settings that change a Go process's memory and
// CPU use, as the gateways inherit them.
func envSummary() string {
	var parts []string
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"} {
		v, ok := os.LookupEnv(k)
		if !ok {
			v = "unset"
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}
