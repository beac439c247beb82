package config

import (
	"errors"
	"io/fs"
	"os/exec"
	"slices"
)

// ErrMissing is the cause of a problem that is only an environment variable,
// named by the configuration, that is unset or empty on this machine.
var ErrMissing = errors.New("unset on this machine")

// IsMissing reports whether err is only the absence, on this machine, of
// what the configuration names — an environment variable that is unset or
// empty (ErrMissing), a file or a program that does not exist — and not a
// mistake in the configuration or in what it names. A joined error is
// missing when each of its errors is.
//
// serve refuses to start on any problem. validate, which may run where the
// secrets and programs are not (a fresh clone, CI), reports these apart.
func IsMissing(err error) bool {
	for err != nil {
		if missingCause(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			list := u.Unwrap()
			return len(list) > 0 && !slices.ContainsFunc(list, func(e error) bool { return !IsMissing(e) })
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return false
		}
	}
	return false
}

// missingCause reports whether err itself, leaving aside the errors it
// wraps, says that something does not exist.
func missingCause(err error) bool {
	if err == ErrMissing || err == exec.ErrNotFound || err == fs.ErrNotExist {
		return true
	}
	is, ok := err.(interface{ Is(error) bool })
	return ok && is.Is(fs.ErrNotExist)
}
