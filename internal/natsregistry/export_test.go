package natsregistry

import "time"

// SetReconnectWait sets the pause between reconnection attempts of the
// engines made from now on, and returns a function that restores it.
func SetReconnectWait(d time.Duration) (restore func()) {
	old := reconnectWait
	reconnectWait = d
	return func() { reconnectWait = old }
}
