//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/servicetest"
	"github.com/wsgate/wsgate/internal/wsproto"
)

// series returns samples every second with figure i of each taken from
// rss, goroutines and fds.
func series(rss, goroutines, fds []int64) []soakSample {
	s := make([]soakSample, len(rss))
	for i := range s {
		s[i] = soakSample{At: time.Duration(i) * time.Second, RSS: rss[i], Goroutines: goroutines[i], FDs: fds[i]}
	}
	return s
}

func repeat(v int64, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// ramp returns n values growing by step from start.
func ramp(start, step int64, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = start + int64(i)*step
	}
	return s
}

func TestJudge(t *testing.T) {
	const mib = 1 << 20
	b := defaultFlatBounds
	// A warm-up ramp, then noise around a plateau.
	noisy := []int64{10 * mib, 100 * mib, 200 * mib, 210 * mib, 190 * mib, 230 * mib, 205 * mib, 215 * mib, 200 * mib, 220 * mib}
	tests := []struct {
		name       string
		samples    []soakSample
		warmup     time.Duration
		flat       bool
		growing    []string // figures judged not flat
		wantReason bool
	}{
		{name: "constant", samples: series(repeat(200*mib, 20), repeat(900, 20), repeat(900, 20)), flat: true},
		{name: "noisy plateau after a warm-up ramp", samples: series(noisy, []int64{20, 500, 900, 950, 870, 980, 900, 920, 880, 940}, repeat(800, 10)),
			warmup: 2 * time.Second, flat: true},
		{name: "the warm-up ramp is judged without a warm-up", samples: series(noisy, repeat(900, 10), repeat(800, 10)),
			growing: []string{"RSS"}},
		{name: "RSS leak", samples: series(ramp(200*mib, 4*mib, 40), repeat(900, 40), repeat(800, 40)), warmup: 8 * time.Second,
			growing: []string{"RSS"}},
		{name: "RSS grows within the bound", samples: series(ramp(200*mib, mib/2, 40), repeat(900, 40), repeat(800, 40)), warmup: 8 * time.Second, flat: true},
		{name: "goroutine leak", samples: series(repeat(200*mib, 40), ramp(900, 30, 40), repeat(800, 40)), warmup: 8 * time.Second,
			growing: []string{"goroutines"}},
		{name: "fd leak", samples: series(repeat(200*mib, 40), repeat(900, 40), ramp(800, 30, 40)), warmup: 8 * time.Second,
			growing: []string{"fds"}},
		{name: "everything leaks", samples: series(ramp(100*mib, 10*mib, 20), ramp(100, 100, 20), ramp(100, 100, 20)),
			growing: []string{"RSS", "goroutines", "fds"}},
		{name: "shrinking is flat", samples: series(ramp(400*mib, -5*mib, 20), ramp(2000, -50, 20), ramp(900, -10, 20)), flat: true},
		{name: "one sample after the warm-up", samples: series(repeat(1, 5), repeat(1, 5), repeat(1, 5)), warmup: 4 * time.Second, wantReason: true},
		{name: "no samples", samples: nil, wantReason: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := judge(tt.samples, tt.warmup, b)
			if v.Flat != tt.flat {
				t.Errorf("Flat = %v, want %v: %+v", v.Flat, tt.flat, v)
			}
			if (v.Reason != "") != tt.wantReason {
				t.Errorf("Reason = %q", v.Reason)
			}
			var growing []string
			for _, f := range v.Figures {
				if !f.Flat {
					growing = append(growing, f.Name)
				}
			}
			if strings.Join(growing, ",") != strings.Join(tt.growing, ",") {
				t.Errorf("growing %v, want %v: %+v", growing, tt.growing, v.Figures)
			}
		})
	}
}

