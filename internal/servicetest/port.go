package servicetest

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// FreePort returns a port of 127.0.0.1 that nothing listens on, for a
// server a test starts as a separate process. It is taken below the
// kernel's ephemeral range (net.ipv4.ip_local_port_range) where that leaves
// room: a port from that range, released again, may go to any process's
// outgoing connection before the server binds it, which parallel test
// packages made happen. Ports are handed out in turn from a start that
// depends on the process id, so that two test processes rarely try the same
// one. Where the range starts too low, it falls back to a port the kernel
// picks.
func FreePort() (int, error) {
	low, high := belowEphemeral()
	if low == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port, nil
	}
	portsMu.Lock()
	defer portsMu.Unlock()
	if nextPort == 0 {
		nextPort = low + os.Getpid()%(high-low)
	}
	for range high - low {
		p := nextPort
		if nextPort++; nextPort >= high {
			nextPort = low
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free port from %d to %d", low, high-1)
}

var (
	// portsMu guards nextPort, the next port FreePort tries.
	portsMu  sync.Mutex
	nextPort int
)

// belowEphemeral returns the 10,000 ports below the ephemeral range, as
// [low, high), or zeros when the range starts too low to leave them.
func belowEphemeral() (low, high int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start < 11024 {
		return 0, 0
	}
	return start - 10000, start
}
