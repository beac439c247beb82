package servicetest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SystemNATSServer is where Debian's nats-server package installs the
// server; its version is whatever the distribution ships (2.9 on Debian
// 12), older than the 2.11 the NATS engine needs.
const SystemNATSServer = "/usr/sbin/nats-server"

// OldNATS starts SystemNATSServer with NATSBinary when it is older than
// 2.11, too old for the NATS engine, and skips the test otherwise.
func OldNATS(t testing.TB) (url, version string) {
	t.Helper()
	url, version = NATSBinary(t, SystemNATSServer)
	var major, minor int
	if _, err := fmt.Sscanf(version, "%d.%d", &major, &minor); err != nil || major > 2 || major == 2 && minor >= 11 {
		t.Skipf("%s is nats-server %s, not one older than 2.11", SystemNATSServer, version)
	}
	return url, version
}

// NATSBinary starts the nats-server program at path with JetStream, on a
// free port of 127.0.0.1 with its store in a temporary directory, and
// kills it when the test ends. It returns the server's nats:// URL and the
// version the server announces. It skips the test when there is no program
// at path, whatever WSGATE_REQUIRE_SERVICES says: it serves the tests of a
// particular server release (one too old for wsgate), which CI need not
// install, while every other NATS test embeds the current server.
func NATSBinary(t testing.TB, path string) (url, version string) {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		t.Skipf("no nats-server at %s: %v", path, err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("servicetest: choosing a port for nats-server: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(path, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", t.TempDir())
		// Read only after the process has exited, when Wait has copied
		// everything.
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("servicetest: starting %s: %v", path, err)
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		if version, lastErr = natsInfo(addr, exited); lastErr == nil {
			t.Cleanup(stop)
			return "nats://" + addr, version
		}
		stop()
		lastErr = fmt.Errorf("%w; output: %s", lastErr, strings.TrimSpace(out.String()))
	}
	t.Fatalf("servicetest: starting %s: %v", path, lastErr)
	return "", ""
}

// natsInfo waits until the NATS server at addr greets a client and returns
// the version its INFO line announces.
func natsInfo(addr string, exited <-chan struct{}) (string, error) {
	deadline := time.Now().Add(startTimeout)
	for {
		version, err := readInfo(addr)
		if err == nil {
			return version, nil
		}
		select {
		case <-exited:
			return "", fmt.Errorf("nats-server exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no INFO within %v: %v", startTimeout, err)
		}
	}
}

func readInfo(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	const key = `"version":"`
	i := strings.Index(line, key)
	if !strings.HasPrefix(line, "INFO ") || i < 0 {
		return "", fmt.Errorf("greeting %q is not an INFO line with a version", strings.TrimSpace(line))
	}
	v, _, ok := strings.Cut(line[i+len(key):], `"`)
	if !ok {
		return "", fmt.Errorf("greeting %q has an unterminated version", strings.TrimSpace(line))
	}
	return v, nil
}
