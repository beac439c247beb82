//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/servicetest"
)

func TestPublishOptions(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "type: redis\nurl: redis://127.0.0.1:6379/0\nstream: s\nmaxlen: 1000\n")
	badKey := write("bad.yaml", "type: redis\nurl: redis://127.0.0.1:6379/0\n\nstream: s\nsubject: x\n")
	notMap := write("list.yaml", "- type: redis\n")
	noType := write("notype.yaml", "url: redis://127.0.0.1:6379/0\n")
	const gw = "-gateway ./wsgate "
	tests := []struct {
		name     string
		args     string
		wantErr  []string // each must appear in the error
		wantYAML string   // the integration mapping, when no error
	}{
		{name: "nats core from flags", args: gw + "-type nats -url nats://127.0.0.1:4222 -subject bench.{connectionId}",
			wantYAML: "type: \"nats\"\nurl: \"nats://127.0.0.1:4222\"\nsubject: \"bench.{connectionId}\"\n"},
		{name: "jetstream with every nats flag", args: gw + "-type nats -url nats://127.0.0.1:4222 -subject b.x -jetstream -declare -stream B -payload body -publish-timeout 2s",
			wantYAML: "type: \"nats\"\nurl: \"nats://127.0.0.1:4222\"\nsubject: \"b.x\"\njetstream: true\ndeclare: true\nstream: \"B\"\npayload: \"body\"\ntimeout: 2s\n"},
		{name: "redis stream with maxlen", args: gw + "-type redis -url redis://127.0.0.1:6379/0 -stream s -maxlen 100",
			wantYAML: "type: \"redis\"\nurl: \"redis://127.0.0.1:6379/0\"\nstream: \"s\"\nmaxlen: 100\n"},
		{name: "-set adds keys as YAML", args: gw + "-type redis -set url=redis://127.0.0.1:6379/0 -set channel=c",
			wantYAML: "type: \"redis\"\nurl: redis://127.0.0.1:6379/0\nchannel: c\n"},
		{name: "file", args: gw + "-integration-config " + good,
			wantYAML: "type: redis\nurl: redis://127.0.0.1:6379/0\nstream: s\nmaxlen: 1000\n"},
		{name: "no gateway", args: "-type redis -url redis://127.0.0.1:6379/0 -stream s", wantErr: []string{"-gateway is required"}},
		{name: "no integration", args: gw, wantErr: []string{"give -integration-config FILE, or -type"}},
		{name: "file and flags", args: gw + "-integration-config " + good + " -maxlen 5 -set a=b", wantErr: []string{"-maxlen, -set cannot be added"}},
		{name: "missing file", args: gw + "-integration-config " + filepath.Join(dir, "none.yaml"), wantErr: []string{"-integration-config: open"}},
		{name: "not a mapping", args: gw + "-integration-config " + notMap, wantErr: []string{"want a YAML mapping"}},
		{name: "no type in the file", args: gw + "-integration-config " + noType, wantErr: []string{"no type"}},
		// The gateway's own checks, on the lines of the file.
		{name: "a key of another type, at its line in the file", args: gw + "-integration-config " + badKey,
			wantErr: []string{badKey + ":5: routes.publish.integration.subject: only used by nats integrations"}},
		{name: "unknown type", args: gw + "-type kafka -url x", wantErr: []string{"routes.publish.integration.type"}},
		{name: "the type's own checks", args: gw + "-type nats -url nats://127.0.0.1:4222", wantErr: []string{"routes.publish.integration.subject"}},
		{name: "a bad -set", args: gw + "-type redis -set URL", wantErr: []string{"invalid command line"}},
		{name: "bounds", args: gw + "-type redis -url redis://127.0.0.1:6379/0 -stream s -n 0 -duration 0s -rate -1 -size 10 -drain -1s",
			wantErr: []string{"-n 0", "-duration 0s", "-rate -1", "-size 10", "-drain -1s"}},
		{name: "$ routes are not measured", args: gw + "-type redis -url redis://127.0.0.1:6379/0 -stream s -action $default", wantErr: []string{"-action"}},
		{name: "profile needs whole seconds", args: gw + "-type redis -url redis://127.0.0.1:6379/0 -stream s -cpuprofile p -duration 1500ms",
			wantErr: []string{"-cpuprofile needs -duration in whole seconds"}},
		{name: "timeout shorter than the run", args: gw + "-type redis -url redis://127.0.0.1:6379/0 -stream s -duration 10s -timeout 5s",
			wantErr: []string{"-timeout 5s: shorter"}},
		{name: "broker pid", args: gw + "-type redis -url redis://127.0.0.1:6379/0 -stream s -broker-pid x", wantErr: []string{`-broker-pid "x"`}},
		{name: "ports of the gateway", args: gw + "-type redis -url redis://127.0.0.1:6379/0 -stream s -port 9090", wantErr: []string{"overlap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parsePublishOptions(strings.Fields(tt.args), io.Discard)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("accepted; integration:\n%s", o.integration)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.integration != tt.wantYAML {
				t.Errorf("integration\n%s\nwant\n%s", o.integration, tt.wantYAML)
			}
			if o.timeout != o.warmup+o.duration+o.drain+time.Minute {
				t.Errorf("default timeout %s", o.timeout)
			}
		})
	}
}

