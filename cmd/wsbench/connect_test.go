//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestConnectOptions(t *testing.T) {
	tests := []struct {
		args    string
		wantErr string
	}{
		{"-n 20000", ""},
		{"-n 10000000 -close fin", ""},
		{"-n 19000 -hold -close frame", ""},
		{"-n 0", "-n 0"},
		{"-n 10000001", "-n 10000001"},
		{"-n 19001 -hold", "-n 19001: must be 1 to 19000"},
		{"-close linger", `-close "linger": one of rst, fin, frame`},
		{"-drain 2m", "-drain 2m0s"},
		{"-cpuprofile p", "-cpuprofile needs -gateway"},
		{"-gateway ./wsgate -config c.yaml -cpuprofile p", "not to -config"},
		{"-gateway ./wsgate -cpuprofile p -profile-seconds 301", "-profile-seconds 301"},
		{"-gateway ./wsgate -tls", "connect dials ws:// only"},
		{"-url ws://10.0.0.1/", "not a loopback address"},
		{"-dialers 300", "-dialers 300"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			_, err := parseConnectOptions(strings.Fields(tt.args), io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseConnectOptions(%q): %v", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parseConnectOptions(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

// TestConnectShort runs wsbench connect against a gateway built from this
// tree with a jwt authorizer, once per way of ending the connections, and
// checks that every connection was established and counted, that the
// gateway released them all, and that the figures are reported.
func TestConnectShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	bin := gatewayBinary(t)
	t.Setenv("WSBENCH_TEST_JWT_SECRET", "a-secret-for-the-connect-test-0123456789")
	for _, tt := range []struct{ name, args string }{
		{"rst", "-n 300 -close rst"},
		{"fin", "-n 300 -close fin"},
		{"frame, held", "-n 300 -close frame -hold"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := runConnect(ctx, strings.Fields("-gateway "+bin+" -workdir "+t.TempDir()+" -dialers 8 -jwt-secret-env WSBENCH_TEST_JWT_SECRET"+
				" -port "+strconv.Itoa(freePort(t))+" -mgmt-port "+strconv.Itoa(freePort(t))+" "+tt.args), &out, io.Discard)
			text := out.String()
			if err != nil {
				t.Fatalf("runConnect: %v\n%s", err, text)
			}
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`(?m)^  established    300 of 300 \(0 failed\)$`),
				regexp.MustCompile(`(?m)^  per 1,000      gateway [0-9.]+[µm]?s \(until the descriptors were released, `),
				regexp.MustCompile(`(?m)^summary: n=300 established=300 failed=0 conn_per_s=[1-9]\d* handshake_p50=\S+ p99=\S+ gateway_cpu_per_1k=[0-9.]+[µm]?s wsbench_cpu_per_1k=\S+ `),
				regexp.MustCompile(`authentication: one HS256 JWT`),
				regexp.MustCompile(`(?m)^gateway 0: exit status 0 after SIGTERM .*; 0 warning/error log lines`),
			} {
				if !want.MatchString(text) {
					t.Errorf("output lacks %s", want)
				}
			}
			if strings.Contains(tt.args, "frame") && !strings.Contains(text, "  close          none") {
				t.Errorf("close frames not answered cleanly")
			}
			if t.Failed() {
				t.Logf("output:\n%s", text)
			}
		})
	}
}

// TestConnectProfiled: with -cpuprofile the run saves the gateway's
// profile and still sees the gateway release the connections' descriptors
// (the profile's own request holds one).
func TestConnectProfiled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	bin := gatewayBinary(t)
	dir := t.TempDir()
	prof := dir + "/cpu.prof"
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := runConnect(ctx, strings.Fields("-gateway "+bin+" -workdir "+dir+" -dialers 4 -n 200 -cpuprofile "+prof+" -profile-seconds 1"+
		" -port "+strconv.Itoa(freePort(t))+" -mgmt-port "+strconv.Itoa(freePort(t))), &out, io.Discard)
	if err != nil {
		t.Fatalf("runConnect: %v\n%s", err, out.String())
	}
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Errorf("profile not written: %v", err)
	}
	if !strings.Contains(out.String(), "until the descriptors were released") {
		t.Errorf("descriptors not released:\n%s", out.String())
	}
}

// TestConnectRefusedCounted: without the token the jwt authorizer refuses
// every handshake with 401, which the run reports by cause and as a
// failed run.
func TestConnectRefusedCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	bin := gatewayBinary(t)
	t.Setenv("WSBENCH_TEST_JWT_SECRET", "a-secret-for-the-connect-test-0123456789")
	port, mgmt := freePort(t), freePort(t)
	dir := t.TempDir()
	cfg := dir + "/gw.yaml"
	if err := os.WriteFile(cfg, []byte(gatewayConfig(0, "127.0.0.1:"+strconv.Itoa(port), "127.0.0.1:"+strconv.Itoa(mgmt), "warn", "WSBENCH_TEST_JWT_SECRET", "", "", "", false)), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := runConnect(ctx, strings.Fields("-gateway "+bin+" -config "+cfg+" -workdir "+dir+" -dialers 4 -n 20 -port "+strconv.Itoa(port)), &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no connection established") {
		t.Errorf("runConnect without a token: %v", err)
	}
	if !strings.Contains(out.String(), "failures       status 401 20") {
		t.Errorf("401s not counted:\n%s", out.String())
	}
}
