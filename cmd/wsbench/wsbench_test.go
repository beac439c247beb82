//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/wsproto"
)

func ms(v ...int) []time.Duration {
	d := make([]time.Duration, len(v))
	for i, x := range v {
		d[i] = time.Duration(x) * time.Millisecond
	}
	return d
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample p50", ms(7), 50, 7 * time.Millisecond},
		{"one sample p99", ms(7), 99, 7 * time.Millisecond},
		{"p0 is the minimum", ms(1, 2, 3), 0, time.Millisecond},
		{"p100 is the maximum", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 1..100 rounds up", hundred, 99.9, 100 * time.Millisecond},
		{"p50 of four is the second", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p51 of four is the third", ms(1, 2, 3, 4), 51, 3 * time.Millisecond},
		{"p25 of four is the first", ms(1, 2, 3, 4), 25, time.Millisecond},
		{"above 100 clamps", ms(1, 2), 150, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %g) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	s := summarize(ms(5, 1, 4, 2, 3))
	want := latencySummary{N: 5, Min: time.Millisecond, P50: 3 * time.Millisecond, P90: 5 * time.Millisecond,
		P99: 5 * time.Millisecond, P999: 5 * time.Millisecond, Max: 5 * time.Millisecond, Mean: 3 * time.Millisecond}
	if s != want {
		t.Errorf("summarize = %+v, want %+v", s, want)
	}
	if got := summarize(nil); got.N != 0 || got.String() != "no samples" {
		t.Errorf("summarize(nil) = %+v %q", got, got.String())
	}
}

func TestParseTargetLoopbackOnly(t *testing.T) {
	tests := []struct {
		raw      string
		wantAddr string
		wantPath string
		wantErr  string
	}{
		{"ws://127.0.0.1:8080/", "127.0.0.1:8080", "/", ""},
		{"ws://127.0.0.1:8080", "127.0.0.1:8080", "/", ""},
		{"ws://127.1.2.3:9000/prod?x=1", "127.1.2.3:9000", "/prod?x=1", ""},
		{"ws://localhost:8080/", "127.0.0.1:8080", "/", ""},
		{"ws://[::1]:8080/", "[::1]:8080", "/", ""},
		{"ws://127.0.0.1/", "127.0.0.1:80", "/", ""},
		{"ws://10.0.0.1:8080/", "", "", "not a loopback address"},
		{"ws://192.168.1.5/", "", "", "not a loopback address"},
		{"ws://[::2]:8080/", "", "", "not a loopback address"},
		{"ws://0.0.0.0:8080/", "", "", "not a loopback address"},
		{"ws://example.com:8080/", "", "", "not an IP address"},
		{"ws://128.0.0.1:8080/", "", "", "not a loopback address"},
		{"wss://127.0.0.1:8443/", "127.0.0.1:8443", "/", ""},
		{"wss://127.0.0.1/", "127.0.0.1:443", "/", ""},
		{"wss://10.0.0.1:8443/", "", "", "not a loopback address"},
		{"http://127.0.0.1:8080/", "", "", "scheme must be ws:// or wss://"},
		{"ws://127.0.0.1:99999/", "", "", "invalid port"},
		{"ws://u:p@127.0.0.1:8080/", "", "", "user info"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := parseTarget(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseTarget(%q) error = %v, want one containing %q", tt.raw, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseTarget(%q): %v", tt.raw, err)
			}
			if got.TLS != strings.HasPrefix(tt.raw, "wss:") {
				t.Errorf("parseTarget(%q).TLS = %v", tt.raw, got.TLS)
			}
			if got.Addr != tt.wantAddr || got.Path != tt.wantPath {
				t.Errorf("parseTarget(%q) = addr %q path %q, want %q %q", tt.raw, got.Addr, got.Path, tt.wantAddr, tt.wantPath)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for ip, want := range map[string]bool{
		"127.0.0.1": true, "127.255.255.254": true, "127.0.0.2": true, "::1": true, "::ffff:127.0.0.1": true,
		"126.255.255.255": false, "128.0.0.0": false, "0.0.0.0": false, "::": false, "fe80::1": false, "10.1.2.3": false,
	} {
		if got := isLoopback(net.ParseIP(ip)); got != want {
			t.Errorf("isLoopback(%s) = %v, want %v", ip, got, want)
		}
	}
}

func TestIdleOptions(t *testing.T) {
	tests := []struct {
		name        string
		args        string
		wantErr     []string // each must appear in the error
		wantWorkers int
		wantTargets []string
	}{
		{name: "defaults target the embedded gateway", args: "-n 15000", wantWorkers: 1, wantTargets: []string{"127.0.0.1:8080"}},
		{name: "workers are one per 18000", args: "-n 50000 -gateway wsgate -gateways 3", wantWorkers: 3,
			wantTargets: []string{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"}},
		{name: "explicit workers", args: "-n 20000 -workers 4 -url ws://127.0.0.1:8080/,ws://127.0.0.1:8081/", wantWorkers: 4,
			wantTargets: []string{"127.0.0.1:8080", "127.0.0.1:8081"}},
		{name: "n is required", args: "", wantErr: []string{"-n 0"}},
		{name: "n above the bound", args: "-n 200001", wantErr: []string{"-n 200001"}},
		{name: "one worker cannot hold 20000", args: "-n 20000 -workers 1", wantErr: []string{"use -workers 2"}},
		{name: "one gateway cannot hold 50000", args: "-n 50000 -gateway wsgate", wantErr: []string{"use -gateways 3"}},
		{name: "non-loopback url", args: "-n 10 -url ws://10.0.0.1:8080/", wantErr: []string{"not a loopback address"}},
		{name: "url with gateway", args: "-n 10 -gateway wsgate -url ws://127.0.0.1:8080/", wantErr: []string{"-url cannot be used with -gateway"}},
		{name: "pid with gateway", args: "-n 10 -gateway wsgate -pid 1", wantErr: []string{"-pid cannot be used with -gateway"}},
		{name: "gateways without gateway", args: "-n 10 -gateways 2", wantErr: []string{"-gateways needs -gateway"}},
		{name: "config with several gateways", args: "-n 10 -gateway wsgate -gateways 2 -config x.yaml", wantErr: []string{"-config works with a single gateway"}},
		{name: "overlapping ports", args: "-n 10 -gateway wsgate -gateways 3 -port 9089 -mgmt-port 9090", wantErr: []string{"overlap"}},
		{name: "too many dialers", args: "-n 10 -dialers 257", wantErr: []string{"-dialers 257"}},
		{name: "zero dialers", args: "-n 10 -dialers 0", wantErr: []string{"-dialers 0"}},
		{name: "hold not below timeout", args: "-n 10 -hold 2m", wantErr: []string{"-hold 2m0s"}},
		{name: "timeout bound", args: "-n 10 -timeout 2h", wantErr: []string{"-timeout 2h0m0s"}},
		{name: "dial timeout above timeout", args: "-n 10 -timeout 5s -dial-timeout 10s -hold 1s", wantErr: []string{"-dial-timeout"}},
		{name: "source base outside loopback", args: "-n 10 -source-base 10.0.0.2", wantErr: []string{"-source-base"}},
		{name: "sources leave 127/8", args: "-n 40000 -workers 3 -sources 64 -source-base 127.255.255.100", wantErr: []string{"leave 127.0.0.0/8"}},
		{name: "bad pid", args: "-n 10 -pid abc", wantErr: []string{`-pid "abc"`}},
		{name: "every problem is reported", args: "-n 0 -dialers 0 -url ws://8.8.8.8/", wantErr: []string{"-n 0", "-dialers 0", "not a loopback"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseIdleOptions(strings.Fields(tt.args), io.Discard)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("parseIdleOptions(%q) succeeded, want errors %q", tt.args, tt.wantErr)
				}
				var ue usageError
				if !errors.As(err, &ue) {
					t.Errorf("error %v is not a usageError", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("parseIdleOptions(%q) error = %v, want it to contain %q", tt.args, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parseIdleOptions(%q): %v", tt.args, err)
			}
			if o.workers != tt.wantWorkers {
				t.Errorf("workers = %d, want %d", o.workers, tt.wantWorkers)
			}
			var addrs []string
			for _, tg := range o.targets {
				addrs = append(addrs, tg.Addr)
			}
			if !slices.Equal(addrs, tt.wantTargets) {
				t.Errorf("targets = %v, want %v", addrs, tt.wantTargets)
			}
		})
	}
}

func TestParseFlagsRejectsPositional(t *testing.T) {
	_, err := parseIdleOptions([]string{"-n", "10", "extra"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
		t.Errorf("err = %v, want unexpected argument", err)
	}
	if _, err := parseIdleOptions([]string{"-nope"}, io.Discard); !errors.Is(err, errUsagePrinted) {
		t.Errorf("unknown flag: err = %v, want errUsagePrinted", err)
	}
}

func TestEchoOptions(t *testing.T) {
	tests := []struct {
		args    string
		wantErr string
	}{
		{"-n 1000 -messages 100000", ""},
		{"-n 1 -messages 1 -warmup 0 -rate 5000 -size 32768", ""},
		{"-n 19001", "-n 19001"},
		{"-messages 0", "-messages 0"},
		{"-rate -1", "-rate -1"},
		{"-size 47", "-size 47"},
		{"-size 32769", "-size 32769"},
		{"-action a\"b", "-action"},
		{"-action " + strings.Repeat("a", 65), "-action"},
		{"-url ws://1.1.1.1/", "not a loopback address"},
		{"-ping -size 125", ""},
		{"-ping -size 126", "-size 126: must be 48 to 125"},
		{"-gateway ./wsgate -backend http", ""},
		{"-gateway ./wsgate -backend local -backend-concurrency 8 -cpuprofile p", ""},
		{"-backend http", "-backend http needs -gateway"},
		{"-cpuprofile p", "-cpuprofile needs -gateway"},
		{"-gateway ./wsgate -backend kafka", `-backend "kafka": one of mock, http, h2c, lambda, local`},
		{"-gateway ./wsgate -config c.yaml -backend h2c", "not to -config"},
		{"-gateway ./wsgate -backend http -ping -size 100", "pings reach no integration"},
		{"-gateway ./wsgate -backend http -action y", "-action must be x"},
		{"-gateway ./wsgate -backend local -backend-concurrency 0", "-backend-concurrency 0"},
		{"-gateway ./wsgate -cpuprofile p -profile-seconds 0", "-profile-seconds 0"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			_, err := parseEchoOptions(strings.Fields(tt.args), io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseEchoOptions(%q): %v", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parseEchoOptions(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestShareCoversEveryIndexOnce(t *testing.T) {
	for _, c := range []struct{ n, workers int }{{50000, 3}, {15000, 1}, {10, 4}, {7, 7}, {19001, 2}} {
		next := 0
		for w := range c.workers {
			start, count := share(c.n, c.workers, w)
			if start != next {
				t.Fatalf("share(%d, %d, %d) starts at %d, want %d", c.n, c.workers, w, start, next)
			}
			if count < c.n/c.workers || count > c.n/c.workers+1 {
				t.Errorf("share(%d, %d, %d) count %d is uneven", c.n, c.workers, w, count)
			}
			next = start + count
		}
		if next != c.n {
			t.Errorf("shares of %d over %d end at %d", c.n, c.workers, next)
		}
	}
}

func TestSources(t *testing.T) {
	base, err := sourceRange("127.0.0.2", 12)
	if err != nil {
		t.Fatal(err)
	}
	if got := nthSource(base, 0).String(); got != "127.0.0.2" {
		t.Errorf("nthSource(0) = %s", got)
	}
	if got := nthSource(base, 254).String(); got != "127.0.1.0" {
		t.Errorf("nthSource(254) = %s, want 127.0.1.0 (carry into the next octet)", got)
	}
	if _, err := sourceRange("127.255.255.250", 5); err != nil {
		t.Errorf("127.255.255.250 + 5: %v", err)
	}
	if _, err := sourceRange("127.255.255.250", 6); err == nil {
		t.Error("127.255.255.250 + 6 reaches the broadcast address, want error")
	}
	if _, err := sourceRange("127.0.0.0", 1); err == nil {
		t.Error("127.0.0.0 accepted, want error")
	}
	if _, err := sourceRange("::1", 1); err == nil {
		t.Error("::1 accepted as a source base, want error")
	}
}

func TestWorkerArgsRoundTrip(t *testing.T) {
	t1, _ := parseTarget("ws://127.0.0.1:8080/")
	t2, _ := parseTarget("ws://127.0.0.1:8081/")
	spec := workerSpec{
		ID: 2, Start: 33334, Count: 16666, Targets: []target{t1, t2},
		Sources: []net.IP{net.ParseIP("127.0.0.10").To4(), net.ParseIP("127.0.0.11").To4()},
		Dialers: 42, DialTimeout: 7 * time.Second, Keepalive: 5 * time.Second, CloseWait: 3 * time.Second,
	}
	args := spec.args()
	if args[0] != "idle-worker" {
		t.Fatalf("args[0] = %q", args[0])
	}
	got, err := parseWorkerArgs(args[1:], io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(spec) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, spec)
	}
	bad := append(slices.Clone(args[1:]), "-sources", "10.0.0.1")
	if _, err := parseWorkerArgs(bad, io.Discard); err == nil {
		t.Error("worker accepted a non-loopback source address")
	}

	// The TLS version of wss:// targets reaches the worker.
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		w1, _ := parseTarget("wss://127.0.0.1:8443/")
		w2, _ := parseTarget("wss://127.0.0.1:8444/")
		w1.TLSVersion, w2.TLSVersion = v, v
		spec.Targets = []target{w1, w2}
		got, err := parseWorkerArgs(spec.args()[1:], io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(spec) {
			t.Errorf("round trip with %s:\n got %+v\nwant %+v", tls.VersionName(v), got, spec)
		}
	}
	if _, err := parseWorkerArgs(append(slices.Clone(args[1:]), "-tls-version", "0x0301"), io.Discard); err == nil {
		t.Error("worker accepted TLS 1.0")
	}
}

func TestWorkerMsgJSON(t *testing.T) {
	var f failures
	f.add(&statusError{code: 503})
	m := workerMsg{Type: "established", Worker: 1, OK: 2, Failed: 1, Failures: f, LatencyNs: []int64{1500, 2500}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back workerMsg
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Failures.Count["status 503"] != 1 || !slices.Equal(back.LatencyNs, m.LatencyNs) {
		t.Errorf("round trip lost data: %s", b)
	}
}

func TestClassify(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	tests := []struct {
		err  error
		want string
	}{
		{opErr(syscall.EADDRNOTAVAIL), causeAddrNotAvail},
		{opErr(syscall.ECONNREFUSED), causeRefused},
		{opErr(syscall.ECONNRESET), causeReset},
		{&net.OpError{Op: "socket", Err: os.NewSyscallError("socket", syscall.EMFILE)}, causeMFile},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), causeTimeout},
		{&net.OpError{Op: "dial", Err: context.DeadlineExceeded}, causeTimeout},
		{&statusError{code: 503}, "status 503"},
		{fmt.Errorf("%w: no accept", errBadHandshake), causeBadHandshake},
		{io.EOF, causeEOF},
		{errors.New("something else"), causeOther},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestFailuresString(t *testing.T) {
	var f failures
	if f.String() != "none" {
		t.Errorf("empty failures = %q", f.String())
	}
	f.addCause("timeout", "i/o timeout", 2)
	var g failures
	g.addCause("EADDRNOTAVAIL", "connect: cannot assign requested address", 5)
	g.addCause("timeout", "other example", 1)
	f.merge(g)
	want := `EADDRNOTAVAIL 5 (e.g. "connect: cannot assign requested address"); timeout 3 (e.g. "i/o timeout")`
	if got := f.String(); got != want {
		t.Errorf("String() = %s\nwant       %s", got, want)
	}
	if f.total() != 8 {
		t.Errorf("total = %d", f.total())
	}
}

func TestCheckResponse(t *testing.T) {
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	accept := wsproto.AcceptKey(key)
	tests := []struct {
		name string
		head string
		want string // "" for success, else a cause from classify
	}{
		{"valid", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n", ""},
		{"header name case", "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept:  " + accept + "\r\n", ""},
		{"wrong accept", "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: abc\r\n", causeBadHandshake},
		{"no accept", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", causeBadHandshake},
		{"503", "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n", "status 503"},
		{"garbage", "SSH-2.0-OpenSSH\r\n", causeBadHandshake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkResponse([]byte(tt.head), key)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("checkResponse: %v", err)
			case tt.want != "" && (err == nil || classify(err) != tt.want):
				t.Fatalf("checkResponse error = %v (cause %q), want cause %q", err, classify(err), tt.want)
			}
		})
	}
}

// TestHandshakeOverPipe runs handshake against a scripted server on a
// net.Pipe: the request it sends and the bytes after the response it
// returns.
func TestHandshakeOverPipe(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	// The server end stays open until the handshake has returned: a pipe
	// whose other end is closed refuses SetDeadline, which the handshake
	// calls last.
	defer server.Close()
	tg, _ := parseTarget("ws://127.0.0.1:8080/stage")
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 1024)
		n, err := server.Read(buf)
		if err != nil {
			errc <- err
			return
		}
		req := string(buf[:n])
		if !strings.HasPrefix(req, "GET /stage HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n") || !strings.HasSuffix(req, "\r\n\r\n") {
			errc <- fmt.Errorf("request %q", req)
			return
		}
		_, key, _ := strings.Cut(req, "Sec-WebSocket-Key: ")
		key, _, _ = strings.Cut(key, "\r\n")
		// The response arrives in two pieces, followed by a ping frame.
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			wsproto.AcceptKey(key) + "\r\n\r\n\x89\x00"
		if _, err := server.Write([]byte(resp[:20])); err != nil {
			errc <- err
			return
		}
		_, err = server.Write([]byte(resp[20:]))
		errc <- err
	}()
	rest, err := handshake(client, tg, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if string(rest) != "\x89\x00" {
		t.Errorf("rest = %q, want the ping frame", rest)
	}
}

func TestParseServerFrame(t *testing.T) {
	long := strings.Repeat("a", 300)
	frames := [][]byte{
		wsproto.AppendFrame(nil, wsproto.OpPing, true, []byte("hi")),
		wsproto.AppendFrame(nil, wsproto.OpText, true, []byte(long)),
		wsproto.AppendClose(nil, wsproto.CloseGoingAway, "Going away"),
	}
	stream := slices.Concat(frames...)
	// Every prefix shorter than the first frame is incomplete, not an error.
	for i := range len(frames[0]) {
		if _, n, err := parseServerFrame(stream[:i]); n != 0 || err != nil {
			t.Fatalf("prefix %d: n=%d err=%v", i, n, err)
		}
	}
	var ops []wsproto.Opcode
	for len(stream) > 0 {
		f, n, err := parseServerFrame(stream)
		if err != nil || n == 0 {
			t.Fatalf("n=%d err=%v", n, err)
		}
		ops = append(ops, f.op)
		if f.op == wsproto.OpText && string(f.payload) != long {
			t.Errorf("text payload of %d bytes", len(f.payload))
		}
		if f.op == wsproto.OpClose && closeCode(f.payload) != wsproto.CloseGoingAway {
			t.Errorf("close code %d", closeCode(f.payload))
		}
		stream = stream[n:]
	}
	if !slices.Equal(ops, []wsproto.Opcode{wsproto.OpPing, wsproto.OpText, wsproto.OpClose}) {
		t.Errorf("ops = %v", ops)
	}
	masked := wsproto.AppendClientFrame(nil, wsproto.OpText, true, []byte("x"), [4]byte{1, 2, 3, 4})
	if _, _, err := parseServerFrame(masked); !errors.Is(err, errMaskedServerFrame) {
		t.Errorf("masked frame: err = %v", err)
	}
}

func TestEchoPayload(t *testing.T) {
	for _, size := range []int{48, 64, 200, 32768} {
		p := echoPayload(nil, "x", 1234567, size)
		if len(p) != size {
			t.Errorf("size %d: got %d bytes", size, len(p))
		}
		var m struct{ Action, Seq, Pad string }
		if err := json.Unmarshal(p, &m); err != nil {
			t.Fatalf("size %d: not JSON: %v: %s", size, err, p)
		}
		if m.Action != "x" || m.Seq != "0001234567" {
			t.Errorf("size %d: decoded %+v", size, m)
		}
		if seq, ok := parseSeq(p); !ok || seq != 1234567 {
			t.Errorf("parseSeq = %d, %v", seq, ok)
		}
	}
	// Smaller than the unpadded message: no padding, no truncation.
	if p := echoPayload([]byte("prefix"), "route", 0, 10); !strings.HasPrefix(string(p), "prefix{") || !strings.HasSuffix(string(p), `"pad":""}`) {
		t.Errorf("unpadded = %s", p)
	}
	if _, ok := parseSeq([]byte(`{"action":"x"}`)); ok {
		t.Error("parseSeq found a seq in a message without one")
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\twsgate\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nRssAnon:\t    6144 kB\nRssFile:\t    4096 kB\nThreads:\t9\n"
	s, err := parseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	want := procStatus{VmRSS: 10240 << 10, VmHWM: 20480 << 10, RssAnon: 6144 << 10, RssFile: 4096 << 10, Threads: 9}
	if s != want {
		t.Errorf("parseStatus = %+v, want %+v", s, want)
	}
	if _, err := parseStatus([]byte("Name:\tx\n")); err == nil {
		t.Error("status without VmRSS accepted")
	}
	// The running test process has a readable status.
	if s, err := readStatus(os.Getpid()); err != nil || s.VmRSS <= 0 {
		t.Errorf("readStatus(self) = %+v, %v", s, err)
	}
}

func TestParseStatCPU(t *testing.T) {
	// Field 2 may hold spaces and parentheses.
	stat := "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 100 18446744073709551615\n"
	ticks, err := parseStatCPU([]byte(stat))
	if err != nil || ticks != 300 {
		t.Errorf("parseStatCPU = %d, %v; want 300", ticks, err)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1")); err == nil {
		t.Error("short stat accepted")
	}
}

func TestIsStable(t *testing.T) {
	tests := []struct {
		samples []int64
		want    bool
	}{
		{[]int64{100, 100}, false},
		{[]int64{50, 100, 100, 100}, true},
		{[]int64{100, 99, 100}, true},
		{[]int64{100, 97, 100}, false},
		{[]int64{80, 90, 100, 110}, false},
	}
	for _, tt := range tests {
		if got := isStable(tt.samples); got != tt.want {
			t.Errorf("isStable(%v) = %v, want %v", tt.samples, got, tt.want)
		}
	}
}

func TestGatewayConfigPorts(t *testing.T) {
	c := gatewayConfig(2, "127.0.0.1:8082", "127.0.0.1:9092", "warn", "", "", "", "", false)
	for _, want := range []string{`listen: "127.0.0.1:8082"`, "management:\n  listen: \"127.0.0.1:9092\"", "log:\n  level: warn\n", "  x:\n", "  $default:\n"} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(c, "authorizer") {
		t.Errorf("config without -jwt-secret-env has an authorizer:\n%s", c)
	}
	cfg, err := config.Parse("gateway-2.yaml", []byte(c))
	if err != nil {
		t.Fatalf("the gateway rejects the config: %v\n%s", err, c)
	}
	if cfg.Authorizer.Type != config.AuthNone || cfg.Log.Level != "warn" {
		t.Errorf("authorizer %q, log level %q", cfg.Authorizer.Type, cfg.Log.Level)
	}
}

func TestGatewayConfigJWT(t *testing.T) {
	c := gatewayConfig(0, "127.0.0.1:8080", "127.0.0.1:9090", "info", "BENCH_JWT_SECRET", "", "", "", false)
	want := "log:\n  level: info\nauthorizer:\n  type: jwt\n  jwt:\n    secret_env: BENCH_JWT_SECRET\n    algorithms: [HS256]\nroutes:\n"
	if !strings.Contains(c, want) {
		t.Errorf("config lacks\n%s\ngot:\n%s", want, c)
	}
	cfg, err := config.Parse("gateway-0.yaml", []byte(c))
	if err != nil {
		t.Fatalf("the gateway rejects the config: %v\n%s", err, c)
	}
	a := cfg.Authorizer
	if a.Type != config.AuthJWT || a.JWT.SecretEnv != "BENCH_JWT_SECRET" || !slices.Equal(a.JWT.Algorithms, []string{"HS256"}) ||
		!slices.Equal(a.IdentitySources, []string{"route.request.querystring.access_token"}) {
		t.Errorf("authorizer = %+v", a)
	}
	if len(cfg.Routes) != 2 || cfg.Log.Level != "info" {
		t.Errorf("routes %d, log level %q", len(cfg.Routes), cfg.Log.Level)
	}
}

func TestJWTOption(t *testing.T) {
	const secret = "wsbench-test-secret-0123456789abcdef"
	t.Setenv("WSBENCH_TEST_SECRET", secret)
	o, err := parseIdleOptions(strings.Fields("-n 10 -gateway ./wsgate -gateways 2 -jwt-secret-env WSBENCH_TEST_SECRET"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var token string
	for i, tg := range o.targets {
		path, query, ok := strings.Cut(tg.Path, "?access_token=")
		if !ok || path != "/" || strings.ContainsAny(query, "&?") {
			t.Fatalf("target %d path %q, want /?access_token=TOKEN", i, tg.Path)
		}
		if i > 0 && query != token {
			t.Errorf("targets carry different tokens")
		}
		token = query
	}
	claims := &jwt.RegisteredClaims{}
	_, err = jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("token %q: %v", token, err)
	}
	if claims.Subject != tokenSubject {
		t.Errorf("sub = %q", claims.Subject)
	}
	// The worker command line carries the token in the target URL.
	spec := workerSpec{ID: 0, Start: 0, Count: 10, Targets: o.targets, Dialers: 1, DialTimeout: time.Second, Keepalive: time.Second, CloseWait: time.Second}
	back, err := parseWorkerArgs(spec.args()[1:], io.Discard)
	if err != nil || back.Targets[1].Path != o.targets[1].Path {
		t.Errorf("worker round trip: %v, %+v", err, back.Targets)
	}

	for _, tt := range []struct{ args, wantErr string }{
		{"-n 10 -jwt-secret-env WSBENCH_UNSET_SECRET", "empty or not set"},
		{"-n 10 -jwt-secret-env A-B", "not an environment variable name"},
		{"-n 10 -gateway ./wsgate -log-level verbose", "-log-level"},
		{"-n 10 -log-level info", "-log-level needs -gateway"},
	} {
		if _, err := parseIdleOptions(strings.Fields(tt.args), io.Discard); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("parseIdleOptions(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
		}
	}
}

func TestWithGCTrace(t *testing.T) {
	got := withGCTrace([]string{"A=1", "GODEBUG=madvdontneed=1"})
	if !slices.Equal(got, []string{"A=1", "GODEBUG=madvdontneed=1,gctrace=1"}) {
		t.Errorf("existing GODEBUG: %q", got)
	}
	got = withGCTrace([]string{"A=1"})
	if !slices.Equal(got, []string{"A=1", "GODEBUG=gctrace=1"}) {
		t.Errorf("no GODEBUG: %q", got)
	}
}

func TestCounterDeltas(t *testing.T) {
	a := map[string]int64{"Tcp.RetransSegs": 10, "TcpExt.ListenDrops": 3}
	b := map[string]int64{"Tcp.RetransSegs": 12, "TcpExt.ListenDrops": 3}
	if got := counterDeltas(a, b, "TcpExt.ListenDrops", "Tcp.RetransSegs"); got != "Tcp.RetransSegs +2" {
		t.Errorf("counterDeltas = %q", got)
	}
	if got := counterDeltas(a, a, "Tcp.RetransSegs"); got != "no change in Tcp.RetransSegs" {
		t.Errorf("counterDeltas = %q", got)
	}
}

func TestPushPayload(t *testing.T) {
	const ts = 1_763_700_000_123_456_789
	p := pushPayload(nil, ts, 64)
	if len(p) != 64 || !strings.HasPrefix(string(p), "wsbench t=1763700000123456789 x") {
		t.Fatalf("pushPayload = %q (%d bytes)", p, len(p))
	}
	if got, ok := parsePushTS(p); !ok || got != ts {
		t.Errorf("parsePushTS = %d, %v", got, ok)
	}
	if got, _ := parsePushTS(pushPayload(nil, 42, 40)); got != 42 {
		t.Errorf("small timestamp parsed as %d", got)
	}
	for _, bad := range []string{"", "wsbench t=12", "hello world, this is not a push payload", "wsbench t=17637000001234567x9 "} {
		if _, ok := parsePushTS([]byte(bad)); ok {
			t.Errorf("parsePushTS(%q) accepted", bad)
		}
	}
}

// TestSlowestByPublication: each client records the publication (its
// timestamp) with every latency sample, and the report takes, per
// publication, the latency of the slowest subscriber.
func TestSlowestByPublication(t *testing.T) {
	var measure atomic.Bool
	measure.Store(true)
	frames := func(ts ...int64) []byte {
		var b []byte
		for _, t := range ts {
			b = wsproto.AppendMessage(b, wsproto.OpText, pushPayload(nil, t, 64), 1<<15)
		}
		return b
	}
	a, b := &pushConn{}, &pushConn{}
	t1, t2 := time.Now().Add(-time.Second).UnixNano(), time.Now().Add(-2*time.Second).UnixNano()
	if _, err := a.consume(frames(t1, t2), &measure); err != nil {
		t.Fatal(err)
	}
	if _, err := b.consume(frames(t1), &measure); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.sentAt, []int64{t1, t2}) || len(a.lat) != 2 || !slices.Equal(b.sentAt, []int64{t1}) {
		t.Fatalf("samples: a %v %v, b %v", a.sentAt, a.lat, b.sentAt)
	}
	last := map[int64]time.Duration{}
	slowestByPublication(last, a.sentAt, a.lat)
	slowestByPublication(last, b.sentAt, b.lat)
	if len(last) != 2 || last[t1] != max(a.lat[0], b.lat[0]) || last[t2] != a.lat[1] {
		t.Errorf("slowest = %v; a %v, b %v", last, a.lat, b.lat)
	}
	if last[t2] < 2*time.Second || last[t1] < time.Second || last[t1] >= 2*time.Second {
		t.Errorf("latencies %v do not follow the timestamps", last)
	}
}

func TestBatchBody(t *testing.T) {
	b := batchBody(nil, []string{"AAA=", "B-_c"}, pushPayload(nil, 7, 40))
	var v struct {
		Items []struct {
			ConnectionID string `json:"connectionId"`
			Data         string `json:"data"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("batchBody is not JSON: %v\n%s", err, b)
	}
	if len(v.Items) != 2 || v.Items[0].ConnectionID != "AAA=" || v.Items[1].ConnectionID != "B-_c" || len(v.Items[1].Data) != 40 {
		t.Errorf("items = %+v", v.Items)
	}
}

func TestCountBatchResults(t *testing.T) {
	tests := []struct {
		body      string
		n, failed int
	}{
		{`{"results":[{"status":200},{"statusCode":410,"error":"GoneException"},{}]}`, 3, 1},
		{`{"results":[{"ok":true},{"ok":false},{"status":"ok"},{"status":"gone"}]}`, 4, 2},
		{`{"results":[]}`, 0, 0},
		{`not json`, 0, 0},
	}
	for _, tt := range tests {
		if n, failed := countBatchResults([]byte(tt.body)); n != tt.n || failed != tt.failed {
			t.Errorf("countBatchResults(%s) = %d, %d; want %d, %d", tt.body, n, failed, tt.n, tt.failed)
		}
	}
}

func TestIDRecorder(t *testing.T) {
	r := &idRecorder{ids: make([]string, 3)}
	post := func(body string) int {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("POST", "/connect", strings.NewReader(body)))
		return w.Code
	}
	if c := post(`{"queryStringParameters":{"n":"2"},"requestContext":{"connectionId":"Zm9vYmFyYmF6MTI="}}`); c != 200 {
		t.Errorf("status %d", c)
	}
	if c := post(`{"requestContext":{"connectionId":"x"}}`); c != 400 {
		t.Errorf("event without n: status %d", c)
	}
	if got := r.get(2); got != "Zm9vYmFyYmF6MTI=" || r.bad.Load() != 1 {
		t.Errorf("ids %q, bad %d", r.ids, r.bad.Load())
	}
}

func TestGatewayConfigConnect(t *testing.T) {
	c := gatewayConfig(0, "127.0.0.1:8080", "127.0.0.1:9090", "warn", "", "http://127.0.0.1:4567/connect", "", "", false)
	cfg, err := config.Parse("gateway-0.yaml", []byte(c))
	if err != nil {
		t.Fatalf("the gateway rejects the config: %v\n%s", err, c)
	}
	if len(cfg.Routes) != 3 || !strings.Contains(c, "  $connect:\n    integration:\n      type: http\n      url: \"http://127.0.0.1:4567/connect\"") {
		t.Errorf("routes %d:\n%s", len(cfg.Routes), c)
	}
}

func TestPushOptions(t *testing.T) {
	o, err := parsePushOptions(strings.Fields("-mode topic -gateway ./wsgate -rate 50 -duration 4s"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.n != 10_000 || o.publishes() != 200 || o.expected(10_000) != 2_000_000 || o.target() != targetTopic {
		t.Errorf("n %d publishes %d expected %d", o.n, o.publishes(), o.expected(10_000))
	}
	o, err = parsePushOptions(strings.Fields("-mode batch -gateway ./wsgate"), io.Discard)
	if err != nil || o.n != 1000 || o.messages != 2_000_000 {
		t.Fatalf("batch defaults: %+v, %v", o, err)
	}
	for _, args := range []string{"-mode fanout -gateway ./wsgate", "-mode post", "-mode post -gateway ./wsgate -gateways 2", "-mode post -gateway ./wsgate -n 20000", "-mode topic -gateway ./wsgate -duration 5m"} {
		if _, err := parsePushOptions(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestGatewayConfigRegistry(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want config.RegistryType
	}{{"redis://127.0.0.1:6390/0", config.RegistryRedis}, {"nats://127.0.0.1:4299", config.RegistryNATS}} {
		reg, err := registrySection(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		c := gatewayConfig(1, "127.0.0.1:8081", "127.0.0.1:9091", "warn", "", "", reg, "", false)
		cfg, err := config.Parse("gateway-1.yaml", []byte(c))
		if err != nil {
			t.Fatalf("the gateway rejects the config: %v\n%s", err, c)
		}
		if cfg.Registry.Type != tc.want || (cfg.Registry.Redis.URL != tc.url && cfg.Registry.NATS.URL != tc.url) {
			t.Errorf("%s: registry %+v", tc.url, cfg.Registry)
		}
	}
	for _, bad := range []string{"http://127.0.0.1:1", "redis://10.0.0.5:6379", "redis:///x", "nats://example.com:4222"} {
		if _, err := registrySection(bad); err == nil {
			t.Errorf("registrySection(%q) accepted it", bad)
		}
	}
}

func TestPushOptionsCrossNode(t *testing.T) {
	o, err := parsePushOptions(strings.Fields("-mode post -gateway ./wsgate -gateways 3 -registry redis://127.0.0.1:6390 -port 8380 -mgmt-port 9380"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.crossNode() || o.registryName() != "redis" {
		t.Errorf("crossNode %v registry %q", o.crossNode(), o.registryName())
	}
	recv := o.receivers()
	if len(recv) != 2 || recv[0].Addr != "127.0.0.1:8381" || recv[1].Addr != "127.0.0.1:8382" {
		t.Errorf("receivers %+v: want gateways 1 and 2 only", recv)
	}
	o, err = parsePushOptions(strings.Fields("-mode batch -gateway ./wsgate"), io.Discard)
	if err != nil || o.crossNode() || len(o.receivers()) != 1 || o.receivers()[0].Addr != "127.0.0.1:8080" || o.registryName() != "memory" {
		t.Errorf("single gateway: %+v, %v", o, err)
	}
	o, err = parsePushOptions(strings.Fields("-mode post -gateway ./wsgate -gateways 2 -registry nats://127.0.0.1:4299"), io.Discard)
	if err != nil || o.registryName() != "nats" {
		t.Errorf("nats: %v", err)
	}
	for _, args := range []string{
		"-mode post -gateway ./wsgate -gateways 2",                                       // no registry
		"-mode post -gateway ./wsgate -gateways 2 -registry http://127.0.0.1:1",          // not redis or nats
		"-mode post -gateway ./wsgate -gateways 2 -registry redis://10.0.0.1:6390",       // not loopback
		"-mode post -gateway ./wsgate -registry-pid 1",                                   // no registry
		"-mode post -gateway ./wsgate -registry redis://127.0.0.1:6390 -registry-pid -3", // not a pid
		"-mode post -gateway ./wsgate -gateways 2 -registry redis://127.0.0.1:6390 -config x.yaml",
	} {
		if _, err := parsePushOptions(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if _, err := parsePushOptions(strings.Fields(fmt.Sprintf("-mode post -gateway ./wsgate -registry redis://127.0.0.1:6390 -registry-pid %d", os.Getpid())), io.Discard); err != nil {
		t.Errorf("-registry-pid of a running process: %v", err)
	}
}

func TestPushOptionsRate(t *testing.T) {
	// topic keeps its default of 100 publishes/s.
	o, err := parsePushOptions(strings.Fields("-mode topic -gateway ./wsgate"), io.Discard)
	if err != nil || o.rate != 100 {
		t.Fatalf("topic default rate %g, %v", o.rate, err)
	}
	// post and batch default to as fast as possible.
	o, err = parsePushOptions(strings.Fields("-mode post -gateway ./wsgate"), io.Discard)
	if err != nil || o.rate != 0 || o.messages != 200_000 || o.requests() != 200_000 {
		t.Fatalf("post defaults: rate %g messages %d, %v", o.rate, o.messages, err)
	}
	// With -rate, -messages defaults to rate × duration.
	o, err = parsePushOptions(strings.Fields("-mode post -gateway ./wsgate -rate 1000 -duration 5s"), io.Discard)
	if err != nil || o.messages != 5000 || o.requests() != 5000 || o.deliveriesPerRequest() != 1 {
		t.Fatalf("post -rate: messages %d, %v", o.messages, err)
	}
	o, err = parsePushOptions(strings.Fields("-mode batch -gateway ./wsgate -rate 50000 -duration 4s -batch 100"), io.Discard)
	if err != nil || o.messages != 200_000 || o.requests() != 2000 || o.deliveriesPerRequest() != 100 {
		t.Fatalf("batch -rate: messages %d requests %d, %v", o.messages, o.requests(), err)
	}
	// An explicit -messages wins.
	o, err = parsePushOptions(strings.Fields("-mode batch -gateway ./wsgate -rate 50000 -messages 1001 -batch 100"), io.Discard)
	if err != nil || o.messages != 1001 || o.requests() != 11 {
		t.Fatalf("batch -messages: messages %d requests %d, %v", o.messages, o.requests(), err)
	}
	for _, args := range []string{
		"-mode post -gateway ./wsgate -rate 0.5",
		"-mode post -gateway ./wsgate -rate -1",
		"-mode batch -gateway ./wsgate -rate 20000000",
		"-mode topic -gateway ./wsgate -rate 0",
		"-mode topic -gateway ./wsgate -rate 200000",
		"-mode post -gateway ./wsgate -rate 1000 -duration 3m", // -duration beyond -timeout
	} {
		if _, err := parsePushOptions(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestCountTimeWait(t *testing.T) {
	table := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   2: 0100007F:1F90 0100007F:C351 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   3: 0100007F:C352 0100007F:1F91 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   4: 0100007F:C353 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 0 3 0000000000000000
`)
	if got := countTimeWait(table, 8080); got != 2 {
		t.Errorf("TIME-WAIT to 8080 = %d, want 2 (one each way; not the listener, not the established one)", got)
	}
	if got := countTimeWait(table, 8081); got != 1 {
		t.Errorf("TIME-WAIT to 8081 = %d, want 1", got)
	}
	if got := countTimeWait(table[:0], 8080); got != 0 {
		t.Errorf("empty table: %d", got)
	}
}

func TestAnswerEvent(t *testing.T) {
	out, err := answerEvent([]byte(`{"requestContext":{"routeKey":"x"},"body":"{\"action\":\"x\"} <&>","isBase64Encoded":false}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"statusCode":200,"body":"{\"action\":\"x\"} \u003c\u0026\u003e"}`; string(out) != want {
		t.Errorf("answer %s, want %s", out, want)
	}
	out, err = answerEvent([]byte(`{"body":"AAE=","isBase64Encoded":true}`))
	if err != nil || string(out) != `{"statusCode":200,"body":"AAE=","isBase64Encoded":true}` {
		t.Errorf("binary answer %s, %v", out, err)
	}
	if _, err := answerEvent([]byte(`not json`)); err == nil {
		t.Error("answered a body that is not an event")
	}
}

func TestGatewayConfigBackend(t *testing.T) {
	for _, kind := range []string{backendHTTP, backendH2C, backendLambda, backendLocal} {
		routeX := backendIntegration(kind, "127.0.0.1:4567", []string{"/bin/wsbench", "lambda-function"}, 3)
		c := gatewayConfig(0, "127.0.0.1:8080", "127.0.0.1:9090", "warn", "", "", "", routeX, true)
		cfg, err := config.Parse("wsbench.yaml", []byte(c))
		if err != nil {
			t.Fatalf("%s: %v\n%s", kind, err, c)
		}
		in := cfg.Routes["x"].Integration
		switch kind {
		case backendHTTP, backendH2C:
			if in.Type != "http" || in.URL != "http://127.0.0.1:4567/x" || in.HTTP2 != (kind == backendH2C) {
				t.Errorf("%s: integration %+v", kind, in)
			}
		case backendLambda:
			if in.Type != "lambda" || in.Lambda.Endpoint != "http://127.0.0.1:4567" || in.Lambda.FunctionName != lambdaFunctionName {
				t.Errorf("%s: integration %+v", kind, in)
			}
		case backendLocal:
			if in.Type != "lambda" || in.Lambda.Command != "/bin/wsbench" || len(in.Lambda.Args) != 1 || in.Lambda.Concurrency != 3 || in.Lambda.Env[asMainEnv] != "1" {
				t.Errorf("%s: integration %+v", kind, in.Lambda)
			}
		}
		if !cfg.Management.Pprof {
			t.Errorf("%s: pprof not on", kind)
		}
	}
}
