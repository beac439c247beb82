//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/wsproto"
)

// publishOptions are the flags of wsbench publish.
type publishOptions struct {
	commonOptions
	n        int
	duration time.Duration
	warmup   time.Duration
	drain    time.Duration
	rate     float64
	size     int
	action   string

	// The route's integration: a file, or the flags below.
	integrationFile string
	itype           string
	brokerURL       string
	subject         string
	stream          string
	channel         string
	payload         string
	jetstream       bool
	declare         bool
	maxlen          int64
	pubTimeout      time.Duration
	sets            keyValues

	cpuprofile string
	brokerPIDs string

	// Filled by validate.
	integration   string // YAML mapping of the route's integration, unindented
	typeName      string // its type
	brokerPIDList []int
}

// keyValues is a repeatable name=value flag.
type keyValues []string

func (k *keyValues) String() string { return strings.Join(*k, " ") }

var setKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]*=`)

func (k *keyValues) Set(v string) error {
	if !setKeyRE.MatchString(v) {
		return errors.New(`want KEY=VALUE, KEY in lower case (a key of the integration section), VALUE as written in YAML`)
	}
	*k = append(*k, v)
	return nil
}

func parsePublishOptions(args []string, stderr io.Writer) (*publishOptions, error) {
	o := &publishOptions{}
	fs := flag.NewFlagSet("wsbench publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: wsbench publish -gateway BIN (-integration-config FILE | -type TYPE [integration flags]) [flags]

Starts the gateway with one route, -action, whose integration is a publishing
integration (nats, redis, or any other type the gateway knows) with
route_response: true, opens -n connections and sends JSON messages
{"action":ACTION,...} to it: closed loop by default (each connection sends its
next message when the acknowledgement of the previous one has arrived), or
-rate messages per second in total on a fixed schedule (open loop). After
-warmup it measures for -duration: acknowledgements per second, the latency
from each send to its acknowledgement frame, the Internal server error frames,
and the gateway's CPU time per acknowledged message.

The integration is either the YAML mapping in -integration-config (exactly
what sits under a route's "integration:", type included), or -type with the
flags below; -set KEY=VALUE adds any other key, so a type wsbench has no flag
for needs no change here. Examples:

  wsbench publish -gateway ./wsgate -type nats -url nats://127.0.0.1:4222 -subject 'bench.{connectionId}'
  wsbench publish -gateway ./wsgate -type nats -url nats://127.0.0.1:4222 -subject 'bench.{connectionId}' \
      -jetstream -declare -stream WSBENCH
  wsbench publish -gateway ./wsgate -type redis -url redis://127.0.0.1:6379/0 -stream wsbench -maxlen 100000
  wsbench publish -gateway ./wsgate -integration-config amqp.yaml -n 200

Streams, keys and queues the run creates are left at the broker.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.gateway, "gateway", "", "wsgate `binary` to start as child processes (required)")
	fs.IntVar(&o.gateways, "gateways", 1, "number of gateway processes to start, on ports -port+i and -mgmt-port+i, each with the same route; connections are spread over them")
	fs.IntVar(&o.port, "port", 8080, "client `port` of the first started gateway")
	fs.IntVar(&o.mgmtPort, "mgmt-port", 9090, "management `port` of the first started gateway")
	fs.StringVar(&o.workdir, "workdir", "", "`directory` for gateway configs and logs (default: a new temporary directory, kept)")
	fs.IntVar(&o.dialers, "dialers", 64, "parallel dialers in total, 1 to 256")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "bound on one connection attempt: connect, upgrade request and 101")
	fs.DurationVar(&o.timeout, "timeout", 0, "bound on the whole run (default: -warmup + -duration + -drain + 1m)")
	fs.IntVar(&o.sources, "sources", 4, "source addresses, 1 to 64, counting up from -source-base")
	fs.StringVar(&o.sourceBase, "source-base", "127.0.0.2", "first source `address`")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log.level of the gateways: debug, info, warn or error")

	fs.IntVar(&o.n, "n", 50, "number of client connections, 1 to 19000")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of the measured window")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "time the clients send before the measured window")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "open loop: how long to wait after the window for the answers still due")
	fs.Float64Var(&o.rate, "rate", 0, "messages per second in total, open loop, round robin over the connections (0: closed loop)")
	fs.IntVar(&o.size, "size", 64, "message size in bytes, 48 to 32768")
	fs.StringVar(&o.action, "action", "publish", "the route key, sent as the message's action field")

	fs.StringVar(&o.integrationFile, "integration-config", "", "YAML `file` holding the route's integration mapping (type and its keys); not with -type and the other integration flags")
	fs.StringVar(&o.itype, "type", "", "integration `type`: nats, redis, …")
	fs.StringVar(&o.brokerURL, "url", "", "the integration's url: the broker's `URL`")
	fs.StringVar(&o.subject, "subject", "", "nats: the subject, placeholders allowed")
	fs.BoolVar(&o.jetstream, "jetstream", false, "nats: publish to JetStream")
	fs.BoolVar(&o.declare, "declare", false, "nats with -jetstream: create -stream when it does not exist")
	fs.StringVar(&o.stream, "stream", "", "nats: the stream -declare creates; redis: the stream to XADD to")
	fs.StringVar(&o.channel, "channel", "", "redis: the channel to PUBLISH to")
	fs.Int64Var(&o.maxlen, "maxlen", 0, "redis: XADD MAXLEN ~ N (0: no trimming)")
	fs.StringVar(&o.payload, "payload", "", "event or body (default: the integration's, event)")
	fs.DurationVar(&o.pubTimeout, "publish-timeout", 0, "the integration's timeout (default: the integration's, 29s)")
	fs.Var(&o.sets, "set", "another key of the integration, `KEY=VALUE`, VALUE as written in YAML (repeatable): -set exchange=orders -set durable=true")

	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of gateway 0 over the measured window to `file` (management.pprof is turned on; -duration in whole seconds)")
	fs.StringVar(&o.brokerPIDs, "broker-pid", "", "comma-separated `PIDs` of the broker's processes, whose CPU time over the window is reported")
	if err := o.parseValidated(fs, args, o.validate); err != nil {
		return nil, err
	}
	return o, nil
}

// integrationFlags are the flags that describe the integration besides
// -integration-config.
var integrationFlags = []string{"type", "url", "subject", "jetstream", "declare", "stream", "channel", "maxlen", "payload", "publish-timeout", "set"}

func (o *publishOptions) validate() error {
	var errs []error
	if o.gateway == "" {
		errs = append(errs, errors.New("-gateway is required: wsbench publish starts the gateway with the route it measures"))
	}
	if o.n < 1 || o.n > maxPerProcess {
		errs = append(errs, fmt.Errorf("-n %d: must be 1 to %d (the clients run in one process)", o.n, maxPerProcess))
	}
	if o.duration <= 0 || o.duration > maxTimeout {
		errs = append(errs, fmt.Errorf("-duration %s: must be more than 0 and at most %s", o.duration, maxTimeout))
	}
	if o.warmup < 0 || o.warmup > maxTimeout {
		errs = append(errs, fmt.Errorf("-warmup %s: must be 0 to %s", o.warmup, maxTimeout))
	}
	if o.drain < 0 || o.drain > 10*time.Minute {
		errs = append(errs, fmt.Errorf("-drain %s: must be 0 to 10m", o.drain))
	}
	if !o.set["timeout"] {
		o.timeout = o.warmup + o.duration + o.drain + time.Minute
	} else if o.timeout < o.warmup+o.duration {
		errs = append(errs, fmt.Errorf("-timeout %s: shorter than -warmup + -duration", o.timeout))
	}
	if o.rate < 0 || o.rate > 1e6 {
		errs = append(errs, fmt.Errorf("-rate %g: must be 0 (closed loop) to 1000000", o.rate))
	}
	if !actionRE.MatchString(o.action) || strings.HasPrefix(o.action, "$") {
		errs = append(errs, fmt.Errorf("-action %q: 1 to 64 characters from A-Z a-z 0-9 _ . : -", o.action))
	} else if minSize := max(len(echoPayload(nil, o.action, 0, 0)), 48); o.size < minSize || o.size > 32768 {
		errs = append(errs, fmt.Errorf("-size %d: must be %d to 32768", o.size, minSize))
	}
	if o.cpuprofile != "" && (o.duration < time.Second || o.duration%time.Second != 0) {
		errs = append(errs, fmt.Errorf("-cpuprofile needs -duration in whole seconds (the profile's length), not %s", o.duration))
	}
	if o.brokerPIDs != "" {
		for _, s := range strings.Split(o.brokerPIDs, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || pid < 1 {
				errs = append(errs, fmt.Errorf("-broker-pid %q: not a process id", s))
				continue
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				errs = append(errs, fmt.Errorf("-broker-pid %d: no such process", pid))
				continue
			}
			o.brokerPIDList = append(o.brokerPIDList, pid)
		}
	}
	if err := o.buildIntegration(); err != nil {
		errs = append(errs, err)
	}
	if o.gateway != "" {
		// -url here is the broker's, not a gateway's as in the other
		// commands.
		set := o.set
		o.set = map[string]bool{}
		for name := range set {
			if name != "url" {
				o.set[name] = true
			}
		}
		errs = append(errs, o.commonOptions.validate(o.n, 1)...)
		o.set = set
	}
	if len(errs) == 0 && len(o.targets) > 0 {
		// The gateway's own validation, with the lines of the
		// integration file where the problem is there.
		listen, mgmt := o.targets[0].Addr, fmt.Sprintf("127.0.0.1:%d", o.mgmtPort)
		text, offset := publishConfig(listen, mgmt, o.logLevel, o.action, o.integration, o.cpuprofile != "")
		if _, err := config.Parse(publishConfigName, []byte(text)); err != nil {
			errs = append(errs, o.integrationLines(err, offset))
		}
	}
	return errors.Join(errs...)
}

// publishConfigName is the name the configs wsbench publish writes have in
// its error messages.
const publishConfigName = "wsbench-publish.yaml"

// buildIntegration fills o.integration and o.typeName from
// -integration-config or from the integration flags.
func (o *publishOptions) buildIntegration() error {
	var given []string
	for _, name := range integrationFlags {
		if o.set[name] {
			given = append(given, "-"+name)
		}
	}
	if o.integrationFile != "" {
		if len(given) > 0 {
			return fmt.Errorf("-integration-config holds the whole integration; %s cannot be added to it", strings.Join(given, ", "))
		}
		b, err := os.ReadFile(o.integrationFile)
		if err != nil {
			return fmt.Errorf("-integration-config: %w", err)
		}
		o.integration = string(b)
	} else {
		if o.itype == "" {
			return errors.New("the integration: give -integration-config FILE, or -type with its keys (-url, -subject, -stream, -set KEY=VALUE, …)")
		}
		o.integration = o.integrationFromFlags()
	}
	var m yaml.Node
	if err := yaml.Unmarshal([]byte(o.integration), &m); err != nil {
		return fmt.Errorf("%s: %w", o.integrationName(), err)
	}
	if len(m.Content) != 1 || m.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: want a YAML mapping with type and the integration's keys", o.integrationName())
	}
	for i := 0; i+1 < len(m.Content[0].Content); i += 2 {
		if k, v := m.Content[0].Content[i], m.Content[0].Content[i+1]; k.Value == "type" {
			o.typeName = v.Value
		}
	}
	if o.typeName == "" {
		return fmt.Errorf("%s: no type", o.integrationName())
	}
	if strings.Contains(o.integration, "\t") {
		return fmt.Errorf("%s: holds a tab; indent with spaces", o.integrationName())
	}
	return nil
}

// integrationFromFlags returns the integration mapping the flags describe,
// keys in the order of integrationFlags.
func (o *publishOptions) integrationFromFlags() string {
	var b strings.Builder
	str := func(key, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", key, strconv.Quote(v))
		}
	}
	str("type", o.itype)
	str("url", o.brokerURL)
	str("subject", o.subject)
	if o.jetstream {
		b.WriteString("jetstream: true\n")
	}
	if o.declare {
		b.WriteString("declare: true\n")
	}
	str("stream", o.stream)
	str("channel", o.channel)
	if o.set["maxlen"] {
		fmt.Fprintf(&b, "maxlen: %d\n", o.maxlen)
	}
	str("payload", o.payload)
	if o.set["publish-timeout"] {
		fmt.Fprintf(&b, "timeout: %s\n", o.pubTimeout)
	}
	for _, kv := range o.sets {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	return b.String()
}

func (o *publishOptions) integrationName() string {
	if o.integrationFile != "" {
		return "-integration-config " + o.integrationFile
	}
	return "the integration flags"
}

// integrationLines rewrites the config errors that point into the
// integration's lines of the generated config (offset lines precede them)
// to point into the -integration-config file.
func (o *publishOptions) integrationLines(err error, offset int) error {
	if o.integrationFile == "" {
		return err
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		var ce *config.Error
		if errors.As(e, &ce) && ce.File == publishConfigName && ce.Line > offset {
			c := *ce
			c.File, c.Line = o.integrationFile, ce.Line-offset
			e = &c
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// publishConfig is the config of a gateway of wsbench publish: loopback
// listeners, log level logLevel, management.pprof when pprof is set, and
// the one route action with route_response and the integration mapping,
// which comes last. It returns the config and the number of lines before
// the integration's.
func publishConfig(listen, mgmt, logLevel, action, integration string, pprof bool) (string, int) {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by wsbench publish. Everything not set here is the embedded
# default (wsgate default-config).
listen: %q
management:
  listen: %q
  pprof: %t
log:
  level: %s
routes:
  %q:
    route_response: true
    integration:
`, listen, mgmt, pprof, logLevel, action)
	offset := strings.Count(b.String(), "\n")
	for _, line := range strings.SplitAfter(strings.TrimRight(integration, "\n")+"\n", "\n") {
		if line == "" {
			continue
		}
		if strings.TrimSpace(line) != "" {
			b.WriteString("      ")
		}
		b.WriteString(line)
	}
	return b.String(), offset
}

