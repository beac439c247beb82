//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Names the soak gateway's config and wsbench share.
const (
	soakTokenEnv  = "WSBENCH_SOAK_TOKEN"
	soakSecretEnv = "WSBENCH_SOAK_SIGV4_SECRET"
	soakKeyID     = "AKIAWSBENCHSOAK00001"
	soakRegion    = "us-east-1"

	// soakMaxSubscriptions is limits.max_subscriptions_per_connection in
	// the soak config: exactly this many subscriptions of one connection
	// must be accepted.
	soakMaxSubscriptions = 128
	// soakReadTimeout and soakIdleTimeout are the management listener's
	// timeouts in the soak config, short so that stalled and idle
	// connections are closed many times during a run.
	soakReadTimeout = 5 * time.Second
	soakIdleTimeout = 10 * time.Second
	// soakBudgetBytes is limits.inflight_budget_bytes in the soak config,
	// a quarter of the default, so that the messages of three slow
	// clients (6.4 MB each) fill it.
	soakBudgetBytes = 16 << 20
)

// soakOptions are the flags of wsbench soak.
type soakOptions struct {
	gateway  string
	port     int
	mgmtPort int
	workdir  string
	logLevel string
	duration time.Duration
	interval time.Duration
	warmup   float64
	clients  int
	slowMin  time.Duration
	slowMax  time.Duration
	timeout  time.Duration

	bounds flatBounds
}

func parseSoakOptions(args []string, stderr io.Writer) (*soakOptions, error) {
	o := &soakOptions{bounds: defaultFlatBounds}
	fs := flag.NewFlagSet("wsbench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: wsbench soak -gateway WSGATE [flags]

Starts one gateway and runs three kinds of hostile clients against it for
-duration, -clients of each at once, while sampling the gateway's RSS, open
descriptors, threads and goroutines every -interval:
  slow   a WebSocket client sends 64 messages of 100 KB to a route whose
         http integration (a backend inside wsbench) sleeps -slow-min to
         -slow-max before answering, then closes at once, and waits for the
         connection's $disconnect before the next; the backend checks that
         every connection's $disconnect comes after its last message
  mgmt   management calls with no, malformed, unknown-key, badly dated or
         wrongly signed SigV4 credentials and a wrong bearer token, declaring
         bodies up to 10 MB; idle keep-alive connections; stalled headers and
         stalled bodies; /debug/pprof without credentials
  sub    a WebSocket client subscribes in-band to new topics until refused
         (the cap is 128), sends a too-long and a control-character topic,
         then closes
Prints a table of the samples, the outcomes of each kind and a verdict. Exit
status 1 when the gateway's figures grew beyond the bounds after the warm-up,
the gateway died, a kind did nothing, or any outcome was unexpected (a
management call answered 2xx, a subscription beyond the cap accepted, ...).

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.gateway, "gateway", "", "wsgate `binary` to start (required)")
	fs.IntVar(&o.port, "port", 8080, "client `port` of the gateway (127.0.0.1)")
	fs.IntVar(&o.mgmtPort, "mgmt-port", 9090, "management `port` of the gateway (127.0.0.1)")
	fs.StringVar(&o.workdir, "workdir", "", "`directory` for the gateway's config and log (default: a new temporary directory, kept)")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log.level of the gateway: debug, info, warn or error")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the hostile clients run, 1s to 24h; longer when some kind of hostile call has not completed once by then")
	fs.DurationVar(&o.interval, "interval", 5*time.Second, "time between samples, 100ms to -duration/4")
	fs.Float64Var(&o.warmup, "warmup", 0.2, "fraction of -duration left out of the verdict, 0 to 0.8")
	fs.IntVar(&o.clients, "clients", 4, "hostile clients of each kind at once (management: of each of refused, idle and stalled), 1 to 256")
	fs.DurationVar(&o.slowMin, "slow-min", 200*time.Millisecond, "shortest time the slow route's backend waits before answering")
	fs.DurationVar(&o.slowMax, "slow-max", time.Second, "longest time the slow route's backend waits before answering, below 10s (the integration timeout)")
	fs.DurationVar(&o.timeout, "timeout", 0, "bound on the whole run (default: -duration + 2m)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := o.validate(); err != nil {
		return nil, usageError{err}
	}
	return o, nil
}

