//go:build linux

package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/wsproto"
)

// Bounds of a run. One process may hold at most RLIMIT_NOFILE descriptors
// (20,000 on the measuring machine, not raisable), so one load worker and
// one gateway process are each given at most maxPerProcess connections.
const (
	maxConnections = 200_000
	maxPerProcess  = 19_000
	autoPerWorker  = 18_000
	maxGateways    = 16
	maxWorkers     = 64
	maxDialers     = 256
	maxTimeout     = time.Hour
	defaultURL     = "ws://127.0.0.1:8080/"
)

// commonOptions are the flags idle and echo share: which gateway to
// measure and how to dial it.
type commonOptions struct {
	urls        string
	pids        string
	gateway     string
	config      string
	gateways    int
	port        int
	mgmtPort    int
	workdir     string
	dialers     int
	dialTimeout time.Duration
	timeout     time.Duration
	settle      time.Duration
	sources     int
	sourceBase  string
	gctrace     bool
	logLevel    string
	jwtEnv      string
	registry    string
	tls         bool
	tlsVersion  string

	set map[string]bool // flags given on the command line

	// connectURL, when set, makes the configs wsbench writes call it on
	// $connect (wsbench push).
	connectURL string

	// configFor, when set, writes the config of gateway i in place of
	// gatewayConfig (wsbench soak); env is added to the environment the
	// gateways inherit.
	configFor func(i int, listen, mgmt string) string
	env       []string

	// routeX, when set, is route x's integration in the configs wsbench
	// writes (wsbench echo -backend); pprof turns on management.pprof.
	routeX string
	pprof  bool

	// peerBinary, when set, is the server wsbench starts in place of a
	// gateway (wsbench echo -peer), at centrifugoPath on -port; the run's
	// JWT goes in its connect command (token) rather than the URL.
	peerBinary string
	token      string

	// Filled by validate.
	targets  []target
	pidList  []int
	firstSrc net.IP
}