// userinfoRE matches the credentials of a URL.
var userinfoRE = regexp.MustCompile(`//[^/@\s"']*@`)

// redacted returns the integration mapping as printed: credentials in URLs
// replaced.
func redacted(integration string) string {
	return userinfoRE.ReplaceAllString(integration, "//xxxxx@")
}

// publishResult is what the connections of a publish run counted in the
// measured window, and after it.
type publishResult struct {
	window     [2]time.Time // start and end of the measured window
	acked      int64        // acknowledgements that arrived within the window
	failed     int64        // Internal server error frames within the window
	other      int64        // other frames within the window
	late       int64        // answers after the window (open loop), any kind
	unanswered int64        // messages never answered (open loop)
	sent       int64        // messages written, warm-up included
	otherEx    string       // one of the other frames
	errs       failures     // connections that failed
	lat        []time.Duration
	latSched   []time.Duration
	cpu        cpuSnapshot   // CPU used in the window
	broker     time.Duration // broker CPU in the window
	load       [2]string     // load average at the window's start and end
	profile    error         // fetching the CPU profile
}

// answer kinds of a frame.
const (
	answerAck = iota
	answerError
	answerOther
)

// classifyAnswer says what a frame from the route is: an acknowledgement
// ({"status":"accepted",…}), the Internal server error frame, or something
// else.
func classifyAnswer(msg []byte) int {
	switch {
	case bytes.HasPrefix(msg, []byte(`{"status":"accepted"`)):
		return answerAck
	case bytes.Contains(msg, []byte(`"Internal server error"`)):
		return answerError
	}
	return answerOther
}