func (o *soakOptions) validate() error {
	var errs []error
	if o.gateway == "" {
		errs = append(errs, errors.New("-gateway is required: wsbench soak starts the gateway it measures"))
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"-port", o.port}, {"-mgmt-port", o.mgmtPort}} {
		if p.v < 1 || p.v > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: must be 1 to 65535", p.name, p.v))
		}
	}
	if o.port == o.mgmtPort {
		errs = append(errs, fmt.Errorf("-port and -mgmt-port are both %d", o.port))
	}
	switch o.logLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("-log-level %q: one of debug, info, warn, error", o.logLevel))
	}
	if o.duration < time.Second || o.duration > 24*time.Hour {
		errs = append(errs, fmt.Errorf("-duration %s: must be 1s to 24h", o.duration))
	}
	if o.interval < 100*time.Millisecond || o.interval > o.duration/4 {
		errs = append(errs, fmt.Errorf("-interval %s: must be 100ms to a quarter of -duration, so that there are windows to compare", o.interval))
	}
	if o.warmup < 0 || o.warmup > 0.8 {
		errs = append(errs, fmt.Errorf("-warmup %g: must be 0 to 0.8", o.warmup))
	}
	if o.clients < 1 || o.clients > 256 {
		errs = append(errs, fmt.Errorf("-clients %d: must be 1 to 256", o.clients))
	}
	if o.slowMin < 0 || o.slowMax < o.slowMin || o.slowMax >= soakIntegrationTimeout {
		errs = append(errs, fmt.Errorf("-slow-min %s, -slow-max %s: need 0 ≤ min ≤ max < %s", o.slowMin, o.slowMax, soakIntegrationTimeout))
	}
	if o.timeout == 0 {
		o.timeout = o.duration + 2*time.Minute
	}
	if o.timeout <= o.duration {
		errs = append(errs, fmt.Errorf("-timeout %s: must be more than -duration %s", o.timeout, o.duration))
	}
	return errors.Join(errs...)
}

// soakIntegrationTimeout is the timeout of the soak config's http
// integrations.
const soakIntegrationTimeout = 10 * time.Second

// soakConfig is the config of the soak gateway: loopback listeners, a slow
// route, $connect and $disconnect as http integrations to backend, an
// in-flight budget of soakBudgetBytes, an in-band
// subscribe route for topics soak/*, and a management API behind a bearer
// token and a SigV4 key (both read from the environment) with pprof on.
func soakConfig(listen, mgmt, logLevel, backend string) string {
	return fmt.Sprintf(`# Written by wsbench soak. Everything not set here is the embedded default
# (wsgate default-config): max_message_bytes 131072, max_frame_bytes 32768,
# max_inflight_messages 64, inflight_budget_messages 16384,
# max_body_bytes_in_flight 67108864.
listen: %q
# The slow route's messages still queued when wsbench stops the gateway are
# not waited for long.
shutdown_timeout: 2s
log:
  level: %s
limits:
  max_subscriptions_per_connection: %d
  inflight_budget_bytes: %d
topics:
  allow: ["soak/*"]
management:
  listen: %q
  pprof: true
  read_timeout: %s
  idle_timeout: %s
  auth:
    bearer_tokens_env: %s
    sigv4: {access_key_id: %s, secret_access_key_env: %s, region: %s}
routes:
  $connect:
    integration: {type: http, url: %q, timeout: %s}
  $disconnect:
    integration: {type: http, url: %q, timeout: %s}
  slow:
    integration: {type: http, url: %q, timeout: %s}
  subscribe:
    builtin: subscribe
`, listen, logLevel, soakMaxSubscriptions, soakBudgetBytes, mgmt, soakReadTimeout, soakIdleTimeout,
		soakTokenEnv, soakKeyID, soakSecretEnv, soakRegion,
		backend+"/connect", soakIntegrationTimeout, backend+"/disconnect", soakIntegrationTimeout, backend+"/slow", soakIntegrationTimeout)
}

// soakSample is one reading of the gateway and of the hostile clients.
type soakSample struct {
	At         time.Duration // since the hostile clients started
	RSS        int64
	FDs        int64
	Threads    int64
	Goroutines int64
	Ops        [numKinds]int64 // completed operations of each kind so far
	Unexpected int64
}

// flatBounds says how much a figure may grow from the early window to the
// last one: at most Frac of the early median plus Abs.
type flatBounds struct {
	RSSFrac, GoroutinesFrac, FDsFrac float64
	RSSAbs, GoroutinesAbs, FDsAbs    int64
}

// defaultFlatBounds are the bounds of the verdict; BENCHMARKS.md explains
// why a leak would pass them.
var defaultFlatBounds = flatBounds{
	RSSFrac: 0.25, RSSAbs: 16 << 20,
	GoroutinesFrac: 0.25, GoroutinesAbs: 100,
	FDsFrac: 0.25, FDsAbs: 100,
}

