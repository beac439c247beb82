package redisregistry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
)

// While Redis is down, the client library would let every call dial it
// and fail, and once enough dials have failed it stops dialing and only
// probes Redis in the background, once a second. A node whose engine
// probes that seldom comes back up to a second after Redis does, and its
// heartbeat stands still that long after every outage: long enough for the
// others to declare it lost when node_timeout is short. So the engine
// keeps the client from dialing a Redis it knows is down: calls fail at
// once, and Heartbeat and Ready probe Redis with a dial of their own, so
// that the engine is back with the first heartbeat after Redis is. Other
// calls probe too, at most every probeInterval, so that an engine nobody
// heartbeats on comes back as well.

// probeInterval is how often calls other than Heartbeat and Ready may
// probe a Redis that is down.
const probeInterval = 100 * time.Millisecond

// reachability is whether Redis accepts connections, as the last dial
// found.
type reachability struct {
	mu sync.Mutex
	// err is the error of the dial that failed, while Redis is down.
	err error
	// up is closed when Redis accepts connections again; nil while it
	// does.
	up chan struct{}
	// probed is when a call last took its turn to probe Redis.
	probed time.Time
}

// probeTurn reports whether a call may probe Redis now, while it is down.
func (r *reachability) probeTurn(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.probed) < probeInterval {
		return false
	}
	r.probed = now
	return true
}

// downErr returns the dial error while Redis is down, else nil.
func (r *reachability) downErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// wait returns a channel that is closed once Redis is up; nil while it is.
func (r *reachability) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

func (r *reachability) down(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up == nil {
		r.up = make(chan struct{})
	}
	r.err = err
}

func (r *reachability) reached() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up != nil {
		close(r.up)
		r.up, r.err = nil, nil
	}
}

// dialRedis is the client's dialer: it dials as the client would and
// records whether Redis accepted the connection. A dial cut short by its
// caller's context says nothing about Redis.
func (e *Engine) dialRedis(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := e.dial(ctx, network, addr)
	switch {
	case err == nil:
		e.reach.reached()
	case ctx.Err() == nil && !errors.Is(err, context.Canceled):
		e.reach.down(err)
	}
	return c, err
}

// probe dials Redis, without the client, while it is known to be down, and
// reports whether it accepts connections again.
func (e *Engine) probe(ctx context.Context) error {
	if e.closed.Load() {
		return cluster.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.reach.downErr() == nil {
		return nil
	}
	c, err := e.dialRedis(ctx, "tcp", e.addr)
	if err != nil {
		return fmt.Errorf("redis: unreachable: %w", err)
	}
	_ = c.Close()
	return nil
}
