package mgmt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
)

// DefaultMaxBodyBytesInFlight is Config.MaxBodyBytesInFlight's default:
// room for six of the largest @batch bodies at once.
const DefaultMaxBodyBytesInFlight = 64 << 20

// unverifiedShare is the divisor of the body budget that bodies read before
// their signature is checked may hold at once (a quarter: 16 MiB of the
// default 64 MiB), never less than one @batch.
const unverifiedShare = 4

// MaxHeaderBytes bounds the request line and headers of a management call,
// far above what a SigV4-signed request with a session token carries.
const MaxHeaderBytes = 64 << 10

var errBodyBudget = &Error{Status: http.StatusTooManyRequests, Type: "LimitExceededException",
	Message: "Too many request bodies are being read at once; retry later"}

// budget bounds the bytes of request bodies being read, or held by the call
// that read them, at once. Bytes are reserved before a body is read, by
// the length it declares (by the call's limit when it declares none), so
// that a client that declares a large body and sends it slowly holds no
// more than its share.
type budget struct {
	mu   sync.Mutex
	free int64
}

// take reserves n bytes, or reports false when fewer are free.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.free {
		return false
	}
	b.free -= n
	return true
}

// give returns n reserved bytes.
func (b *budget) give(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
}

// call is the state of one management call that the steps serving it
// share: authentication may read the body the handler then uses.
type call struct {
	// reserved is how much of the body budget the call holds; ServeHTTP
	// returns it when the call ends.
	reserved int64
	// read is set once the whole body has been read into body.
	read bool
	body []byte
	// caller is who the call authenticated as, for access logs: "bearer:N"
	// (the Nth configured token, from 0) or "sigv4:ACCESS_KEY_ID"; "" when
	// it did not authenticate. Never the credential itself.
	caller string
}

type callKey struct{}

// callOf returns r's call state, or a fresh one when r did not come through
// ServeHTTP.
func callOf(r *http.Request) *call {
	if c, ok := r.Context().Value(callKey{}).(*call); ok {
		return c
	}
	return &call{}
}

func withCall(r *http.Request, c *call) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), callKey{}, c))
}

// readBody returns r's whole body, at most limit bytes, reading it once per
// call. A body that declares more than limit bytes is
// PayloadTooLargeException before any of it is read; one that does not fit
// the body budget is LimitExceededException, also unread. A body already
// read (by authentication, with the limit of the path) is held to limit
// too: a push to a topic, user or connection named "@batch" has the path
// of a batch but the limit of a push.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	c := callOf(r)
	if c.read {
		if int64(len(c.body)) > limit {
			return nil, payloadTooLarge(limit)
		}
		return c.body, nil
	}
	if r.ContentLength > limit {
		return nil, payloadTooLarge(limit)
	}
	n := r.ContentLength
	if n < 0 {
		n = limit
	}
	if n > 0 {
		if !s.bodies.take(n) {
			return nil, errBodyBudget
		}
		c.reserved += n
	}
	buf := bytes.NewBuffer(make([]byte, 0, max(r.ContentLength, 0)))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, payloadTooLarge(limit)
		}
		return nil, &Error{Status: http.StatusBadRequest, Type: "BadRequestException", Message: "Could not read request body"}
	}
	body := buf.Bytes()
	// A body without a declared length holds only what it turned out to
	// be.
	if extra := n - int64(len(body)); extra > 0 {
		s.bodies.give(extra)
		c.reserved -= extra
	}
	c.body, c.read = body, true
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}