// figureVerdict is the comparison of one figure.
type figureVerdict struct {
	Name        string
	Early, Last int64 // medians of the windows
	Limit       int64 // the largest Last that is flat
	Flat        bool
}

// soakVerdict is the outcome of comparing the windows.
type soakVerdict struct {
	Flat          bool
	Reason        string // why there is no comparison, when there is none
	Early, Last   [2]time.Duration
	EarlyN, LastN int
	Figures       []figureVerdict
}

// judge compares the medians of the early and the last window of the
// samples taken after the warm-up (samples at or after warmup). The
// windows are the first and the last third of those samples, at least one
// sample each and never the same samples. Too few samples to compare is not
// flat.
func judge(samples []soakSample, warmup time.Duration, b flatBounds) soakVerdict {
	var post []soakSample
	for _, s := range samples {
		if s.At >= warmup {
			post = append(post, s)
		}
	}
	if len(post) < 2 {
		return soakVerdict{Reason: fmt.Sprintf("%d samples after the warm-up; at least 2 are needed", len(post))}
	}
	w := max(len(post)/3, 1)
	early, last := post[:w], post[len(post)-w:]
	v := soakVerdict{Flat: true, EarlyN: w, LastN: w,
		Early: [2]time.Duration{early[0].At, early[w-1].At}, Last: [2]time.Duration{last[0].At, last[w-1].At}}
	check := func(name string, get func(soakSample) int64, frac float64, abs int64) {
		e, l := median(early, get), median(last, get)
		limit := e + int64(frac*float64(e)) + abs
		f := figureVerdict{Name: name, Early: e, Last: l, Limit: limit, Flat: l <= limit}
		v.Flat = v.Flat && f.Flat
		v.Figures = append(v.Figures, f)
	}
	check("RSS", func(s soakSample) int64 { return s.RSS }, b.RSSFrac, b.RSSAbs)
	check("goroutines", func(s soakSample) int64 { return s.Goroutines }, b.GoroutinesFrac, b.GoroutinesAbs)
	check("fds", func(s soakSample) int64 { return s.FDs }, b.FDsFrac, b.FDsAbs)
	return v
}

// median returns the median of get over samples (the lower middle one of
// an even number).
func median(samples []soakSample, get func(soakSample) int64) int64 {
	v := make([]int64, len(samples))
	for i, s := range samples {
		v[i] = get(s)
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

// kind is one of the hostile kinds.
type kind int

const (
	kindSlow kind = iota
	kindMgmt
	kindSub
	numKinds
)

func (k kind) String() string { return [...]string{"slow", "mgmt", "sub"}[k] }

// outcomes counts how the operations of one kind ended, by outcome, and
// which outcomes are unexpected.
type outcomes struct {
	mu         sync.Mutex
	count      map[string]int64
	unexpected map[string]bool
	example    map[string]string
}

// add counts one outcome; example, when set, is kept for the first of each.
func (o *outcomes) add(name string, unexpected bool, example string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.count == nil {
		o.count, o.unexpected, o.example = map[string]int64{}, map[string]bool{}, map[string]string{}
	}
	o.count[name]++
	if unexpected {
		o.unexpected[name] = true
	}
	if _, ok := o.example[name]; !ok && example != "" {
		o.example[name] = example
	}
}

// get returns the count of outcome name.
func (o *outcomes) get(name string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[name]
}

// unexpectedTotal returns the number of unexpected outcomes.
func (o *outcomes) unexpectedTotal() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int64
	for name := range o.unexpected {
		n += o.count[name]
	}
	return n
}

// lines lists the outcomes, most frequent first, the unexpected marked.
func (o *outcomes) lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	names := make([]string, 0, len(o.count))
	for n := range o.count {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if o.count[names[i]] != o.count[names[j]] {
			return o.count[names[i]] > o.count[names[j]]
		}
		return names[i] < names[j]
	})
	var out []string
	for _, n := range names {
		s := fmt.Sprintf("%8d  %s", o.count[n], n)
		if o.unexpected[n] {
			s += "  UNEXPECTED"
			if ex := o.example[n]; ex != "" {
				s += fmt.Sprintf(" (e.g. %q)", ex)
			}
		}
		out = append(out, s)
	}
	return out
}

// soakRun is the state of one wsbench soak run.
type soakRun struct {
	o        *soakOptions
	wsAddr   string
	mgmtAddr string
	token    string // a valid bearer token
	backend  *slowBackend

	ops  [numKinds]atomic.Int64
	outc [numKinds]outcomes
}

