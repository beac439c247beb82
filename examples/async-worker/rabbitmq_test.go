package main

import (
	"context"
	"errors"
	"fmt"
	"net"
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

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// rabbitMQPrograms are where the rabbitmq-server start script may be:
// Debian's /usr/sbin/rabbitmq-server only switches to the rabbitmq user
// and calls the first one.
var rabbitMQPrograms = []string{"/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server"}

// rabbitMQStartTimeout bounds RabbitMQ's boot, which takes seconds even on
// an idle machine.
const rabbitMQStartTimeout = 90 * time.Second

// rabbitMQServer is a rabbitmq-server child process listening on a free
// port of 127.0.0.1, its node, database and logs in a temporary directory.
// One serves all of the package's tests; TestMain stops it.
type rabbitMQServer struct {
	url    string
	dir    string
	node   string
	env    []string
	bin    string
	cmd    *exec.Cmd
	exited chan struct{}
}

var (
	rabbitMQOnce sync.Once
	rabbitMQ     *rabbitMQServer
	// rabbitMQErr is why it could not start; rabbitMQSkip is set when the
	// program is not installed.
	rabbitMQErr  error
	rabbitMQSkip bool
)

// startRabbitMQ returns the amqp:// URL of the package's RabbitMQ server,
// starting it on first use. It skips the test when rabbitmq-server is not
// installed, unless WSGATE_REQUIRE_SERVICES=1, when it fails it.
func startRabbitMQ(t *testing.T) string {
	t.Helper()
	rabbitMQOnce.Do(func() { rabbitMQ, rabbitMQErr = newRabbitMQ() })
	switch {
	case rabbitMQSkip && os.Getenv(servicetest.RequireEnv) == "1":
		t.Fatalf("rabbitmq-server not installed (%s=1 requires it): install the rabbitmq-server package", servicetest.RequireEnv)
	case rabbitMQSkip:
		t.Skip("rabbitmq-server not installed; install the rabbitmq-server package to run this test, or set " + servicetest.RequireEnv + "=1 to make its absence a failure")
	case rabbitMQErr != nil:
		t.Fatalf("starting rabbitmq-server: %v", rabbitMQErr)
	}
	return rabbitMQ.url
}

func newRabbitMQ() (*rabbitMQServer, error) {
	var bin string
	for _, p := range rabbitMQPrograms {
		if b, err := exec.LookPath(p); err == nil {
			bin = b
			break
		}
	}
	if bin == "" {
		rabbitMQSkip = true
		return nil, errors.New("not installed")
	}
	dir, err := os.MkdirTemp("", "wsgate-rabbitmq-")
	if err != nil {
		return nil, err
	}
	s := &rabbitMQServer{dir: dir, exited: make(chan struct{})}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	distPort, err := freePort()
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		"rabbitmq.conf":   fmt.Sprintf("listeners.tcp.default = 127.0.0.1:%d\n", port),
		"enabled_plugins": "[].\n",
		// Instead of /etc/rabbitmq/rabbitmq-env.conf, which names the
		// machine's own node.
		"rabbitmq-env.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	s.bin = bin
	s.node = "wsgate-test-" + strconv.Itoa(port) + "@localhost"
	s.env = append(os.Environ(),
		"HOME="+dir, // the Erlang cookie
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_NODENAME="+s.node,
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = s.env
	out, err := os.Create(filepath.Join(dir, "output"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that stopping it reaches the Erlang VM's
	// helper processes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	s.url = fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", port)
	deadline := time.Now().Add(rabbitMQStartTimeout)
	for {
		conn, err := amqp.Dial(s.url)
		if err == nil {
			_ = conn.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("rabbitmq-server exited: %s", s.output())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("no AMQP connection within %v: %v; output: %s", rabbitMQStartTimeout, err, s.output())
		}
	}
}

// ctl runs rabbitmqctl with args against the server.
func (s *rabbitMQServer) ctl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(filepath.Dir(s.bin), "rabbitmqctl"), append([]string{"-n", s.node}, args...)...)
	cmd.Dir = s.dir
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// output is the tail of what the server printed.
func (s *rabbitMQServer) output() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "output"))
	out := strings.TrimSpace(string(b))
	if len(out) > 2000 {
		out = "…" + out[len(out)-2000:]
	}
	return out
}

// stop ends the server's process group, gracefully first, and removes its
// directory.
func (s *rabbitMQServer) stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
	// Helpers of the VM that outlived it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	_ = os.RemoveAll(s.dir)
}

// stopRabbitMQ stops the package's server if a test started it.
func stopRabbitMQ() {
	if rabbitMQ != nil {
		rabbitMQ.stop()
	}
}

// freePort returns a port of 127.0.0.1 that nothing listened on a moment
// ago, never AMQP's 5672 where a system RabbitMQ may run.
func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port != 5672 && port != 25672 {
			return port, nil
		}
	}
}