func TestPublishConfig(t *testing.T) {
	integration := "type: nats\nurl: nats://127.0.0.1:4222\n\n# a comment\nsubject: orders.{connectionId}\njetstream: true\n"
	text, offset := publishConfig("127.0.0.1:8080", "127.0.0.1:9090", "warn", "order", integration, true)
	cfg, err := config.Parse("publish.yaml", []byte(text))
	if err != nil {
		t.Fatalf("the gateway rejects the config: %v\n%s", err, text)
	}
	r, ok := cfg.Routes["order"]
	if !ok || !r.RouteResponse || r.Integration.Type != config.IntegrationNATS || r.Integration.Subject != "orders.{connectionId}" || !r.Integration.JetStream {
		t.Errorf("route %+v", r)
	}
	if len(cfg.Routes) != 1 || !cfg.Management.Pprof || cfg.Listen != "127.0.0.1:8080" || cfg.Management.Listen != "127.0.0.1:9090" {
		t.Errorf("config %+v", cfg)
	}
	if lines := strings.Split(text, "\n"); lines[offset] != "      type: nats" {
		t.Errorf("line %d is %q, want the integration's first", offset+1, lines[offset])
	}
}

func TestClassifyAnswer(t *testing.T) {
	for msg, want := range map[string]int{
		`{"status":"accepted","requestId":"x","subject":"s"}`:                       answerAck,
		`{"message": "Internal server error", "connectionId":"c", "requestId":"r"}`: answerError,
		`{"message": "Forbidden", "connectionId":"c", "requestId":"r"}`:             answerOther,
		``: answerOther,
	} {
		if got := classifyAnswer([]byte(msg)); got != want {
			t.Errorf("classifyAnswer(%q) = %d, want %d", msg, got, want)
		}
	}
}

func TestRedacted(t *testing.T) {
	in := "type: redis\nurl: \"redis://user:secret@127.0.0.1:6379/0\"\nurl2: nats://tok@h:4222,nats://h2:4222\n"
	got := redacted(in)
	if strings.Contains(got, "secret") || strings.Contains(got, "tok@") || !strings.Contains(got, "redis://xxxxx@127.0.0.1:6379/0") || !strings.Contains(got, "nats://h2:4222") {
		t.Errorf("redacted:\n%s", got)
	}
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// gatewayBinary builds the gateway of this tree once for the package's
// tests.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wsbench-test-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "wsgate")
		if out, err := exec.Command("go", "build", "-o", builtBin, "../wsgate").CombinedOutput(); err != nil {
			buildErr = &buildFailure{err, out}
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return builtBin
}

type buildFailure struct {
	err error
	out []byte
}

func (b *buildFailure) Error() string { return b.err.Error() + "\n" + string(b.out) }

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		// A wsbench subcommand started by a test (selfCommand).
		main()
	}
	if os.Getenv(fakeCentrifugoEnv) == "1" {
		os.Exit(fakeCentrifugo(os.Args[1:]))
	}
	code := m.Run()
	if builtBin != "" {
		_ = os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// runPublishShort runs wsbench publish briefly against a gateway built
// from this tree, on free ports, and returns its output and error.
func runPublishShort(t *testing.T, args string) (string, error) {
	t.Helper()
	bin := gatewayBinary(t)
	dir := t.TempDir()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := runPublish(ctx, strings.Fields("-gateway "+bin+" -workdir "+dir+" -n 4 -warmup 200ms -duration 1s -drain 5s"+
		" -port "+strconv.Itoa(freePort(t))+" -mgmt-port "+strconv.Itoa(freePort(t))+" "+args), &out, io.Discard)
	return out.String(), err
}

var summaryRE = regexp.MustCompile(`(?m)^summary: type=(\S+) mode=(\S+) n=4 window=1s acked=([0-9]+) acked_per_s=[0-9]+ p50=\S+ p99=\S+ max=\S+ errors=([0-9]+) other=0 gateway_cpu_per_msg=\S+ load=\S+$`)

// TestPublishShort measures core NATS, JetStream and a Redis stream for a
// second each, closed and open loop, and checks that messages were
// acknowledged without errors.
func TestPublishShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	nats := servicetest.NATS(t)
	runs := []struct{ name, args, typ string }{
		{"nats core", "-type nats -url " + nats.URL() + " -subject bench.{connectionId}", "nats"},
		{"jetstream, open loop", "-type nats -url " + nats.URL() + " -subject js.{connectionId} -jetstream -declare -stream BENCH -rate 200 -cpuprofile " +
			filepath.Join(t.TempDir(), "cpu.prof"), "nats"},
	}
	if _, err := exec.LookPath("redis-server"); err == nil || os.Getenv(servicetest.RequireEnv) == "1" {
		redis := servicetest.Redis(t)
		runs = append(runs, struct{ name, args, typ string }{"redis stream", "-type redis -url " + redis.URL() + " -stream bench -maxlen 1000", "redis"})
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			out, err := runPublishShort(t, r.args)
			if err != nil {
				t.Errorf("run failed: %v", err)
			}
			m := summaryRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no summary line in:\n%s", out)
			}
			if m[1] != r.typ || m[3] == "0" || m[4] != "0" {
				t.Errorf("summary %q", m[0])
			}
			if want := map[bool]string{false: "closed", true: "open(200/s)"}[strings.Contains(r.args, "-rate")]; m[2] != want {
				t.Errorf("mode %q, want %q", m[2], want)
			}
			if strings.Contains(r.args, "-cpuprofile") && !strings.Contains(out, "  profile        ") {
				t.Errorf("no profile written:\n%s", out)
			}
		})
	}
}