// publishConn is one connection of a publish run with its own tallies.
type publishConn struct {
	*echoConn
	acked, failed, other, late int64
	otherEx                    string
}

func (p *publishConn) count(msg []byte, at time.Time, window [2]time.Time, lat time.Duration, schedLat time.Duration, open bool) {
	if at.Before(window[0]) {
		return
	}
	if !at.Before(window[1]) {
		p.late++
		return
	}
	switch classifyAnswer(msg) {
	case answerAck:
		p.acked++
		p.lat = append(p.lat, lat)
		if open {
			p.latSched = append(p.latSched, schedLat)
		}
	case answerError:
		p.failed++
	default:
		p.other++
		if p.otherEx == "" {
			p.otherEx = string(msg[:min(len(msg), 200)])
		}
	}
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parsePublishOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	printf := func(format string, args ...any) { fmt.Fprintf(stdout, format, args...) }

	workdir, err := makeWorkdir(o.workdir)
	if err != nil {
		return err
	}
	o.configFor = func(_ int, listen, mgmt string) string {
		text, _ := publishConfig(listen, mgmt, o.logLevel, o.action, o.integration, o.cpuprofile != "")
		return text
	}
	gws, pids, stop, err := startReported(ctx, &o.commonOptions, workdir, printf)
	if err != nil {
		return err
	}
	defer stop()
	printf("wsbench publish: %d connections, route %q (route_response) → %s integration, %d-byte messages, %s warm-up, %s measured\n",
		o.n, o.action, o.typeName, o.size, fmtDur(o.warmup), fmtDur(o.duration))
	printf("integration (%s):\n  %s\n", o.integrationName(), strings.ReplaceAll(strings.TrimRight(redacted(o.integration), "\n"), "\n", "\n  "))
	printf("environment: %s; load average %s; %d CPUs\n", envSummary(), loadAverage(), runtime.NumCPU())
	if o.rate == 0 {
		printf("mode: closed loop: each connection sends its next message when the answer to the previous one has arrived (%d in flight)\n", o.n)
	} else {
		printf("mode: open loop: %.0f messages/s offered in total, round robin over the connections; latency from each write and from each scheduled send time\n", o.rate)
	}

	conns, fails := dialConns(ctx, &o.commonOptions, o.n)
	defer func() {
		frame := closeFrame()
		for _, e := range conns {
			_ = e.c.SetWriteDeadline(time.Now().Add(time.Second))
			_ = e.write(frame)
			_ = e.c.Close()
		}
	}()
	printf("connect: %d of %d established; failures: %s\n", len(conns), o.n, fails.String())
	if len(conns) == 0 {
		return errors.New("no connection established")
	}
	if dl, ok := ctx.Deadline(); ok {
		for _, e := range conns {
			_ = e.c.SetDeadline(dl)
		}
	}
	pconns := make([]*publishConn, len(conns))
	for i, e := range conns {
		pconns[i] = &publishConn{echoConn: e}
	}

	start := time.Now()
	res := &publishResult{window: [2]time.Time{start.Add(o.warmup), start.Add(o.warmup + o.duration)}}
	meterDone := make(chan struct{})
	go func() {
		defer close(meterDone)
		o.meter(ctx, res, pids, gws[0])
	}()
	if o.rate == 0 {
		o.closedLoop(ctx, pconns, res)
	} else {
		o.openLoop(ctx, pconns, res)
	}
	<-meterDone
	for _, p := range pconns {
		res.acked += p.acked
		res.failed += p.failed
		res.other += p.other
		res.late += p.late
		if res.otherEx == "" {
			res.otherEx = p.otherEx
		}
		res.lat = append(res.lat, p.lat...)
		res.latSched = append(res.latSched, p.latSched...)
	}
	res.print(stdout, o, len(conns), pids)
	var problems []string
	if res.acked == 0 {
		problems = append(problems, "no message was acknowledged in the window")
	}
	if res.failed > 0 {
		problems = append(problems, fmt.Sprintf("%d Internal server error frames", res.failed))
	}
	if res.other > 0 {
		problems = append(problems, fmt.Sprintf("%d frames neither an acknowledgement nor an error", res.other))
	}
	if n := res.errs.total(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d connections failed", n))
	}
	if res.unanswered > 0 {
		problems = append(problems, fmt.Sprintf("%d messages unanswered", res.unanswered))
	}
	if res.profile != nil {
		problems = append(problems, fmt.Sprintf("CPU profile: %v", res.profile))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// meter takes the CPU readings and the load average at the start and the
// end of the measured window, and the gateway's CPU profile with
// -cpuprofile.
func (o *publishOptions) meter(ctx context.Context, res *publishResult, pids []int, g *gatewayProc) {
	sleepUntil(ctx, res.window[0])
	cpu0, broker0 := takeCPU(pids), cpuOf(o.brokerPIDList)
	res.load[0] = loadAverage()
	var profDone chan struct{}
	if o.cpuprofile != "" {
		profDone = make(chan struct{})
		go func() {
			defer close(profDone)
			res.profile = fetchProfile(ctx, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", o.mgmtPort+g.index, int(o.duration/time.Second)), "", o.cpuprofile)
		}()
	}
	sleepUntil(ctx, res.window[1])
	res.cpu = takeCPU(pids).since(cpu0)
	res.broker = cpuOf(o.brokerPIDList) - broker0
	res.load[1] = loadAverage()
	if profDone != nil {
		<-profDone
	}
}

func cpuOf(pids []int) time.Duration {
	if len(pids) == 0 {
		return 0
	}
	d, _ := cpuTime(pids)
	return d
}

func sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// fetchProfile saves the answer of the pprof URL to file, sending token as
// the bearer token when it is set.
func fetchProfile(ctx context.Context, url, token, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// closedLoop runs every connection with one message in flight until the
// end of the window.
func (o *publishOptions) closedLoop(ctx context.Context, conns []*publishConn, res *publishResult) {
	var seq, sent atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var payload, frame, buf []byte
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(res.window[1]) {
					return
				}
				payload = echoPayload(payload[:0], o.action, int(seq.Add(1)), o.size)
				frame = clientFrame(frame[:0], wsproto.OpText, payload)
				err := p.write(frame)
				if err == nil {
					sent.Add(1)
					buf, err = p.readMessage(buf, false)
				}
				if err != nil {
					mu.Lock()
					res.errs.add(err)
					mu.Unlock()
					return
				}
				now := time.Now()
				p.count(buf, now, res.window, now.Sub(t0), 0, false)
			}
		}()
	}
	wg.Wait()
	res.sent = sent.Load()
}

// openLoop sends at o.rate messages per second in total, round robin over
// conns, until the end of the window, while one goroutine per connection
// reads the answers; then it waits up to o.drain for those still due. A
// connection's answers come in the order of its messages.
func (o *publishOptions) openLoop(ctx context.Context, conns []*publishConn, res *publishResult) {
	var answered atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	for _, p := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				var err error
				buf, err = p.readMessage(buf, false)
				now := time.Now()
				if err != nil {
					if readCtx.Err() == nil {
						mu.Lock()
						res.errs.add(err)
						mu.Unlock()
					}
					return
				}
				p.fifoMu.Lock()
				var m sentMsg
				if len(p.fifo) > 0 {
					m = p.fifo[0]
					p.fifo = p.fifo[1:]
				}
				p.fifoMu.Unlock()
				p.count(buf, now, res.window, now.Sub(m.sent), now.Sub(m.at), true)
				answered.Add(1)
			}
		}()
	}
	stop := func() {
		stopReading()
		for _, p := range conns {
			_ = p.c.SetReadDeadline(time.Unix(1, 0))
		}
		wg.Wait()
	}

	interval := float64(time.Second) / o.rate
	total := int64(math.Ceil(float64(res.window[1].Sub(time.Now())) / interval))
	var payload, frame []byte
	first := time.Now()
	for k := int64(0); k < total && ctx.Err() == nil; k++ {
		at := first.Add(time.Duration(float64(k) * interval))
		if !at.Before(res.window[1]) {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		p := conns[k%int64(len(conns))]
		payload = echoPayload(payload[:0], o.action, int(k), o.size)
		frame = clientFrame(frame[:0], wsproto.OpText, payload)
		p.fifoMu.Lock()
		p.fifo = append(p.fifo, sentMsg{seq: int(k), at: at, sent: time.Now()})
		p.fifoMu.Unlock()
		if err := p.write(frame); err != nil {
			mu.Lock()
			res.errs.add(err)
			mu.Unlock()
			break
		}
		res.sent++
	}
	drainCtx, cancel := context.WithTimeout(ctx, time.Until(res.window[1])+o.drain)
	defer cancel()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for answered.Load() < res.sent && drainCtx.Err() == nil {
		select {
		case <-poll.C:
		case <-drainCtx.Done():
		}
	}
	stop()
	res.unanswered = res.sent - answered.Load()
}

