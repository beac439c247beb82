package servicetest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns a missing service
// program from a skipped test into a failed one.
const RequireEnv = "WSGATE_REQUIRE_SERVICES"

// startTimeout bounds how long a service may take to answer after it is
// started.
const startTimeout = 10 * time.Second

// RedisServer is a redis-server child process listening on 127.0.0.1. It
// keeps nothing on disk: a restart starts empty, like a Redis that lost its
// state. Its methods are safe for concurrent use.
type RedisServer struct {
	// Addr is host:port; it stays the same across Stop and Start.
	Addr string

	t    testing.TB
	bin  string
	dir  string
	port int

	// mu guards cmd and exited.
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Redis starts a redis-server on a free port of 127.0.0.1 and kills it when
// the test ends. It skips the test when redis-server is not installed,
// unless WSGATE_REQUIRE_SERVICES=1, when it fails it.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("redis-server not installed (%s=1 requires it): install the redis-server package", RequireEnv)
		}
		t.Skip("redis-server not installed; install the redis-server package to run this test, or set " + RequireEnv + "=1 to make its absence a failure")
	}
	s := &RedisServer{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	// Another process can take the free port between choosing it and the
	// server binding it; a few attempts make that race harmless.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("servicetest: choosing a port for redis-server: %v", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("servicetest: starting redis-server: %v", lastErr)
	return nil
}

// URL returns the server's redis:// URL, database 0.
func (s *RedisServer) URL() string { return "redis://" + s.Addr + "/0" }

// Stop kills the server, as a crash would, and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *RedisServer) Stop() {
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
func (s *RedisServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("servicetest: restarting redis-server on %s: %v", s.Addr, err)
	}
}

func (s *RedisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", "",
		"--loglevel", "warning",
	)
	cmd.Dir = s.dir
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
	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr) == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %s", strings.TrimSpace(out.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("no answer to PING within %v", startTimeout)
		}
	}
}

// ping sends PING and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// freePort is FreePort, never Redis's default 6379, where a system Redis
// may run.
func freePort() (int, error) {
	for {
		port, err := FreePort()
		if err != nil || port != 6379 {
			return port, err
		}
	}
}
