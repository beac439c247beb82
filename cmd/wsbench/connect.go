//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Ways a connect run ends each connection once its 101 has arrived.
const (
	closeModeRST   = "rst"   // SO_LINGER 0: a reset, no TIME_WAIT on either side
	closeModeFIN   = "fin"   // a plain close: the client side keeps a TIME_WAIT entry
	closeModeFrame = "frame" // a close frame (1000), then wait for the gateway to end the socket
)

var closeModes = []string{closeModeRST, closeModeFIN, closeModeFrame}

// maxConnects bounds one connect run.
const maxConnects = 10_000_000

// connectOptions are the flags of wsbench connect.
type connectOptions struct {
	commonOptions
	n         int
	closeMode string
	hold      bool
	drain     time.Duration
	profileOptions
}

func parseConnectOptions(args []string, stderr io.Writer) (*connectOptions, error) {
	o := &connectOptions{}
	fs := flag.NewFlagSet("wsbench connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: wsbench connect -n N [flags]

Opens N WebSocket connections at full rate from -dialers parallel dialers
(with -jwt-secret-env, each authenticated by a JWT in ?access_token=) and
ends each one as soon as its 101 has arrived (-close), or holds them all
until the last is open (-hold). Reports connects per second, handshake
latency, failures by cause, and the gateway's and wsbench's own CPU per
1,000 connects, counted until the gateway has released the connections'
descriptors (so the teardown is included).

`)
		fs.PrintDefaults()
	}
	o.register(fs)
	fs.IntVar(&o.n, "n", 20_000, fmt.Sprintf("connections to open, 1 to %d (with -hold at most %d)", maxConnects, maxPerProcess))
	fs.StringVar(&o.closeMode, "close", closeModeRST, "how each connection ends: rst (SO_LINGER 0, no TIME_WAIT on either side), fin (plain close, a TIME_WAIT entry on the client side) or frame (close frame 1000, then the gateway ends the socket)")
	fs.BoolVar(&o.hold, "hold", false, "hold every connection until the last one is open, then end them all (-n at most 19000)")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "longest wait, after the last connection ended, for the gateway to release their descriptors before its CPU is read")
	o.registerProfile(fs, "the first dial")
	if err := o.parseValidated(fs, args, o.validate); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *connectOptions) validate() error {
	var errs []error
	limit := maxConnects
	if o.hold {
		limit = maxPerProcess
	}
	if o.n < 1 || o.n > limit {
		errs = append(errs, fmt.Errorf("-n %d: must be 1 to %d", o.n, limit))
	}
	if !slices.Contains(closeModes, o.closeMode) {
		errs = append(errs, fmt.Errorf("-close %q: one of %s", o.closeMode, strings.Join(closeModes, ", ")))
	}
	if o.drain < 0 || o.drain > time.Minute {
		errs = append(errs, fmt.Errorf("-drain %s: must be 0 to 1m", o.drain))
	}
	if err := o.validateProfile(); err != nil {
		errs = append(errs, err)
	}
	if o.cpuprofile != "" {
		switch {
		case o.gateway == "":
			errs = append(errs, errors.New("-cpuprofile needs -gateway: wsbench writes the gateway's config"))
		case o.config != "":
			errs = append(errs, errors.New("-cpuprofile applies to the configs wsbench writes, not to -config"))
		}
	}
	if o.tls {
		errs = append(errs, errors.New("-tls: connect dials ws:// only"))
	}
	// Without -hold at most -dialers connections are open at once.
	open := o.dialers
	if o.hold {
		open = o.n
	}
	errs = append(errs, o.commonOptions.validate(max(min(open, o.n), 1), 1)...)
	return errors.Join(errs...)
}

// connectResult is what the dialers of a connect run counted.
type connectResult struct {
	ok, failed  atomic.Int64
	mu          sync.Mutex // guards the fields below
	fails       failures
	lat         []time.Duration
	first, last time.Time // first dial started, last 101 read
	closeErrs   failures  // -close frame: sockets that did not end cleanly
}

func runConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseConnectOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	printf := func(format string, args ...any) { fmt.Fprintf(stdout, format, args...) }

	pids := o.pidList
	if o.gateway != "" {
		workdir, err := makeWorkdir(o.workdir)
		if err != nil {
			return err
		}
		o.enableProfile(&o.commonOptions)
		_, started, stop, err := startReported(ctx, &o.commonOptions, workdir, printf)
		if err != nil {
			return err
		}
		defer stop()
		pids = append(pids, started...)
	}
	what := "each ended as soon as its 101 arrived"
	if o.hold {
		what = "all held until the last is open"
	}
	printf("wsbench connect: %d connections, %d dialers, %d source address(es) from %s, %s, -close %s\n",
		o.n, min(o.dialers, o.n), o.sources, o.firstSrc, what, o.closeMode)
	printf("environment: %s; load average %s; %d CPUs\n", envSummary(), loadAverage(), runtime.NumCPU())
	printf("%s\n", o.authSummary())

	baseFDs, _ := countFDs(pids)
	ports := o.targetPorts()
	tw0 := timeWaitAll(ports)
	profiled := o.startProfile(ctx, o.mgmtPort, printf, "the first dial")
	cpu0 := takeCPU(pids)
	start := time.Now()
	res := o.dialAll(ctx, stderr) // returns once every connection is ended
	ended := time.Now()
	cpuEnded := takeCPU(pids).since(cpu0)
	// With -cpuprofile the profile's request holds one more descriptor
	// of the gateway's (its management connection).
	slack := 0
	if o.cpuprofile != "" {
		slack = 1
	}
	drained, fds := waitFDs(ctx, pids, baseFDs+slack, o.drain)
	drainTook := time.Since(ended)
	cpu := takeCPU(pids).since(cpu0)
	wall := time.Since(start)
	tw1 := timeWaitAll(ports)
	profiled()

	ok, failed := int(res.ok.Load()), int(res.failed.Load())
	span := res.last.Sub(res.first)
	lsum := summarize(res.lat)
	rate := 0.0
	if ok > 0 && span > 0 {
		rate = float64(ok) / span.Seconds()
	}
	printf("\nresults\n")
	printf("  established    %d of %d (%d failed)\n", ok, o.n, failed)
	printf("  failures       %s\n", res.fails.String())
	if o.closeMode == closeModeFrame {
		printf("  close          %s\n", res.closeErrs.String())
	}
	printf("  rate           %.0f connections/s (established / %s from the first dial to the last 101)\n", rate, fmtDur(span))
	printf("  handshake      %s\n", lsum)
	printf("                 (connect() + upgrade request + 101 response, per connection)\n")
	per1k := func(d time.Duration) string {
		if ok == 0 {
			return "-"
		}
		return fmtDur(d * 1000 / time.Duration(ok))
	}
	other := max(cpu.system-cpu.gateway-cpu.self, 0)
	ncpu := runtime.NumCPU()
	printf("  CPU            gateway %s, wsbench %s, all other processes %s, over %s wall (%d CPUs = %s)\n",
		fmtDur(cpu.gateway), fmtDur(cpu.self), fmtDur(other), fmtDur(wall), ncpu, fmtDur(time.Duration(ncpu)*wall))
	if len(pids) > 0 {
		state := "released"
		if !drained {
			state = fmt.Sprintf("NOT released within -drain %s (%d open, baseline %d)", o.drain, fds, baseFDs)
		}
		printf("  per 1,000      gateway %s (until the descriptors were %s, %s after the last connection was ended); when it was ended %s\n",
			per1k(cpu.gateway), state, fmtDur(drainTook), per1k(cpuEnded.gateway))
	}
	printf("                 wsbench %s, all other processes %s\n", per1k(cpu.self), per1k(other))
	printf("  TIME-WAIT      %d before, %d after (sockets to or from the gateways' ports)\n", tw0, tw1)
	gw := "-"
	if len(pids) > 0 && ok > 0 {
		gw = fmtDur(cpu.gateway * 1000 / time.Duration(ok))
	}
	fmt.Fprintf(stdout, "\nsummary: n=%d established=%d failed=%d conn_per_s=%.0f handshake_p50=%s p99=%s gateway_cpu_per_1k=%s wsbench_cpu_per_1k=%s time_wait=%d->%d load=%s\n",
		o.n, ok, failed, rate, fmtDur(lsum.P50), fmtDur(lsum.P99), gw, per1k(cpu.self), tw0, tw1, loadAverage())
	if ok == 0 {
		return errors.New("no connection established")
	}
	if !drained && len(pids) > 0 {
		return fmt.Errorf("the gateway still held %d descriptors (baseline %d) %s after the last connection ended", fds, baseFDs, o.drain)
	}
	return nil
}

// targetPorts returns the client ports of o's targets.
func (o *connectOptions) targetPorts() []int {
	var ports []int
	for _, t := range o.targets {
		if _, p, err := net.SplitHostPort(t.Addr); err == nil {
			var n int
			if _, err := fmt.Sscan(p, &n); err == nil {
				ports = append(ports, n)
			}
		}
	}
	return ports
}

func timeWaitAll(ports []int) int {
	n := 0
	for _, p := range ports {
		c, _ := timeWait(p)
		n += c
	}
	return n
}

// waitFDs waits up to d for the processes to be back to at most base open
// descriptors, and reports whether they got there and the last count.
func waitFDs(ctx context.Context, pids []int, base int, d time.Duration) (bool, int) {
	if len(pids) == 0 {
		return true, 0
	}
	deadline := time.Now().Add(d)
	for {
		fds, err := countFDs(pids)
		if err != nil || fds <= base {
			return err == nil, fds
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, fds
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialAll runs the dialers, ends every connection (-close, at once or after
// -hold) and returns what they counted.
func (o *connectOptions) dialAll(ctx context.Context, stderr io.Writer) *connectResult {
	var srcs []net.IP
	for k := range o.sources {
		srcs = append(srcs, nthSource(o.firstSrc, k))
	}
	d := newDialers(srcs, o.dialTimeout)
	res := &connectResult{lat: make([]time.Duration, 0, o.n)}
	var held []net.Conn
	if o.hold {
		held = make([]net.Conn, o.n)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(stderr, "connecting: %d/%d established, %d failed\n", res.ok.Load(), o.n, res.failed.Load())
			}
		}
	}()
	for range min(o.dialers, o.n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var fails, closeErrs failures
			var first, last time.Time
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= o.n {
					break
				}
				t := o.targets[i%len(o.targets)]
				begin := time.Now()
				if first.IsZero() {
					first = begin
				}
				c, rest, err := dialWS(ctx, d.pick(i/len(o.targets), t), t)
				if err != nil {
					fails.add(err)
					res.failed.Add(1)
					continue
				}
				last = time.Now()
				lat = append(lat, last.Sub(begin))
				res.ok.Add(1)
				if o.hold {
					held[i] = c
					continue
				}
				if err := o.end(c, rest); err != nil {
					closeErrs.add(err)
				}
			}
			res.mu.Lock()
			res.lat = append(res.lat, lat...)
			res.fails.merge(fails)
			res.closeErrs.merge(closeErrs)
			if !first.IsZero() && (res.first.IsZero() || first.Before(res.first)) {
				res.first = first
			}
			if last.After(res.last) {
				res.last = last
			}
			res.mu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	for _, c := range held {
		if c != nil {
			if err := o.end(c.(*net.TCPConn), nil); err != nil {
				res.closeErrs.add(err)
			}
		}
	}
	return res
}

// end ends an established connection the way -close says.
func (o *connectOptions) end(c *net.TCPConn, rest []byte) error {
	switch o.closeMode {
	case closeModeRST:
		_ = c.SetLinger(0)
		return c.Close()
	case closeModeFIN:
		return c.Close()
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(o.dialTimeout)); err != nil {
		return err
	}
	if _, err := c.Write(closeFrameBytes); err != nil {
		return err
	}
	// Read to the end of the socket: the gateway answers the close frame
	// and closes.
	buf := make([]byte, 256)
	for {
		_, err := c.Read(buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

var closeFrameBytes = closeFrame()
