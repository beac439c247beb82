package servicetest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitStartTimeout bounds how long a RabbitMQ node may take to accept
// AMQP connections; an Erlang node boots in seconds, more on a busy
// machine.
const rabbitStartTimeout = 90 * time.Second

// rabbitPrograms are where the rabbitmq-server start script may be: the
// script itself in Debian's package (its /usr/sbin/rabbitmq-server is a
// wrapper that switches to the rabbitmq user and logs to /var/log), then
// whatever the PATH holds.
var rabbitPrograms = []string{"/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server"}

// RabbitMQServer is a throwaway RabbitMQ node, a child process of the test
// listening on 127.0.0.1 with its own node name, data and log directories
// and no plugins. It shares the machine's epmd, if one runs, under a name
// of its own. Stop kills it as a crash would; Start brings it back on the
// same port with the same data, so durable queues and the persistent
// messages they held survive. Its methods are safe for concurrent use.
type RabbitMQServer struct {
	// Port is the AMQP port; it stays the same across Stop and Start.
	Port int

	t        testing.TB
	bin      string
	dir      string
	distPort int
	env      []string

	// mu guards the fields below.
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.Closer
	exited chan struct{}
}

// RabbitMQ starts a RabbitMQ node on a free port of 127.0.0.1 and kills it
// when the test ends. Starting a node takes seconds: share one among the
// tests of a package that do not stop it. It skips the test when
// rabbitmq-server is not installed, unless WSGATE_REQUIRE_SERVICES=1, when
// it fails it.
func RabbitMQ(t testing.TB) *RabbitMQServer {
	t.Helper()
	bin := ""
	for _, p := range rabbitPrograms {
		if path, err := exec.LookPath(p); err == nil {
			bin = path
			break
		}
	}
	if bin == "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("rabbitmq-server not installed (%s=1 requires it): install the rabbitmq-server package", RequireEnv)
		}
		t.Skip("rabbitmq-server not installed; install the rabbitmq-server package to run this test, or set " + RequireEnv + "=1 to make its absence a failure")
	}
	s := &RabbitMQServer{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = s.configure(); lastErr != nil {
			break
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("servicetest: starting rabbitmq-server: %v", lastErr)
	return nil
}

// URL returns the node's amqp:// URL for the default vhost. It names no
// user: clients log in as guest, whom RabbitMQ admits from 127.0.0.1.
func (s *RabbitMQServer) URL() string { return fmt.Sprintf("amqp://127.0.0.1:%d/", s.Port) }

// configure chooses the ports and node name and writes the files the node
// reads.
func (s *RabbitMQServer) configure() error {
	var err error
	if s.Port, err = freeRabbitPort(); err != nil {
		return err
	}
	for s.distPort == 0 || s.distPort == s.Port {
		if s.distPort, err = freeRabbitPort(); err != nil {
			return err
		}
	}
	base := filepath.Join(s.dir, strconv.Itoa(s.Port))
	for _, d := range []string{"mnesia", "log", "home"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o700); err != nil {
			return err
		}
	}
	files := map[string]string{
		// No plugins, so no management listener on a fixed port.
		"enabled_plugins": "[].\n",
		// Replaces the machine's rabbitmq-env.conf, which names the
		// system node.
		"rabbitmq-env.conf": "",
		// A disk alarm would block publishers rather than fail them.
		"rabbitmq.conf": "disk_free_limit.absolute = 1MB\nlog.console = false\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(base, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	env := []string{
		"HOME=" + filepath.Join(base, "home"), // the Erlang cookie
		"RABBITMQ_NODENAME=wsgate-test-" + strconv.Itoa(s.Port) + "@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(s.Port),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(s.distPort),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(base, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(base, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(base, "enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(base, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(base, "rabbitmq.conf"),
		// The script then execs the Erlang VM in its place, so the
		// process started is the node itself, and the VM's shell reads
		// standard input: the node ends when the test process does and
		// closes the pipe.
		"RABBITMQ_ALLOW_INPUT=1",
		// An epmd the node has to start itself listens on loopback only.
		"ERL_EPMD_ADDRESS=127.0.0.1",
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RABBITMQ_") && !strings.HasPrefix(kv, "ERL_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	s.env = env
	return nil
}

// freeRabbitPort is freePort avoiding RabbitMQ's own ports as well: AMQP
// 5672, epmd 4369 and distribution 25672.
func freeRabbitPort() (int, error) {
	for {
		p, err := freePort()
		if err != nil || p != 5672 && p != 4369 && p != 25672 {
			return p, err
		}
	}
}

// Stop kills the node, as a crash would, and waits for it to exit.
// Stopping a stopped node does nothing.
func (s *RabbitMQServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	// The VM and the helper programs it started share its process group.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	_ = s.stdin.Close()
	s.cmd, s.stdin, s.exited = nil, nil, nil
}

// Start starts a stopped node again on the same port with the same data
// and waits until it accepts AMQP connections. It fails the test if the
// node does not come up.
func (s *RabbitMQServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("servicetest: restarting rabbitmq-server on port %d: %v", s.Port, err)
	}
}

func (s *RabbitMQServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(s.bin)
	cmd.Env = s.env
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	kill := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		_ = stdin.Close()
	}
	deadline := time.Now().Add(rabbitStartTimeout)
	for {
		err := amqpPing(s.URL())
		if err == nil {
			s.cmd, s.stdin, s.exited = cmd, stdin, exited
			return nil
		}
		select {
		case <-exited:
			_ = stdin.Close()
			return fmt.Errorf("rabbitmq-server exited: %s", out.tail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			kill()
			return fmt.Errorf("no AMQP connection within %v (%v): %s", rabbitStartTimeout, err, out.tail())
		}
	}
}

// amqpPing opens an AMQP connection to url and closes it.
func amqpPing(url string) error {
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		return err
	}
	return conn.Close()
}

// lockedBuffer collects a child's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// tail returns the last lines of the output.
func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.b.String())
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	if s == "" {
		return "no output"
	}
	return s
}
