package edge

// CiphersReleased reports whether c is a TLS connection whose record
// ciphers are released in both directions (see releaseCiphers).
func CiphersReleased(c *Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tls == nil {
		return false
	}
	return ciphersReleased(c.tls.tc)
}

// WaitingWorkers is the number of message workers waiting for a
// connection with messages.
func WaitingWorkers(s *Server) int64 { return s.workers.waiting.Load() }
