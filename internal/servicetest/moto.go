package servicetest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// motoStartTimeout bounds moto_server's start: a Python program importing
// every service it mocks.
const motoStartTimeout = 30 * time.Second

// MotoServer is a moto_server child process on 127.0.0.1: an independent
// implementation of the AWS APIs (SQS, SNS, EventBridge and more) that
// keeps its state in memory, so a restart starts empty. It takes requests
// signed with any credentials. Its methods are safe for concurrent use.
type MotoServer struct {
	// URL is the endpoint, http://127.0.0.1:PORT; it stays the same
	// across Stop and Start.
	URL string

	t    testing.TB
	bin  string
	port int

	// mu guards cmd and exited.
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Moto starts moto_server on a free port of 127.0.0.1 and kills it when the
// test ends. It skips the test when moto_server (Python's moto package,
// with its server extra) is not installed, unless WSGATE_REQUIRE_SERVICES=1,
// when it fails it.
func Moto(t testing.TB) *MotoServer {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("moto_server not installed (%s=1 requires it): install Python's moto[server]", RequireEnv)
		}
		t.Skip("moto_server not installed; install Python's moto[server] to run this test, or set " + RequireEnv + "=1 to make its absence a failure")
	}
	s := &MotoServer{t: t, bin: bin}
	t.Cleanup(s.Stop)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("servicetest: choosing a port for moto_server: %v", err)
		}
		s.port = port
		s.URL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("servicetest: starting moto_server: %v", lastErr)
	return nil
}

// Stop kills the server, as a crash would, and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *MotoServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// Start starts a stopped server again on the same port, empty, and waits
// until it answers. It fails the test if the server does not come up.
func (s *MotoServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("servicetest: restarting moto_server on %s: %v", s.URL, err)
	}
}

func (s *MotoServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(s.bin, "-H", "127.0.0.1", "-p", strconv.Itoa(s.port))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(motoStartTimeout)
	for {
		if resp, err := client.Get(s.URL + "/moto-api/"); err == nil {
			_ = resp.Body.Close()
			client.CloseIdleConnections()
			s.cmd, s.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("moto_server exited: %s", strings.TrimSpace(out.String()))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("no answer within %v", motoStartTimeout)
		}
	}
}
