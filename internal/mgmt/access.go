package mgmt

import (
	"net"
	"net/http"
	"strconv"
	"time"
)

// Call is a management API call once answered, as Config.Access sees it.
// It holds nothing secret: no header values but the User-Agent, no query
// string, no credential.
type Call struct {
	RequestID string // the x-amzn-RequestId answered
	Method    string
	// Path is the request's path, escaped as sent, without the query
	// string (which may hold a presigned URL's signature).
	Path      string
	Protocol  string
	Operation string // as for Config.Observe
	Status    int
	// Caller is who the call authenticated as: "bearer:N" for the Nth
	// bearer token (from 0: those of bearer_tokens_env, then those of
	// bearer_tokens_file), "sigv4:ACCESS_KEY_ID" for a SigV4 signature,
	// "" when it did not authenticate or needed not.
	Caller    string
	SourceIP  string
	UserAgent string
	Start     time.Time
	Latency   time.Duration
}

// observe reports the call r, answered with status, to the observers.
func (s *Server) observe(r *http.Request, c *call, op, requestID string, status int, start time.Time) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(op, status)
	}
	if s.cfg.Access == nil {
		return
	}
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	s.cfg.Access(&Call{
		RequestID: requestID,
		Method:    r.Method,
		Path:      r.URL.EscapedPath(),
		Protocol:  r.Proto,
		Operation: op,
		Status:    status,
		Caller:    c.caller,
		SourceIP:  ip,
		UserAgent: r.UserAgent(),
		Start:     start,
		Latency:   time.Since(start),
	})
}

func bearerCaller(i int) string { return "bearer:" + strconv.Itoa(i) }