func (r *soakRun) unexpected() int64 {
	var n int64
	for k := range numKinds {
		n += r.outc[k].unexpectedTotal()
	}
	return n + r.backend.violations.Load()
}

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseSoakOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	printf := func(format string, args ...any) { fmt.Fprintf(stdout, format, args...) }

	backend, err := startSlowBackend(o.slowMin, o.slowMax)
	if err != nil {
		return err
	}
	defer backend.close()

	token, secret := randomHex(24), randomHex(20)
	r := &soakRun{o: o, token: token, backend: backend,
		wsAddr: fmt.Sprintf("127.0.0.1:%d", o.port), mgmtAddr: fmt.Sprintf("127.0.0.1:%d", o.mgmtPort)}
	co := &commonOptions{gateway: o.gateway, port: o.port, mgmtPort: o.mgmtPort, logLevel: o.logLevel,
		env: []string{soakTokenEnv + "=" + token, soakSecretEnv + "=" + secret},
		configFor: func(_ int, listen, mgmt string) string {
			return soakConfig(listen, mgmt, o.logLevel, backend.url)
		}}
	t, err := parseTarget("ws://" + r.wsAddr + "/")
	if err != nil {
		return err
	}
	co.targets = []target{t}
	workdir, err := makeWorkdir(o.workdir)
	if err != nil {
		return err
	}
	gws, err := startGateways(ctx, co, workdir)
	if err != nil {
		return err
	}
	g := gws[0]
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		res := stopGateways(gws, 30*time.Second)
		n, lines, _ := g.logProblems(5)
		printf("gateway: %s after SIGTERM (%s); %d warning/error log lines, the first: %q\n",
			exitText(res[0].Err), fmtDur(res[0].Took), n, lines)
	}
	defer stop()
	printf("wsbench soak: gateway pid %d, ws://%s/, management http://%s, config %s, log %s\n", g.pid(), r.wsAddr, r.mgmtAddr, g.config, g.log)
	printf("environment: %s; load average %s\n", envSummary(), loadAverage())
	printf("hostile clients: %d slow, %d sub, %d×3 mgmt (refused, idle, stalled); slow backend waits %s–%s; duration %s, samples every %s, warm-up %.0f%%\n\n",
		o.clients, o.clients, o.clients, o.slowMin, o.slowMax, o.duration, o.interval, 100*o.warmup)

	if _, err := r.goroutines(ctx); err != nil {
		return fmt.Errorf("reading the goroutine count through /debug/pprof: %w", err)
	}

	runCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range o.clients {
		wg.Add(5)
		go func() { defer wg.Done(); r.slowClient(runCtx, i) }()
		go func() { defer wg.Done(); r.subClient(runCtx, i) }()
		go func() { defer wg.Done(); r.mgmtRefused(runCtx, i) }()
		go func() { defer wg.Done(); r.mgmtIdle(runCtx) }()
		go func() { defer wg.Done(); r.mgmtStalled(runCtx, i) }()
	}

	printf("%8s %10s %6s %7s %10s %8s %8s %8s %10s\n", "time", "RSS", "fds", "threads", "goroutines", "slow", "mgmt", "sub", "unexpected")
	var samples []soakSample
	var died error
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for {
		s, err := r.sample(ctx, g.pid(), time.Since(start))
		if err == nil {
			samples = append(samples, s)
			printf("%8s %10s %6d %7d %10d %8d %8d %8d %10d\n", fmtDur(s.At.Round(time.Millisecond)), fmtBytes(s.RSS), s.FDs, s.Threads, s.Goroutines,
				s.Ops[kindSlow], s.Ops[kindMgmt], s.Ops[kindSub], s.Unexpected)
		} else if died = g.exited(); died != nil {
			break
		} else {
			printf("%8s sample failed: %v\n", fmtDur(time.Since(start).Round(time.Millisecond)), err)
		}
		if ctx.Err() != nil || time.Since(start) >= o.duration && r.covered() {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	stopClients()
	wg.Wait()
	if died == nil {
		died = g.exited()
	}
	return r.report(stdout, samples, died, stop)
}

// covered reports whether every kind of hostile call has been under way:
// the slow backend has received a message, and the management and
// subscribing clients have completed calls, each refused management call
// included. Until then the report could not judge them, however long
// -duration was. (A slow client's $disconnect may come only after the
// clients stop: the gateway delivers it after the connection's messages.)
func (r *soakRun) covered() bool {
	if r.backend.messages.Load() == 0 || r.ops[kindMgmt].Load() == 0 || r.ops[kindSub].Load() == 0 {
		return false
	}
	o := &r.outc[kindMgmt]
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, call := range r.refusedCalls(time.Now()) {
		seen := false
		for name := range o.count {
			seen = seen || strings.HasPrefix(name, call.name+": ")
		}
		if !seen {
			return false
		}
	}
	return true
}

// sample reads the gateway's figures and the clients' counters.
func (r *soakRun) sample(ctx context.Context, pid int, at time.Duration) (soakSample, error) {
	s := soakSample{At: at}
	st, err := readStatus(pid)
	if err != nil {
		return s, err
	}
	fds, err := countFDs([]int{pid})
	if err != nil {
		return s, err
	}
	n, err := r.goroutines(ctx)
	if err != nil {
		return s, err
	}
	s.RSS, s.Threads, s.FDs, s.Goroutines = st.VmRSS, st.Threads, int64(fds), n
	for k := range numKinds {
		s.Ops[k] = r.ops[k].Load()
	}
	s.Unexpected = r.unexpected()
	return s, nil
}

// goroutines reads the first line of the gateway's goroutine profile,
// "goroutine profile: total N", authenticated with the bearer token.
func (r *soakRun) goroutines(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.mgmtAddr+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d: %q", resp.StatusCode, strings.TrimSpace(line))
	}
	return parseGoroutineTotal(line)
}

