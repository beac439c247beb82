package edge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/lesismal/nbio"
)

// pollerProbe is the session of a socket that proves a poller is running.
type pollerProbe struct{ seen chan struct{} }

// awaitPollers returns once every poller goroutine of the event loop has
// entered its loop. nbio v1.6.12 clears a poller's stop flag when its loop
// starts, so an Engine.Stop that comes earlier is lost and Stop never
// returns: a server stopped right after it started would hang. A byte sent
// over a socket pair registered with a poller reaches onData only from inside
// that poller's loop.
func (s *Server) awaitPollers() error {
	n := s.engine.NPoller
	seen := make(map[int]bool, n)
	// Sockets that landed on a poller already proved stay open until the
	// end, so that the next socket gets another descriptor number and with
	// it, possibly, another poller.
	var spare []*nbio.Conn
	defer func() {
		for _, c := range spare {
			_ = c.Close()
		}
	}()
	for tries := 0; len(seen) < n; tries++ {
		if tries >= 16*n {
			return errors.New("could not place a probe socket on every poller")
		}
		idx, extra, err := s.probeOnce(n, seen)
		if err != nil {
			return err
		}
		if extra != nil {
			spare = append(spare, extra)
			continue
		}
		seen[idx] = true
	}
	return nil
}

// probeOnce registers one end of a socket pair with the event loop and waits
// for a byte written to the other end to arrive. It returns the poller index
// it proved or, when the socket would land on a poller already proved, the
// unused socket for the caller to close later.
func (s *Server) probeOnce(n int, seen map[int]bool) (int, *nbio.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("probe socket pair: %w", err)
	}
	defer syscall.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "poller-probe")
	conn, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return -1, nil, fmt.Errorf("probe socket: %w", err)
	}
	nc, err := nbio.NBConn(conn)
	if err != nil {
		_ = conn.Close()
		return -1, nil, fmt.Errorf("probe socket: %w", err)
	}
	// The engine assigns a socket to poller Hash() mod NPoller.
	idx := nc.Hash() % n
	if seen[idx] {
		return -1, nc, nil
	}
	probe := &pollerProbe{seen: make(chan struct{}, 1)}
	nc.SetSession(probe)
	if _, err := s.engine.AddConn(nc); err != nil {
		return -1, nil, fmt.Errorf("probe socket: %w", err)
	}
	defer nc.Close()
	if _, err := syscall.Write(fds[1], []byte{0}); err != nil {
		return -1, nil, fmt.Errorf("probe write: %w", err)
	}
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-probe.seen:
		return idx, nil, nil
	case <-t.C:
		return -1, nil, errors.New("event loop poller did not answer")
	}
}
