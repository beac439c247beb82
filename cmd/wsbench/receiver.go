//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// startReceiver reads the push clients' sockets from a few edge-triggered
// epoll loops, usually one read per delivery, instead of a goroutine per
// connection. The
// load generator shares the machine's cores with the gateway it measures;
// a goroutine per connection costs a netpoll wake-up, a scheduling round
// and a second read that ends in EAGAIN for every delivery, CPU the
// gateway then does not have.
// recvLoop is one epoll instance and the connections registered with it.
type recvLoop struct {
	epfd    int
	conns   []*pushConn // by descriptor
	live    int
	buf     []byte
	measure *atomic.Bool
}

const recvBufSize = 64 << 10

// It moves each connection's socket from Go's poller to one of n epoll
// loops and starts them. The loops end when every connection
// they hold has ended (pushConn.shutdown ends one). A connection whose
// socket cannot be moved ends with that error.
func startReceiver(conns []*pushConn, n int, measure *atomic.Bool) error {
	var loops []*recvLoop
	for range n {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			for _, l := range loops {
				_ = unix.Close(l.epfd)
			}
			return os.NewSyscallError("epoll_create1", err)
		}
		loops = append(loops, &recvLoop{epfd: epfd, buf: make([]byte, 0, recvBufSize), measure: measure})
	}
	for i, p := range conns {
		if err := p.detach(); err != nil {
			p.err = err
			_ = p.c.Close()
			close(p.done)
			continue
		}
		l := loops[i%n]
		if p.fd >= len(l.conns) {
			l.conns = slices.Grow(l.conns, p.fd+1-len(l.conns))[:p.fd+1]
		}
		l.conns[p.fd] = p
		l.live++
	}
	// Frames that arrived with the handshake's answer are handled before
	// the loops start, so that each connection has one owner from then on.
	for _, l := range loops {
		for _, p := range l.conns {
			if p == nil || len(p.rest) == 0 {
				continue
			}
			rest, err := p.consume(append([]byte(nil), p.rest...), measure)
			p.rest, p.pending = nil, rest
			if err != nil {
				l.end(p, err)
			}
		}
	}
	for _, l := range loops {
		for fd, p := range l.conns {
			if p == nil {
				continue
			}
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
			if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
				l.end(p, os.NewSyscallError("epoll_ctl", err))
			}
		}
	}
	for _, l := range loops {
		go l.run()
	}
	return nil
}

func (l *recvLoop) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer unix.Close(l.epfd)
	events := make([]unix.EpollEvent, 256)
	for l.live > 0 {
		n, err := unix.EpollWait(l.epfd, events, 1000)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			for _, p := range l.conns {
				if p != nil {
					l.end(p, os.NewSyscallError("epoll_wait", err))
				}
			}
			return
		}
		for _, ev := range events[:n] {
			if fd := int(ev.Fd); fd < len(l.conns) && l.conns[fd] != nil {
				l.readable(l.conns[fd], ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
			}
		}
	}
}

// readable reads from p until a read comes back short: edge-triggered,
// the loop hears again only of data that arrives after that. When the
// event also said the peer is gone (hup), no further event will come: it
// reads until the end of file or an error.
func (l *recvLoop) readable(p *pushConn, hup bool) {
	for {
		own := len(p.pending) > 0
		buf := l.buf[:0]
		if own {
			buf = slices.Grow(p.pending, 4096)
		}
		room := cap(buf) - len(buf)
		n, err := unix.Read(p.fd, buf[len(buf):cap(buf)])
		switch {
		case n > 0:
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
			continue
		case err != nil:
			l.end(p, os.NewSyscallError("read", err))
			return
		default:
			l.end(p, io.EOF)
			return
		}
		rest, err := p.consume(buf[:len(buf)+n], l.measure)
		switch {
		case err != nil:
			l.end(p, err)
			return
		case own:
			p.pending = rest
		case len(rest) > 0:
			p.pending = append([]byte(nil), rest...)
		default:
			p.pending = nil
		}
		if n < room && !hup {
			return
		}
	}
}

// end records why p ended, closes its socket and tells whoever waits.
func (l *recvLoop) end(p *pushConn, cause error) {
	if p.fd < 0 || p.fd >= len(l.conns) || l.conns[p.fd] != p {
		return
	}
	l.conns[p.fd] = nil
	l.live--
	p.err = cause
	p.closeFD()
	close(p.done)
}

// detach moves the connection's socket out of Go's poller (dupFD).
func (p *pushConn) detach() error {
	fd, err := dupFD(p.c)
	if err != nil {
		return err
	}
	p.fd, p.detached = fd, true
	return nil
}

// writeFD writes all of b to the detached socket, waiting up to the
// deadline for room.
func (p *pushConn) writeFD(b []byte, deadline time.Time) error {
	for len(b) > 0 {
		if p.fd < 0 {
			return errors.New("connection closed")
		}
		n, err := unix.Write(p.fd, b)
		if n > 0 {
			b = b[n:]
			continue
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return os.NewSyscallError("write", err)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("write: %w", os.ErrDeadlineExceeded)
		}
		fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, int(wait.Milliseconds())+1); err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
	}
	return nil
}

// closeFD closes the detached socket once, under the write lock, so that
// no writer uses the number after it may name another file.
func (p *pushConn) closeFD() {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if p.fd >= 0 {
		_ = unix.Close(p.fd)
		p.fd = -1
	}
}

// shutdown ends the connection for its reader: the loop then reads end of
// file and closes it.
func (p *pushConn) shutdown() {
	if !p.detached {
		_ = p.c.Close()
		return
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if p.fd >= 0 {
		_ = unix.Shutdown(p.fd, unix.SHUT_RDWR)
	}
}
