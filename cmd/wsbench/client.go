//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/wsproto"
)

// target is one gateway client listener.
type target struct {
	URL  string // as given, for messages
	Addr string // host:port that is dialed
	Host string // Host header
	Path string // request target: path and query
	IP   net.IP
	TLS  bool // wss://
	// TLSVersion limits a wss:// connection to one TLS version; 0: the
	// highest both sides speak.
	TLSVersion uint16
}

// parseTarget parses a ws:// or wss:// URL and refuses any host that is not a
// loopback address (127.0.0.0/8 or ::1): wsbench is a load generator and
// must not be pointed at another machine by mistake. "localhost" stands for
// 127.0.0.1; other names are refused rather than resolved.
func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("target %q: %w", raw, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	default:
		return target{}, fmt.Errorf("target %q: scheme must be ws:// or wss://", raw)
	}
	if u.User != nil {
		return target{}, fmt.Errorf("target %q: user info is not supported", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return target{}, fmt.Errorf("target %q: host %q is not an IP address; wsbench dials loopback addresses only (127.0.0.0/8 or ::1)", raw, u.Hostname())
	}
	if !isLoopback(ip) {
		return target{}, fmt.Errorf("target %q: %s is not a loopback address; wsbench dials loopback addresses only (127.0.0.0/8 or ::1)", raw, ip)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" {
			port = "443"
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return target{}, fmt.Errorf("target %q: invalid port %q", raw, port)
	}
	return target{
		URL:  raw,
		Addr: net.JoinHostPort(ip.String(), port),
		Host: u.Host,
		Path: u.RequestURI(),
		IP:   ip,
		TLS:  u.Scheme == "wss",
	}, nil
}

// isLoopback reports whether ip is in 127.0.0.0/8 or is ::1.
func isLoopback(ip net.IP) bool {
	if ip4 := ip.To4(); ip4 != nil {
		return ip4[0] == 127
	}
	return ip.Equal(net.IPv6loopback)
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h (Linux
// 4.2+). With it, bind(127.0.0.x:0) leaves the port to connect(), which
// picks it by the whole 4-tuple and may reuse loopback TIME_WAIT entries;
// without it, bind picks a port that is free for every destination, which
// runs out after ~28k sockets per source address and slows down sharply
// when many TIME_WAIT sockets are left from earlier runs.
const ipBindAddressNoPort = 24

func bindAddressNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt IP_BIND_ADDRESS_NO_PORT: %w", serr)
	}
	return nil
}

// dialers holds one net.Dialer per source address. The zero source list
// lets the kernel choose the source address.
type dialers struct {
	bySource []*net.Dialer
	plain    *net.Dialer
}

func newDialers(sources []net.IP, timeout time.Duration) *dialers {
	d := &dialers{plain: &net.Dialer{Timeout: timeout}}
	for _, ip := range sources {
		d.bySource = append(d.bySource, &net.Dialer{
			Timeout:   timeout,
			LocalAddr: &net.TCPAddr{IP: ip},
			Control:   bindAddressNoPort,
		})
	}
	return d
}

// pick returns the dialer for the i-th connection to t: source addresses
// are used in turn for IPv4 targets.
func (d *dialers) pick(i int, t target) *net.Dialer {
	if len(d.bySource) == 0 || t.IP.To4() == nil {
		return d.plain
	}
	return d.bySource[i%len(d.bySource)]
}

// maxResponseHeader bounds the upgrade response wsbench reads.
const maxResponseHeader = 4096

// handshake sends the upgrade request for t on c and reads the response
// until deadline. It returns the bytes that followed the response headers
// (the start of the first frames, if the server sent any already).
func handshake(c net.Conn, t target, deadline time.Time) (rest []byte, err error) {
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := make([]byte, 0, 192+len(t.Path)+len(t.Host))
	req = append(req, "GET "...)
	req = append(req, t.Path...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, t.Host...)
	req = append(req, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	req = append(req, key...)
	req = append(req, "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: wsbench\r\n\r\n"...)
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxResponseHeader {
				return nil, fmt.Errorf("%w: response headers longer than %d bytes", errBadHandshake, maxResponseHeader)
			}
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if end := bytes.Index(buf, []byte("\r\n\r\n")); end >= 0 {
			if err := checkResponse(buf[:end+2], key); err != nil {
				return nil, err
			}
			rest = buf[end+4:]
			if len(rest) == 0 {
				rest = nil
			}
			return rest, c.SetDeadline(time.Time{})
		}
		if err != nil {
			return nil, err
		}
	}
}