// parseGoroutineTotal parses "goroutine profile: total N".
func parseGoroutineTotal(line string) (int64, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("not a goroutine profile: %q", line)
	}
	return strconv.ParseInt(rest, 10, 64)
}

// report prints the outcomes and the verdict, and returns an error when
// the run failed. stop stops the gateway before the last lines.
func (r *soakRun) report(w io.Writer, samples []soakSample, died error, stop func()) error {
	printf := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	b := r.backend
	printf("\noutcomes\n")
	for k := range numKinds {
		printf("  %s: %d operations\n", k, r.ops[k].Load())
		for _, l := range r.outc[k].lines() {
			printf("    %s\n", l)
		}
	}
	printf("  slow backend: %d MESSAGE events answered, %d $disconnect events; %d ordering violations%s\n",
		b.messages.Load(), b.disconnects.Load(), b.violations.Load(), b.violationExample())

	var problems []string
	if died != nil {
		problems = append(problems, died.Error())
	}
	for k := range numKinds {
		if r.ops[k].Load() == 0 {
			problems = append(problems, fmt.Sprintf("no %s operation completed", k))
		}
	}
	if n := r.unexpected(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d unexpected outcomes", n))
	}
	warm := time.Duration(r.o.warmup * float64(r.o.duration))
	v := judge(samples, warm, r.o.bounds)
	printf("\nverdict (after a warm-up of %s; medians of the early and the last window of the samples after it)\n", fmtDur(warm))
	if v.Reason != "" {
		printf("  no comparison: %s\n", v.Reason)
		problems = append(problems, "no comparison: "+v.Reason)
	} else {
		printf("  early window %s–%s (%d samples), last window %s–%s (%d samples)\n",
			fmtDur(v.Early[0]), fmtDur(v.Early[1]), v.EarlyN, fmtDur(v.Last[0]), fmtDur(v.Last[1]), v.LastN)
		for _, f := range v.Figures {
			show := func(n int64) string { return strconv.FormatInt(n, 10) }
			if f.Name == "RSS" {
				show = fmtBytes
			}
			state := "flat"
			if !f.Flat {
				state = "GROWING"
				problems = append(problems, fmt.Sprintf("%s grew from %s to %s (limit %s)", f.Name, show(f.Early), show(f.Last), show(f.Limit)))
			}
			printf("  %-10s early %10s  last %10s  limit %10s  %s\n", f.Name, show(f.Early), show(f.Last), show(f.Limit), state)
		}
		bd := r.o.bounds
		printf("  limits: RSS early × %.2f + %s; goroutines early × %.2f + %d; fds early × %.2f + %d\n",
			1+bd.RSSFrac, fmtBytes(bd.RSSAbs), 1+bd.GoroutinesFrac, bd.GoroutinesAbs, 1+bd.FDsFrac, bd.FDsAbs)
	}
	stop()
	if len(problems) > 0 {
		printf("result: NOT flat or not clean\n")
		return errors.New(strings.Join(problems, "; "))
	}
	printf("result: flat, every outcome expected\n")
	return nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// soakDeadline bounds one wait of a hostile client for the gateway, so
// that a gateway that stops answering shows as an outcome rather than a
// hang; runs stop waiting when ctx ends.
func soakDeadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}