func (o *commonOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.urls, "url", defaultURL, "comma-separated ws:// `URLs` of running gateways (loopback only); not with -gateway")
	fs.StringVar(&o.pids, "pid", "", "comma-separated `PIDs` of the running gateway processes whose RSS is measured; not with -gateway")
	fs.StringVar(&o.gateway, "gateway", "", "wsgate `binary` to start as child processes (recommended: the baseline is a fresh process)")
	fs.StringVar(&o.config, "config", "", "config `file` for a single started gateway (default: one written by wsbench, listening on -port)")
	fs.IntVar(&o.gateways, "gateways", 1, "number of gateway processes to start, on ports -port+i and -mgmt-port+i")
	fs.IntVar(&o.port, "port", 8080, "client `port` of the first started gateway")
	fs.IntVar(&o.mgmtPort, "mgmt-port", 9090, "management `port` of the first started gateway")
	fs.StringVar(&o.workdir, "workdir", "", "`directory` for gateway configs and logs (default: a new temporary directory, kept)")
	fs.IntVar(&o.dialers, "dialers", 128, "parallel dialers in total, 1 to 256")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "bound on one connection attempt: connect, upgrade request and 101")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "bound on the whole run")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "longest time to wait for the gateway's RSS to become stable before reading it")
	fs.IntVar(&o.sources, "sources", 4, "source addresses per load process, 1 to 64, counting up from -source-base")
	fs.StringVar(&o.sourceBase, "source-base", "127.0.0.2", "first source `address` (IPv4 targets only)")
	fs.BoolVar(&o.gctrace, "gctrace", false, "start the gateways with GODEBUG=gctrace=1 and report their last GC line (heap after marking)")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log.level in the configs wsbench writes: debug, info (one line per connection opened and closed), warn or error")
	fs.StringVar(&o.registry, "registry", "", "shared registry of the gateways wsbench starts: a redis:// or nats:// `URL` (loopback); the configs wsbench writes get registry.type redis or nats with it, so the processes form one cluster")
	fs.BoolVar(&o.tls, "tls", false, "measure wss://: the gateways wsbench starts serve TLS with a self-signed ECDSA P-256 certificate it writes to the work directory (with -config, the config must set tls); with -url, give wss:// URLs instead")
	fs.StringVar(&o.tlsVersion, "tls-version", "", "with wss://, the one TLS `version` to speak: 1.2 or 1.3 (default: the highest, 1.3)")
	fs.StringVar(&o.jwtEnv, "jwt-secret-env", "", "authenticate every connection with an HS256 JWT signed with the secret in environment variable `NAME`, sent as ?access_token=; the configs wsbench writes get a jwt authorizer reading the same variable")
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validate checks the flags and fills targets, pidList and firstSrc. n is
// the number of connections the run opens, processes the number of load
// processes (each with its own -sources addresses). It returns every
// problem found.
func (o *commonOptions) validate(n, processes int) []error {
	var errs []error
	if o.dialers < 1 || o.dialers > maxDialers {
		errs = append(errs, fmt.Errorf("-dialers %d: must be 1 to %d", o.dialers, maxDialers))
	}
	if o.timeout <= 0 || o.timeout > maxTimeout {
		errs = append(errs, fmt.Errorf("-timeout %s: must be more than 0 and at most %s", o.timeout, maxTimeout))
	}
	if o.dialTimeout <= 0 || o.dialTimeout > o.timeout {
		errs = append(errs, fmt.Errorf("-dial-timeout %s: must be more than 0 and at most -timeout", o.dialTimeout))
	}
	if o.settle < 0 || o.settle > time.Minute {
		errs = append(errs, fmt.Errorf("-settle %s: must be 0 to 1m", o.settle))
	}
	if o.sources < 1 || o.sources > 64 {
		errs = append(errs, fmt.Errorf("-sources %d: must be 1 to 64", o.sources))
	} else if ip, err := sourceRange(o.sourceBase, processes*o.sources); err != nil {
		errs = append(errs, err)
	} else {
		o.firstSrc = ip
	}
	switch o.logLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("-log-level %q: one of debug, info, warn, error", o.logLevel))
	}
	if o.config != "" && o.set["log-level"] {
		errs = append(errs, errors.New("-log-level applies to the configs wsbench writes, not to -config"))
	}
	var token string
	if o.jwtEnv != "" {
		t, err := jwtToken(o.jwtEnv, os.Getenv(o.jwtEnv), time.Now(), o.timeout)
		if err != nil {
			errs = append(errs, err)
		}
		token = t
	}
	var version uint16
	switch o.tlsVersion {
	case "":
	case "1.2":
		version = tls.VersionTLS12
	case "1.3":
		version = tls.VersionTLS13
	default:
		errs = append(errs, fmt.Errorf("-tls-version %q: 1.2 or 1.3", o.tlsVersion))
	}
	if o.gateway == "" && o.tls {
		errs = append(errs, errors.New("-tls applies to the gateways wsbench starts; with -url, give wss:// URLs"))
	}
	if o.gateway != "" || o.peerBinary != "" {
		errs = append(errs, o.validateStarted(n)...)
	} else {
		for _, name := range []string{"gateways", "config", "port", "mgmt-port", "gctrace", "log-level", "registry"} {
			if o.set[name] {
				errs = append(errs, fmt.Errorf("-%s needs -gateway", name))
			}
		}
		for _, raw := range strings.Split(o.urls, ",") {
			t, err := parseTarget(strings.TrimSpace(raw))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			o.targets = append(o.targets, t)
		}
		if o.pids != "" {
			for _, s := range strings.Split(o.pids, ",") {
				pid, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || pid < 1 {
					errs = append(errs, fmt.Errorf("-pid %q: not a process id", s))
					continue
				}
				o.pidList = append(o.pidList, pid)
			}
		}
	}
	for i := range o.targets {
		if o.targets[i].TLS {
			o.targets[i].TLSVersion = version
		} else if version != 0 {
			errs = append(errs, errors.New("-tls-version applies to wss:// targets (-tls)"))
			break
		}
	}
	if token != "" && o.peerBinary != "" {
		o.token = token
	} else if token != "" {
		for i, t := range o.targets {
			if t, err := withAccessToken(t, token); err != nil {
				errs = append(errs, err)
			} else {
				o.targets[i] = t
			}
		}
	}
	return errs
}