// checkResponse checks an upgrade response's status line and
// Sec-WebSocket-Accept. head ends with the last header's CRLF.
func checkResponse(head []byte, key string) error {
	line, headers, _ := bytes.Cut(head, []byte("\r\n"))
	proto, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(rest) < 3 {
		return fmt.Errorf("%w: status line %q", errBadHandshake, line)
	}
	code, err := strconv.Atoi(string(rest[:3]))
	if err != nil {
		return fmt.Errorf("%w: status line %q", errBadHandshake, line)
	}
	if code != 101 {
		return &statusError{code: code}
	}
	want := wsproto.AcceptKey(key)
	for len(headers) > 0 {
		var h []byte
		h, headers, _ = bytes.Cut(headers, []byte("\r\n"))
		name, value, ok := bytes.Cut(h, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Sec-WebSocket-Accept")) {
			if string(bytes.TrimSpace(value)) != want {
				return fmt.Errorf("%w: Sec-WebSocket-Accept %q, want %q", errBadHandshake, bytes.TrimSpace(value), want)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: no Sec-WebSocket-Accept header", errBadHandshake)
}

// dialWS opens one plain WebSocket connection to t with d. The deadline of
// the whole attempt (connect, request, response) is d.Timeout. Modes that
// work on the raw socket call it; a wss:// target is an error there.
func dialWS(ctx context.Context, d *net.Dialer, t target) (*net.TCPConn, []byte, error) {
	if t.TLS {
		return nil, nil, fmt.Errorf("target %s: this mode dials ws:// only", t.URL)
	}
	deadline := time.Now().Add(d.Timeout)
	c, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, nil, err
	}
	rest, err := handshake(c, t, deadline)
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return c.(*net.TCPConn), rest, nil
}

// clientFrame returns a masked client frame with a random key.
func clientFrame(dst []byte, op wsproto.Opcode, payload []byte) []byte {
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	return wsproto.AppendClientFrame(dst, op, true, payload, key)
}

// closeFrame returns a masked close frame with code 1000.
func closeFrame() []byte {
	return clientFrame(nil, wsproto.OpClose, []byte{byte(wsproto.CloseNormal >> 8), byte(wsproto.CloseNormal & 0xff)})
}

// errMaskedServerFrame is a server frame with the mask bit set, which
// RFC 6455 forbids.
var errMaskedServerFrame = errors.New("server sent a masked frame")

// serverFrame is one frame read from the gateway.
type serverFrame struct {
	op      wsproto.Opcode
	fin     bool
	payload []byte
}

// parseServerFrame parses one unmasked server frame at the start of b. It
// returns the frame and its length on the wire, or n == 0 when b does not
// yet hold a whole frame. The payload aliases b.
func parseServerFrame(b []byte) (f serverFrame, n int, err error) {
	if len(b) < 2 {
		return f, 0, nil
	}
	if b[1]&0x80 != 0 {
		return f, 0, errMaskedServerFrame
	}
	f.op = wsproto.Opcode(b[0] & 0x0f)
	f.fin = b[0]&0x80 != 0
	hdr, length := 2, uint64(b[1]&0x7f)
	switch length {
	case 126:
		if len(b) < 4 {
			return f, 0, nil
		}
		hdr, length = 4, uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		if len(b) < 10 {
			return f, 0, nil
		}
		hdr, length = 10, binary.BigEndian.Uint64(b[2:10])
		if length > 1<<31 {
			return f, 0, fmt.Errorf("server frame of %d bytes", length)
		}
	}
	end := hdr + int(length)
	if len(b) < end {
		return f, 0, nil
	}
	f.payload = b[hdr:end]
	return f, end, nil
}

// closeCode returns the code of a close frame's payload, or 1005 when it
// has none.
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return wsproto.CloseNoStatus
	}
	return int(binary.BigEndian.Uint16(payload))
}
