package redact

import "net/url"

// URL returns the URL s without its user information, for a log line: a
// password, or a token written as the user (nats://TOKEN@host:4222), is
// dropped whole. A string that does not parse as a URL gives "".
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	u.User = nil
	return u.String()
}
