package acmecert

import "time"

// SetNow replaces m's clock.
func SetNow(m *Manager, now func() time.Time) { m.now = now }
