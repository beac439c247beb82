package natsregistry

import (
	"context"
	"sync"
)

// A request sent just before the connection to NATS drops never gets its
// answer: it would wait for its context's deadline, long after the client
// has reconnected. A heartbeat that waits that long leaves its node silent
// for that long, and the other nodes may declare it lost; so the calls
// that must not hang (heartbeats, and making the buckets, which every call
// waits for) are bound to the connection they were made on, and fail as
// soon as it drops.

// connLife is a context that lives as long as the current connection.
type connLife struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	// ended is an ended context, for while there is no connection.
	ended context.Context
}

// current returns the context of the connection the engine has now, which
// has ended while it has none.
func (e *Engine) connCtx() context.Context {
	l := &e.life
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx == nil || l.ctx.Err() != nil {
		if !e.nc.IsConnected() {
			if l.ended == nil {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				l.ended = ctx
			}
			return l.ended
		}
		l.ctx, l.cancel = context.WithCancel(context.Background())
	}
	return l.ctx
}

// connLost ends the current connection's context.
func (e *Engine) connLost() {
	l := &e.life
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
	}
}

// onConn returns ctx, ended also when the connection the engine has now
// drops; then context.Cause reports errNotConnected.
func (e *Engine) onConn(ctx context.Context) (context.Context, context.CancelFunc) {
	conn := e.connCtx()
	c, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(conn, func() { cancel(errNotConnected) })
	return c, func() {
		stop()
		cancel(nil)
	}
}

// dropped reports whether ctx, made by onConn, ended because the
// connection dropped.
func dropped(ctx context.Context) bool {
	return context.Cause(ctx) == errNotConnected
}