// TestPublishErrors runs against a broker that is not there: every
// message gets the Internal server error frame, which the run counts and
// fails on.
func TestPublishErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	out, err := runPublishShort(t, "-type redis -url redis://127.0.0.1:"+strconv.Itoa(freePort(t))+"/0 -stream bench")
	if err == nil || !strings.Contains(err.Error(), "no message was acknowledged") || !strings.Contains(err.Error(), "Internal server error frames") {
		t.Errorf("run error %v", err)
	}
	m := summaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in:\n%s", out)
	}
	if m[3] != "0" || m[4] == "0" {
		t.Errorf("summary %q", m[0])
	}
}

// runEchoShort runs wsbench echo with args, bounded by a minute, and
// returns its output; the test fails when the run does.
func runEchoShort(t *testing.T, args string) string {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := runEcho(ctx, strings.Fields(args), &out, io.Discard); err != nil {
		t.Fatalf("run failed: %v\n%s", err, out.String())
	}
	return out.String()
}

// TestEchoBackendShort runs wsbench echo briefly through each integration
// to the trivial backend (a wsbench process; for local, function processes
// the gateway starts) and checks that every message came back and that the
// backend's CPU and TIME-WAIT sockets were counted.
func TestEchoBackendShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway and the backend")
	}
	bin := gatewayBinary(t)
	summary := regexp.MustCompile(`(?m)^summary \(cpu\): backend=(\S+) gateway_cpu_per_msg=\S+ backend_cpu_per_msg=\S+ wsbench_cpu_per_msg=\S+ time_wait_before=([0-9]+) time_wait_after=([0-9]+) load=\S+ server=wsgate$`)
	for _, kind := range []string{backendHTTP, backendH2C, backendLambda, backendLocal} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			prof := filepath.Join(dir, "cpu.prof")
			args := "-gateway " + bin + " -workdir " + dir + " -n 8 -messages 400 -warmup 40 -backend " + kind +
				" -port " + strconv.Itoa(freePort(t)) + " -mgmt-port " + strconv.Itoa(freePort(t)) + " -cpuprofile " + prof + " -profile-seconds 1"
			text := runEchoShort(t, args)
			if !strings.Contains(text, "440 sent, 440 echoed, 0 echoes differed") {
				t.Errorf("not every message came back unchanged:\n%s", text)
			}
			m := summary.FindStringSubmatch(text)
			if m == nil || m[1] != kind {
				t.Fatalf("no summary (cpu) line for %s in:\n%s", kind, text)
			}
			if !strings.Contains(text, "  backend        "+kind+": CPU ") {
				t.Errorf("no backend CPU line:\n%s", text)
			}
			if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
				t.Errorf("no CPU profile written: %v\n%s", err, text)
			}
			// Connections to the backend are reused: the 440 calls add no
			// TIME-WAIT socket during the run. The count is of every socket
			// on the backend's port, which the kernel may have handed out
			// again while sockets of an earlier process on it were still in
			// TIME-WAIT, so the test compares after with before. With HTTP/2
			// the first calls, made at once, may each dial before one
			// connection is up; the spares are closed, at most one per
			// connection in flight.
			before, _ := strconv.Atoi(m[2])
			after, _ := strconv.Atoi(m[3])
			switch grew := after - before; {
			case kind == backendH2C && grew > 8:
				t.Errorf("TIME-WAIT sockets to the backend: %d before the run, %d after, want at most 8 more\n%s", before, after, timeWaitLines(text))
			case kind != backendH2C && grew > 0:
				t.Errorf("TIME-WAIT sockets to the backend: %d before the run, %d after, want no more\n%s", before, after, timeWaitLines(text))
			}
		})
	}
}

// timeWaitLines returns the TIME-WAIT lines of /proc/net/tcp and tcp6 that
// involve the backend port a run's output names, to show which sockets a
// failed count saw.
func timeWaitLines(text string) string {
	m := regexp.MustCompile(`backend: \S+, pid [0-9]+, 127\.0\.0\.1:([0-9]+)`).FindStringSubmatch(text)
	if m == nil {
		return "(no backend address in the output)"
	}
	port, _ := strconv.Atoi(m[1])
	want := fmt.Sprintf(":%04X", port)
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) >= 4 && fs[3] == "06" && (strings.HasSuffix(fs[1], want) || strings.HasSuffix(fs[2], want)) {
				out = append(out, f+": "+strings.TrimSpace(line))
			}
		}
	}
	return strings.Join(out, "\n")
}