// amqpChannel opens a channel on the server at url for the test.
func amqpChannel(t *testing.T, url string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// queueReady returns how many messages wait in queue, not counting those
// delivered and not yet acknowledged.
func queueReady(t *testing.T, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("queue %s: %v", queue, err)
	}
	return q.Messages
}

// TestAMQPWorker publishes AWS event JSON, as payload: event carries it, to
// a RabbitMQ queue bound to an exchange, and the worker answers a real
// gateway connection: a message that is not an event and one for a
// connection that is gone are taken off the queue and the worker goes on.
// A second worker reads payload: body messages, the connection id in a
// header, from a queue on the default exchange.
func TestAMQPWorker(t *testing.T) {
	url := startRabbitMQ(t)
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $connect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock}, route_response: true}
`, b.URLFor("/connect"))+sigv4Management)
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)

	ch := amqpChannel(t, url)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	events, bodies := "events-"+suffix, "bodies-"+suffix
	t.Cleanup(func() {
		_, _ = ch.QueueDelete(events, false, false, false)
		_, _ = ch.QueueDelete(bodies, false, false, false)
	})
	publish := func(exchange, key string, headers amqp.Table, body string) {
		t.Helper()
		err := ch.PublishWithContext(context.Background(), exchange, key, false, false, amqp.Publishing{
			Headers: headers, ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: []byte(body)})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	event := func(connectionID, requestID, body string) string {
		return fmt.Sprintf(`{"requestContext":{"routeKey":"$default","eventType":"MESSAGE","connectionId":%q,"requestId":%q},"body":%q,"isBase64Encoded":false}`,
			connectionID, requestID, body)
	}

	w := startWorker(t, testCredentials, "-broker", "amqp", "-url", url, "-queue", events, "-declare",
		"-exchange", "amq.direct", "-routing-key", "work."+suffix, "-endpoint", g.MgmtURL, "-name", "amqp-worker")
	w.waitLog("consuming")
	publish("amq.direct", "work."+suffix, nil, "not an event")
	publish("amq.direct", "work."+suffix, nil, event("R1kmxc2VNjMCFIA=", "gone-1", "for nobody"))
	publish("amq.direct", "work."+suffix, nil, event(id, "req-1", `{"job":"over amqp"}`))
	wantResult(t, c, "req-1", `{"job":"over amqp"}`, "amqp-worker")
	w.waitLog("message rejected")
	w.waitLog("the client has left")
	// Stopping closes the channel, which would put back a message not
	// acknowledged.
	w.stop()
	if n := queueReady(t, ch, events); n != 0 {
		t.Fatalf("%d messages back in the queue after the worker stopped, want 0: not acknowledged", n)
	}

	bw := startWorker(t, testCredentials, "-broker", "amqp", "-url", url, "-queue", bodies, "-declare",
		"-payload", "body", "-endpoint", g.MgmtURL, "-name", "body-worker")
	bw.waitLog("consuming")
	publish("", bodies, amqp.Table{"wsgate-connection-id": id, "wsgate-request-id": "req-2"}, "plain text")
	wantResult(t, c, "req-2", "plain text", "body-worker")
	bw.stop()
	if n := queueReady(t, ch, bodies); n != 0 {
		t.Fatalf("%d messages back in the queue after the worker stopped, want 0", n)
	}
	if strings.Contains(w.logs.String()+bw.logs.String(), "guest:guest") {
		t.Error("the broker's password reached the worker's log")
	}
}

// TestAMQPWorkerReconnects closes the worker's connection from the server,
// as a broker restart does: the worker connects again by itself and
// answers a message published afterwards.
func TestAMQPWorkerReconnects(t *testing.T) {
	url := startRabbitMQ(t)
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $connect: {integration: {type: http, url: %q}}
`, b.URLFor("/connect"))+sigv4Management)
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)
	queue := "reconnect-" + strconv.FormatInt(time.Now().UnixNano(), 36)

	w := startWorker(t, testCredentials, "-broker", "amqp", "-url", url, "-queue", queue, "-declare",
		"-endpoint", g.MgmtURL, "-name", "amqp-worker")
	w.waitLog("consuming")
	if out, err := rabbitMQ.ctl("close_all_connections", "test"); err != nil {
		t.Fatalf("rabbitmqctl close_all_connections: %v\n%s", err, out)
	}
	w.waitLog("amqp failed; trying again every second")
	gt.Eventually(t, func() bool { return strings.Count(w.logs.String(), "msg=consuming") == 2 }, "the worker consuming again")

	ch := amqpChannel(t, url)
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })
	body := fmt.Sprintf(`{"requestContext":{"eventType":"MESSAGE","connectionId":%q,"requestId":"after"},"body":"again"}`, id)
	if err := ch.PublishWithContext(context.Background(), "", queue, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	wantResult(t, c, "after", "again", "amqp-worker")
}
