package servicetest

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsReadyTimeout bounds how long NATS waits for the embedded server to
// accept connections.
const natsReadyTimeout = 10 * time.Second

// NATSServer is an embedded nats-server with JetStream, listening on
// 127.0.0.1. It can be stopped and started again on the same port and
// store directory, to simulate an outage. Its methods are safe for
// concurrent use.
type NATSServer struct {
	t        testing.TB
	storeDir string

	// mu guards the fields below.
	mu   sync.Mutex
	port int // 0 until the first start picks a free port
	srv  *server.Server
}

// NATS starts an embedded nats-server with JetStream on a free 127.0.0.1
// port, its store in a temporary directory, and shuts it down when the test
// ends. It needs no external binary, so it never skips.
func NATS(t testing.TB) *NATSServer {
	t.Helper()
	s := &NATSServer{t: t, storeDir: t.TempDir()}
	if err := s.start(); err != nil {
		t.Fatalf("servicetest: nats-server: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// URL returns the nats:// URL clients connect to; it stays the same across
// Stop and Start.
func (s *NATSServer) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", s.port)
}

// Stop shuts the server down and waits until it has. Stopping a stopped
// server does nothing.
func (s *NATSServer) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// Start starts a stopped server again on the same port with the same store
// directory, so JetStream state survives. Starting a running server does
// nothing.
func (s *NATSServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("servicetest: nats-server restart: %v", err)
	}
}

func (s *NATSServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	if s.port == 0 {
		// A port below the ephemeral range, as FreePort explains: a
		// restart binds the same port again, and one the kernel picked
		// from that range may meanwhile be the source port of an outgoing
		// connection (a client redialing this very server can connect to
		// itself). Never 4222, where a system NATS may run.
		port, err := FreePort()
		for err == nil && port == 4222 {
			port, err = FreePort()
		}
		if err != nil {
			return err
		}
		s.port = port
	}
	opts := &server.Options{
		ServerName: "wsgate-test",
		Host:       "127.0.0.1",
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.storeDir,
		NoLog:      true,
		NoSigs:     true,
		// The HTTP monitor and cluster ports stay off.
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	srv.Start()
	if !srv.ReadyForConnections(natsReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err != nil {
			return fmt.Errorf("not ready after %v: port %d: %v", natsReadyTimeout, s.port, err)
		}
		ln.Close()
		return fmt.Errorf("not ready after %v on port %d", natsReadyTimeout, s.port)
	}
	s.srv = srv
	return nil
}