func (o *commonOptions) validateStarted(n int) []error {
	var errs []error
	for _, name := range []string{"url", "pid"} {
		if o.set[name] {
			errs = append(errs, fmt.Errorf("-%s cannot be used with -gateway: wsbench measures the gateways it starts", name))
		}
	}
	if o.gateways < 1 || o.gateways > maxGateways {
		errs = append(errs, fmt.Errorf("-gateways %d: must be 1 to %d", o.gateways, maxGateways))
		return errs
	}
	if o.config != "" && o.gateways > 1 {
		errs = append(errs, errors.New("-config works with a single gateway; with -gateways > 1 wsbench writes one config per process"))
	}
	if o.registry != "" {
		if o.config != "" {
			errs = append(errs, errors.New("-registry applies to the configs wsbench writes, not to -config"))
		}
		if _, err := registrySection(o.registry); err != nil {
			errs = append(errs, err)
		}
	}
	if per := ceilDiv(n, o.gateways); per > maxPerProcess {
		errs = append(errs, fmt.Errorf("%d connections over %d gateway process(es) is %d per process, more than the %d one process can hold under a 20,000 open-files limit; use -gateways %d",
			n, o.gateways, per, maxPerProcess, ceilDiv(n, maxPerProcess)))
	}
	if o.port < 1 || o.port+o.gateways-1 > 65535 {
		errs = append(errs, fmt.Errorf("-port %d: ports %d to %d must lie in 1 to 65535", o.port, o.port, o.port+o.gateways-1))
	}
	if o.mgmtPort < 1 || o.mgmtPort+o.gateways-1 > 65535 {
		errs = append(errs, fmt.Errorf("-mgmt-port %d: ports %d to %d must lie in 1 to 65535", o.mgmtPort, o.mgmtPort, o.mgmtPort+o.gateways-1))
	}
	if o.port < o.mgmtPort+o.gateways && o.mgmtPort < o.port+o.gateways {
		errs = append(errs, fmt.Errorf("client ports %d-%d and management ports %d-%d overlap",
			o.port, o.port+o.gateways-1, o.mgmtPort, o.mgmtPort+o.gateways-1))
	}
	if o.config != "" {
		// The target comes from -url's default; a config listening
		// elsewhere is named with -port.
		t, err := parseTarget(fmt.Sprintf("%s://127.0.0.1:%d/", o.scheme(), o.port))
		if err != nil {
			errs = append(errs, err)
		}
		o.targets = []target{t}
		return errs
	}
	path := "/"
	if o.peerBinary != "" {
		path = centrifugoPath
	}
	for i := range o.gateways {
		t, err := parseTarget(fmt.Sprintf("%s://127.0.0.1:%d%s", o.scheme(), o.port+i, path))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o.targets = append(o.targets, t)
	}
	return errs
}

// scheme is the URL scheme of the gateways wsbench starts.
func (o *commonOptions) scheme() string {
	if o.tls {
		return "wss"
	}
	return "ws"
}

// sourceRange checks that count consecutive source addresses starting at
// base are IPv4 loopback addresses, and returns base.
func sourceRange(base string, count int) (net.IP, error) {
	ip := net.ParseIP(base).To4()
	if ip == nil || ip[0] != 127 {
		return nil, fmt.Errorf("-source-base %q: must be an IPv4 address in 127.0.0.0/8", base)
	}
	first := uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	if first == 0 || first+uint32(count)-1 >= 1<<24-1 {
		return nil, fmt.Errorf("-source-base %s: %d source addresses from it leave 127.0.0.0/8 (or use 127.0.0.0 or 127.255.255.255)", base, count)
	}
	return ip, nil
}

