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