func TestJudgeWindows(t *testing.T) {
	// 20 samples, warm-up 5s: 15 after it, windows of 5.
	v := judge(series(repeat(1, 20), repeat(1, 20), repeat(1, 20)), 5*time.Second, defaultFlatBounds)
	if v.EarlyN != 5 || v.LastN != 5 || v.Early != [2]time.Duration{5 * time.Second, 9 * time.Second} || v.Last != [2]time.Duration{15 * time.Second, 19 * time.Second} {
		t.Errorf("windows %+v", v)
	}
	// The limit is early × (1 + frac) + abs.
	v = judge(series(repeat(100<<20, 4), repeat(1000, 4), repeat(10, 4)), 0, defaultFlatBounds)
	want := []int64{125<<20 + 16<<20, 1250 + 100, 12 + 100}
	for i, f := range v.Figures {
		if f.Limit != want[i] {
			t.Errorf("%s limit %d, want %d", f.Name, f.Limit, want[i])
		}
	}
}

func TestParseGoroutineTotal(t *testing.T) {
	if n, err := parseGoroutineTotal("goroutine profile: total 1234\n"); err != nil || n != 1234 {
		t.Errorf("got %d, %v", n, err)
	}
	for _, bad := range []string{"", "404 page not found", "goroutine profile: total x"} {
		if _, err := parseGoroutineTotal(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSoakConfig(t *testing.T) {
	c := soakConfig("127.0.0.1:8080", "127.0.0.1:9090", "warn", "http://127.0.0.1:4567")
	cfg, err := config.Parse("soak.yaml", []byte(c))
	if err != nil {
		t.Fatalf("the gateway rejects the config: %v\n%s", err, c)
	}
	m := cfg.Management
	if !m.Pprof || m.Auth.BearerTokensEnv != soakTokenEnv || m.Auth.SigV4.AccessKeyID != soakKeyID || m.ReadTimeout != soakReadTimeout || m.IdleTimeout != soakIdleTimeout {
		t.Errorf("management %+v", m)
	}
	if cfg.Limits.MaxSubscriptionsPerConnection != soakMaxSubscriptions || cfg.Routes["subscribe"].Builtin != config.BuiltinSubscribe ||
		cfg.Routes["slow"].Integration.URL != "http://127.0.0.1:4567/slow" || cfg.Routes["$disconnect"].Integration.URL != "http://127.0.0.1:4567/disconnect" {
		t.Errorf("config %s", c)
	}
	if cfg.Limits.MaxMessageBytes < slowMessageBytes || cfg.Limits.MaxFrameBytes < slowFrameBytes || cfg.Limits.MaxInflightMessages < slowMessages {
		t.Errorf("the slow kind's messages are over the limits: %+v", cfg.Limits)
	}
}

func TestSoakOptions(t *testing.T) {
	o, err := parseSoakOptions(strings.Fields("-gateway ./wsgate -duration 3s -interval 500ms"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.timeout != 3*time.Second+2*time.Minute || o.clients != 4 || o.warmup != 0.2 {
		t.Errorf("defaults: %+v", o)
	}
	for _, args := range []string{
		"-duration 3s", // no gateway
		"-gateway ./wsgate -duration 3s -interval 1s",    // no windows
		"-gateway ./wsgate -port 9090",                   // same ports
		"-gateway ./wsgate -clients 0",                   // no clients
		"-gateway ./wsgate -warmup 0.9",                  // no room after the warm-up
		"-gateway ./wsgate -slow-min 2s -slow-max 1s",    // min above max
		"-gateway ./wsgate -slow-max 10s",                // the integration times out
		"-gateway ./wsgate -duration 3s -timeout 2s",     // timeout before the end
		"-gateway ./wsgate -duration 3s -log-level loud", // unknown level
	} {
		if _, err := parseSoakOptions(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestFragmented(t *testing.T) {
	msg := slowMessage(7)
	if len(msg) != slowMessageBytes || !bytes.HasPrefix(msg, []byte(`{"action":"slow","k":7,"pad":"x`)) || !bytes.HasSuffix(msg, []byte(`x"}`)) {
		t.Fatalf("message %d bytes, %.40q…", len(msg), msg)
	}
	// The gateway's parser with its default limits takes them as one
	// message: no frame over max_frame_bytes.
	p := wsproto.NewParser(wsproto.Limits{MaxFrameBytes: slowFrameBytes, MaxMessageBytes: 131072})
	h := &collect{}
	if err := p.Feed(fragmented(msg, slowFrameBytes), h); err != nil {
		t.Fatal(err)
	}
	if len(h.got) != 1 || !bytes.Equal(h.got[0], msg) {
		t.Errorf("reassembled %d messages", len(h.got))
	}
}

// collect is a wsproto.Handler keeping the messages.
type collect struct{ got [][]byte }

func (c *collect) OnMessage(_ wsproto.Opcode, p []byte) error {
	c.got = append(c.got, append([]byte(nil), p...))
	return nil
}
func (c *collect) OnPing([]byte) error       { return nil }
func (c *collect) OnPong([]byte) error       { return nil }
func (c *collect) OnClose(int, string) error { return nil }

// freePort returns a port for a gateway the test starts as a process
// (servicetest.FreePort).
func freePort(t *testing.T) int {
	t.Helper()
	p, err := servicetest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSoakShort runs a short soak against a gateway built from this tree
// and checks that every hostile kind ran and was refused as expected. The
// run is too short for a verdict on growth (the in-flight budget is still
// filling), so that part of the result is not checked.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "wsgate")
	if out, err := exec.Command("go", "build", "-o", bin, "../wsgate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port, mgmtPort := freePort(t), freePort(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := runSoak(ctx, strings.Fields("-gateway "+bin+" -duration 3s -interval 500ms -clients 2 -workdir "+dir+
		" -port "+strconv.Itoa(port)+" -mgmt-port "+strconv.Itoa(mgmtPort)), &out, io.Discard)
	text := out.String()
	if err != nil {
		for _, bad := range []string{"unexpected", "operation completed", "exited", "no comparison"} {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("soak failed: %v", err)
			}
		}
	}
	if strings.Contains(text, "UNEXPECTED") {
		t.Errorf("unexpected outcomes")
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^  slow: [1-9]\d* operations$`),
		regexp.MustCompile(`(?m)^ +[1-9]\d*  64 messages and a close frame sent, socket closed$`),
		regexp.MustCompile(`(?m)^  mgmt: [1-9]\d* operations$`),
		regexp.MustCompile(`(?m)^ +[1-9]\d*  no credentials: 403$`),
		regexp.MustCompile(`(?m)^ +[1-9]\d*  malformed SigV4: 403$`),
		regexp.MustCompile(`(?m)^ +[1-9]\d*  pprof without credentials: 403$`),
		regexp.MustCompile(`(?m)^  sub: [1-9]\d* operations$`),
		regexp.MustCompile(`(?m)^ +[1-9]\d*  128 subscribed, the next refused \(Subscription limit exceeded\); too-long and control-character topics Forbidden$`),
		regexp.MustCompile(`(?m)^  slow backend: [1-9]\d* MESSAGE events answered, [1-9]\d* \$disconnect events; 0 ordering violations$`),
		regexp.MustCompile(`(?m)^ +\S+ +\S+ MiB +\d+ +\d+ +[1-9]\d* `), // a sample with a goroutine count
		regexp.MustCompile(`(?m)^  goroutines early +\d+`),
	} {
		if !want.MatchString(text) {
			t.Errorf("output lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", text)
	}
}

// TestSoakFailsOnUnexpected checks that an unexpected outcome fails the
// run whatever the figures.
func TestSoakFailsOnUnexpected(t *testing.T) {
	r := &soakRun{o: &soakOptions{duration: 4 * time.Second, warmup: 0, bounds: defaultFlatBounds}, backend: &slowBackend{}}
	for k := range numKinds {
		r.ops[k].Add(1)
	}
	samples := series(repeat(100, 8), repeat(10, 8), repeat(10, 8))
	if err := r.report(io.Discard, samples, nil, func() {}); err != nil {
		t.Fatalf("clean run: %v", err)
	}
	r.outc[kindSub].add("subscription 129 accepted, beyond the cap of 128", true, "soak/t1")
	err := r.report(io.Discard, samples, nil, func() {})
	if err == nil || !strings.Contains(err.Error(), "1 unexpected outcomes") {
		t.Errorf("with an unexpected outcome: %v", err)
	}
	r = &soakRun{o: r.o, backend: &slowBackend{}}
	if err := r.report(io.Discard, samples, errors.New("gateway 0 (pid 1) exited"), func() {}); err == nil || !strings.Contains(err.Error(), "no slow operation completed") || !strings.Contains(err.Error(), "exited") {
		t.Errorf("gateway died, nothing ran: %v", err)
	}
}