// nthSource returns the source address i places after base.
func nthSource(base net.IP, i int) net.IP {
	b := base.To4()
	v := (uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) + uint32(i)
	return net.IPv4(127, byte(v>>16), byte(v>>8), byte(v)).To4()
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// idleOptions are the flags of wsbench idle.
type idleOptions struct {
	commonOptions
	n       int
	hold    time.Duration
	workers int
}

func parseIdleOptions(args []string, stderr io.Writer) (*idleOptions, error) {
	o := &idleOptions{}
	fs := flag.NewFlagSet("wsbench idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: wsbench idle -n N [flags]

Opens N idle WebSocket connections, reports connects per second, handshake
latency and failures, reads the gateway's RSS before and after, holds the
connections for -hold and closes them.

`)
		fs.PrintDefaults()
	}
	o.register(fs)
	fs.IntVar(&o.n, "n", 0, "number of connections, 1 to 200000 (required)")
	fs.DurationVar(&o.hold, "hold", 10*time.Second, "how long to hold the connections once established and measured")
	fs.IntVar(&o.workers, "workers", 0, "load worker processes (default: one per 18,000 connections)")
	if err := o.parseValidated(fs, args, o.validate); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *idleOptions) validate() error {
	var errs []error
	if o.n < 1 || o.n > maxConnections {
		errs = append(errs, fmt.Errorf("-n %d: must be 1 to %d", o.n, maxConnections))
	}
	if o.hold < 0 || (o.timeout > 0 && o.hold >= o.timeout) {
		errs = append(errs, fmt.Errorf("-hold %s: must be at least 0 and less than -timeout %s", o.hold, o.timeout))
	}
	switch {
	case o.workers == 0 && o.n > 0:
		o.workers = ceilDiv(o.n, autoPerWorker)
	case o.workers < 0 || o.workers > maxWorkers:
		errs = append(errs, fmt.Errorf("-workers %d: must be 1 to %d", o.workers, maxWorkers))
	}
	if o.workers > 0 && o.n > 0 {
		if o.workers > o.n {
			errs = append(errs, fmt.Errorf("-workers %d: more workers than connections", o.workers))
		} else if per := ceilDiv(o.n, o.workers); per > maxPerProcess {
			errs = append(errs, fmt.Errorf("%d connections over %d worker(s) is %d per process, more than the %d one process can hold under a 20,000 open-files limit; use -workers %d",
				o.n, o.workers, per, maxPerProcess, ceilDiv(o.n, maxPerProcess)))
		}
		if o.dialers > 0 && o.dialers < o.workers {
			errs = append(errs, fmt.Errorf("-dialers %d: fewer than -workers %d (each worker needs one)", o.dialers, o.workers))
		}
	}
	errs = append(errs, o.commonOptions.validate(max(o.n, 1), max(o.workers, 1))...)
	return errors.Join(errs...)
}

// share returns the first connection index and the count of worker w when
// n connections are split over workers as evenly as possible.
func share(n, workers, w int) (start, count int) {
	base, extra := n/workers, n%workers
	start = w*base + min(w, extra)
	count = base
	if w < extra {
		count++
	}
	return start, count
}

// echoOptions are the flags of wsbench echo.
type echoOptions struct {
	commonOptions
	n        int
	messages int
	warmup   int
	rate     float64
	size     int
	action   string
	ping     bool

	peer               string // -peer: "" (wsgate) or peerCentrifugo
	backend            string // one of backendKinds
	backendConcurrency int    // local: the function's processes
	profileOptions
}

// opcode is the frame type an echo run sends.
func (o *echoOptions) opcode() wsproto.Opcode {
	if o.ping {
		return wsproto.OpPing
	}
	return wsproto.OpText
}

var actionRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

func parseEchoOptions(args []string, stderr io.Writer) (*echoOptions, error) {
	o := &echoOptions{}
	fs := flag.NewFlagSet("wsbench echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: wsbench echo [flags]

Opens -n connections and sends -messages JSON messages {"action":ACTION,...}
through the gateway's route selection to an echoing mock integration,
measuring each message's round trip. Closed loop by default (each connection
has one message in flight); -rate R sends R messages per second in total on
a fixed schedule (open loop) and reports the round trip from each write and
the latency from each message's scheduled send time.

With -backend http, h2c, lambda or local, route x's integration calls a
trivial backend instead of the mock (a wsbench backend process, or local
functions the gateway runs), whose CPU per message is reported with the
gateway's and wsbench's, and the TIME-WAIT sockets to it. -cpuprofile saves
the gateway's CPU profile.

With -peer centrifugo -peer-binary PATH, the same run measures Centrifugo v6
instead of a gateway: wsbench starts it with a config it writes, each
connection sends the connect command of Centrifugo's JSON protocol with the
run's JWT (-jwt-secret-env is required), and every message is the data of an
rpc command with method ACTION. -backend http makes that method go through
Centrifugo's RPC proxy to the same wsbench backend process (which echoes the
data); -backend mock makes it Centrifugo's built-in RPC ping, answered by
Centrifugo alone with an empty result. Closed loop only.

`)
		fs.PrintDefaults()
	}
	o.register(fs)
	fs.IntVar(&o.n, "n", 1000, "number of connections, 1 to 19000")
	fs.IntVar(&o.messages, "messages", 100_000, "messages measured, 1 to 10000000")
	fs.IntVar(&o.warmup, "warmup", 1000, "messages sent first and not measured")
	fs.Float64Var(&o.rate, "rate", 0, "messages per second in total, open loop (0: closed loop)")
	fs.IntVar(&o.size, "size", 64, "message size in bytes, 48 to 32768 (125 with -ping)")
	fs.StringVar(&o.action, "action", "x", "value of the message's action field (the route key)")
	fs.BoolVar(&o.ping, "ping", false, "send ping frames instead and time the pongs: the gateway answers them in its event loop, without route selection or integration, which gives the baseline to compare the echo with (-size at most 125)")
	fs.StringVar(&o.peer, "peer", "", "measure another server in place of wsgate: centrifugo (Centrifugo v6, started from -peer-binary; see above)")
	fs.StringVar(&o.peerBinary, "peer-binary", "", "the -peer server's `binary`, e.g. built with go install github.com/centrifugal/centrifugo/v6@v6.9.1")
	fs.StringVar(&o.backend, "backend", backendMock, "route x's integration in the config wsbench writes: mock (the gateway echoes), http (an http integration to the trivial backend, HTTP/1.1), h2c (the same with http2: true), lambda (a lambda integration calling the trivial backend as the Lambda Invoke API) or local (a lambda integration running wsbench lambda-function as a local function); the backend is a wsbench process whose CPU is reported")
	fs.IntVar(&o.backendConcurrency, "backend-concurrency", 4, "-backend local: the function's concurrency (processes), 1 to 64")
	o.registerProfile(fs, "the first message")
	if err := o.parseValidated(fs, args, o.validate); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *echoOptions) validate() error {
	var errs []error
	if o.n < 1 || o.n > maxPerProcess {
		errs = append(errs, fmt.Errorf("-n %d: must be 1 to %d (echo runs in one process)", o.n, maxPerProcess))
	}
	if o.messages < 1 || o.messages > 10_000_000 {
		errs = append(errs, fmt.Errorf("-messages %d: must be 1 to 10000000", o.messages))
	}
	if o.warmup < 0 || o.warmup > 10_000_000 {
		errs = append(errs, fmt.Errorf("-warmup %d: must be 0 to 10000000", o.warmup))
	}
	if o.rate < 0 || o.rate > 1e6 {
		errs = append(errs, fmt.Errorf("-rate %g: must be 0 (closed loop) to 1000000", o.rate))
	}
	if !actionRE.MatchString(o.action) {
		errs = append(errs, fmt.Errorf("-action %q: 1 to 64 characters from A-Z a-z 0-9 _ . : -", o.action))
	} else if minSize, maxSize := max(len(echoPayload(nil, o.action, 0, 0)), 48), o.maxSize(); o.size < minSize || o.size > maxSize {
		errs = append(errs, fmt.Errorf("-size %d: must be %d to %d", o.size, minSize, maxSize))
	}
	if !slices.Contains(backendKinds, o.backend) {
		errs = append(errs, fmt.Errorf("-backend %q: one of %s", o.backend, strings.Join(backendKinds, ", ")))
	}
	if o.peer != "" || o.peerBinary != "" {
		errs = append(errs, o.validatePeer()...)
	} else if o.backend != backendMock || o.cpuprofile != "" {
		what := "-backend " + o.backend
		if o.backend == backendMock {
			what = "-cpuprofile"
		}
		switch {
		case o.gateway == "":
			errs = append(errs, fmt.Errorf("%s needs -gateway: wsbench writes the gateway's config", what))
		case o.config != "":
			errs = append(errs, fmt.Errorf("%s applies to the configs wsbench writes, not to -config", what))
		}
		if o.ping && o.backend != backendMock {
			errs = append(errs, fmt.Errorf("%s with -ping: pings reach no integration", what))
		}
	}
	if o.backend != backendMock && o.action != "x" {
		errs = append(errs, fmt.Errorf("-backend %s is route x's integration; -action must be x", o.backend))
	}
	if o.backendConcurrency < 1 || o.backendConcurrency > 64 {
		errs = append(errs, fmt.Errorf("-backend-concurrency %d: must be 1 to 64", o.backendConcurrency))
	}
	if err := o.validateProfile(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, o.commonOptions.validate(max(o.n, 1), 1)...)
	return errors.Join(errs...)
}