func (res *publishResult) print(w io.Writer, o *publishOptions, conns int, pids []int) {
	printf := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	window := res.window[1].Sub(res.window[0])
	sum := summarize(res.lat)
	printf("\nresults (window of %s after %s of warm-up; load average %s at its start, %s at its end)\n",
		fmtDur(window), fmtDur(o.warmup), res.load[0], res.load[1])
	printf("  acknowledged   %d in the window, %.0f/s (%d messages sent in all)\n", res.acked, float64(res.acked)/window.Seconds(), res.sent)
	printf("  errors         %d Internal server error frames, %d other frames", res.failed, res.other)
	if res.otherEx != "" {
		printf(" (e.g. %q)", res.otherEx)
	}
	printf("; connections failed: %s\n", res.errs.String())
	if o.rate > 0 {
		printf("  after window   %d answers arrived after the window, %d messages never answered (waited %s)\n", res.late, res.unanswered, fmtDur(o.drain))
	}
	printf("  send→ack       %s\n", sum)
	if len(res.latSched) > 0 {
		printf("  from schedule  %s\n", summarize(res.latSched))
	}
	perMsg := func(d time.Duration) time.Duration { return d / time.Duration(max(res.acked, 1)) }
	st, _ := sumStatus(pids)
	gw := res.cpu.gateway
	printf("  gateway        CPU %s over %s (%.0f%% of one core; %s per acknowledged message), VmRSS %s, threads %d\n",
		fmtDur(gw), fmtDur(window), 100*gw.Seconds()/window.Seconds(), fmtDur(perMsg(gw)), fmtBytes(st.VmRSS), st.Threads)
	if len(o.brokerPIDList) > 0 {
		printf("  broker         CPU %s (%.0f%% of one core; %s per acknowledged message), pids %v\n",
			fmtDur(res.broker), 100*res.broker.Seconds()/window.Seconds(), fmtDur(perMsg(res.broker)), o.brokerPIDList)
	}
	ncpu := runtime.NumCPU()
	printf("  CPU            wsbench %s, all other processes %s (%d CPUs = %s)\n", fmtDur(res.cpu.self),
		fmtDur(max(res.cpu.system-gw-res.cpu.self-res.broker, 0)), ncpu, fmtDur(time.Duration(ncpu)*window))
	if o.cpuprofile != "" && res.profile == nil {
		printf("  profile        %s (go tool pprof %s)\n", o.cpuprofile, o.cpuprofile)
	}
	mode := "closed"
	if o.rate > 0 {
		mode = fmt.Sprintf("open(%.0f/s)", o.rate)
	}
	printf("\nsummary: type=%s mode=%s n=%d window=%s acked=%d acked_per_s=%.0f p50=%s p99=%s max=%s errors=%d other=%d gateway_cpu_per_msg=%s load=%s\n",
		o.typeName, mode, conns, fmtDur(window), res.acked, float64(res.acked)/window.Seconds(),
		fmtDur(sum.P50), fmtDur(sum.P99), fmtDur(sum.Max), res.failed, res.other, fmtDur(perMsg(gw)), strings.Fields(res.load[0] + " ?")[0])
}
