//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package gateway

import (
	"errors"
	"syscall"
)

func reusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("SO_REUSEPORT is not supported on this system")
}