// validatePeer checks the flags of a run against -peer.
func (o *echoOptions) validatePeer() []error {
	var errs []error
	switch {
	case o.peer != peerCentrifugo:
		errs = append(errs, fmt.Errorf("-peer %q: centrifugo is the one peer", o.peer))
	case o.peerBinary == "":
		errs = append(errs, errors.New("-peer centrifugo needs -peer-binary"))
	}
	if o.jwtEnv == "" {
		errs = append(errs, errors.New("-peer needs -jwt-secret-env: the peer authenticates every connection with the run's JWT"))
	}
	if o.backend != backendMock && o.backend != backendHTTP {
		errs = append(errs, fmt.Errorf("-backend %s with -peer: mock (the built-in RPC) or http (the RPC proxy)", o.backend))
	}
	for _, name := range []string{"gateway", "config", "gateways", "registry", "tls", "tls-version", "cpuprofile", "ping", "rate", "gctrace"} {
		if o.set[name] {
			errs = append(errs, fmt.Errorf("-%s does not apply to -peer", name))
		}
	}
	return errs
}

// parseValidated parses args into fs, records in o.set which flags were
// given, and runs validate, whose error is a usage error: the end of every
// mode's option parsing.
func (o *commonOptions) parseValidated(fs *flag.FlagSet, args []string, validate func() error) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o.set = setFlags(fs)
	if err := validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// errUsagePrinted is a command line the flag package rejected and has
// already explained.
var errUsagePrinted = errors.New("invalid command line")

// parseFlags parses args into fs. Positional arguments are refused.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsagePrinted
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// maxSize is the largest message: one frame under the gateway's default
// max_frame_bytes, or a control frame's payload with -ping.
func (o *echoOptions) maxSize() int {
	if o.ping {
		return wsproto.MaxControlPayload
	}
	return 32768
}

func setFlags(fs *flag.FlagSet) map[string]bool {
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}
