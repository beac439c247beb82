package redisregistry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate/internal/cluster"
)

// Envelopes. A request on <p>:q:<node> is
//
//	'Q' | id uint64 big-endian | uvarint len(reply channel) | reply channel | payload
//
// and its reply on the requester's <p>:r:<node> is
//
//	'R' | id uint64 big-endian | payload
const (
	kindRequest = 'Q'
	kindReply   = 'R'
	idLen       = 8
)

// pendingShards spreads the table of waiting requests over several locks.
const pendingShards = 32

// pendingShard is one part of the table of requests waiting for a reply.
type pendingShard struct {
	mu sync.Mutex
	m  map[uint64]chan []byte
}

// Listen implements cluster.Engine. It subscribes two connections: one to
// nodeID's requests and, later, the topics, one to the replies to this
// node's requests, so that replies keep flowing while requests wait for a
// free handler. If Redis is unreachable it does not fail: the connections
// subscribe when Redis comes up.
func (e *Engine) Listen(nodeID string, h cluster.Handler) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return cluster.ErrClosed
	}
	if e.handler != nil {
		return errors.New("redis: engine already listens")
	}
	e.handler = h
	reqCh, replyCh := e.keys.requests(nodeID), e.keys.replies(nodeID)
	e.ctl = e.newListener("requests", e.handleControl)
	e.replies = e.newListener("replies", e.handleReply)
	e.listening.Store(&listenState{node: nodeID, replyChannel: replyCh, replies: e.replies})

	ctx, cancel := context.WithTimeout(e.ctx, 2*ioTimeout)
	defer cancel()
	var errs []error
	for _, s := range []struct {
		l  *listener
		ch string
	}{{e.ctl, reqCh}, {e.replies, replyCh}} {
		if err := s.l.subscribe(ctx, "subscribe", s.ch, func() {
			e.loops.Add(1)
			go func() {
				defer e.loops.Done()
				s.l.run(e.ctx)
			}()
		}); err != nil {
			errs = append(errs, err)
		}
	}
	e.loops.Add(1)
	go func() {
		defer e.loops.Done()
		e.keepAlive()
	}()
	if len(errs) > 0 {
		// The subscriptions stand and take effect when Redis answers.
		e.logger.Warn("redis unreachable; listening once it answers", "node", nodeID, "err", errors.Join(errs...))
	}
	return nil
}

// Request implements cluster.Engine. Only the caller's goroutine waits for
// the reply; the receive loop hands it over.
func (e *Engine) Request(ctx context.Context, nodeID string, req []byte) ([]byte, error) {
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	ls := e.listening.Load()
	if ls == nil {
		return nil, errors.New("redis: request before Listen: replies have nowhere to go")
	}
	if !ls.replies.up.Load() {
		// The request could be carried out while its reply is lost.
		return nil, errors.New("redis: the subscription for replies is not up; not sending")
	}
	id := e.nextID.Add(1)
	buf := make([]byte, 0, 1+idLen+binary.MaxVarintLen64+len(ls.replyChannel)+len(req))
	buf = append(buf, kindRequest)
	buf = binary.BigEndian.AppendUint64(buf, id)
	buf = binary.AppendUvarint(buf, uint64(len(ls.replyChannel)))
	buf = append(buf, ls.replyChannel...)
	buf = append(buf, req...)

	ch := e.waiters.Get().(chan []byte)
	shard := &e.pending[id%pendingShards]
	shard.mu.Lock()
	shard.m[id] = ch
	shard.mu.Unlock()

	n, err := e.client.Publish(ctx, e.keys.requests(nodeID), buf).Result()
	if err == nil && n == 0 {
		err = cluster.ErrNoNode
	} else if err != nil {
		err = fmt.Errorf("redis: request: %w", err)
	}
	if err == nil {
		select {
		case resp := <-ch:
			e.waiters.Put(ch)
			return resp, nil
		case <-ctx.Done():
			err = ctx.Err()
		case <-e.closing:
			err = cluster.ErrClosed
		}
	}
	shard.mu.Lock()
	_, waiting := shard.m[id]
	delete(shard.m, id)
	shard.mu.Unlock()
	if !waiting {
		// The receive loop took the entry and is handing over a late
		// reply; drain it so that the channel is empty for its next user.
		<-ch
	}
	e.waiters.Put(ch)
	return nil, err
}

// Publish implements cluster.Engine.
func (e *Engine) Publish(ctx context.Context, topic string, msg []byte) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	if err := e.client.Publish(ctx, e.keys.topicChannel(topic), msg).Err(); err != nil {
		return fmt.Errorf("redis: publish: %w", err)
	}
	return nil
}

// SubscribeTopic implements cluster.Engine. It returns once Redis confirmed
// the subscription, so a publication sent after it returns arrives. If it
// fails because Redis is unreachable, the subscription still takes effect
// when Redis answers.
func (e *Engine) SubscribeTopic(ctx context.Context, topic string) error {
	return e.topicCmd(ctx, "subscribe", topic)
}

// UnsubscribeTopic implements cluster.Engine. It returns once Redis
// confirmed that the subscription ended.
func (e *Engine) UnsubscribeTopic(ctx context.Context, topic string) error {
	return e.topicCmd(ctx, "unsubscribe", topic)
}

func (e *Engine) topicCmd(ctx context.Context, kind, topic string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	l := e.ctl
	e.mu.Unlock()
	if l == nil {
		return fmt.Errorf("redis: %s before Listen", kind)
	}
	if err := l.subscribe(ctx, kind, e.keys.topicChannel(topic), nil); err != nil {
		return fmt.Errorf("redis: %s %q: %w", kind, topic, err)
	}
	return nil
}

// handleControl handles a message on the requests-and-topics connection.
// Publications are handled in turn, which keeps them in order; requests
// are handed to a goroutine each, at most maxHandlers at once.
func (e *Engine) handleControl(ctx context.Context, m *redis.Message) {
	if strings.HasPrefix(m.Channel, e.keys.prefix+":t:") {
		e.handler.HandlePublish(e.keys.topicOf(m.Channel), []byte(m.Payload))
		return
	}
	p := m.Payload
	if len(p) < 1+idLen || p[0] != kindRequest {
		e.logger.Warn("dropping a malformed request", "channel", m.Channel, "len", len(p))
		return
	}
	id := binary.BigEndian.Uint64([]byte(p[1 : 1+idLen]))
	n, k := binary.Uvarint([]byte(p[1+idLen : min(len(p), 1+idLen+binary.MaxVarintLen64)]))
	start := 1 + idLen + k
	if k <= 0 || n > uint64(len(p)-start) {
		e.logger.Warn("dropping a malformed request", "channel", m.Channel, "len", len(p))
		return
	}
	replyTo := p[start : start+int(n)]
	if len(p) > 64<<10 {
		// Let the large payload go once it is copied into req.
		replyTo = strings.Clone(replyTo)
	}
	req := []byte(p[start+int(n):])
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	e.handlers.Add(1)
	go func() {
		defer e.handlers.Done()
		defer func() { <-e.sem }()
		resp := e.handler.HandleRequest(req)
		buf := make([]byte, 0, 1+idLen+len(resp))
		buf = append(buf, kindReply)
		buf = binary.BigEndian.AppendUint64(buf, id)
		buf = append(buf, resp...)
		// A requester that is gone has no subscriber; the reply is
		// dropped by Redis, which is fine.
		if err := e.client.Publish(e.ctx, replyTo, buf).Err(); err != nil && e.ctx.Err() == nil {
			e.logger.Warn("sending a reply failed", "err", err)
		}
	}()
}

// handleReply hands a reply to the request waiting for it.
func (e *Engine) handleReply(_ context.Context, m *redis.Message) {
	p := m.Payload
	if len(p) < 1+idLen || p[0] != kindReply {
		e.logger.Warn("dropping a malformed reply", "len", len(p))
		return
	}
	id := binary.BigEndian.Uint64([]byte(p[1 : 1+idLen]))
	shard := &e.pending[id%pendingShards]
	shard.mu.Lock()
	ch, ok := shard.m[id]
	delete(shard.m, id)
	shard.mu.Unlock()
	if ok {
		ch <- []byte(p[1+idLen:])
	}
}

// keepAlive pings idle subscription connections, so that one that died
// silently fails a write and is replaced.
func (e *Engine) keepAlive() {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		for _, l := range []*listener{e.ctl, e.replies} {
			if time.Since(time.Unix(0, l.lastSeen.Load())) >= pingInterval {
				_ = l.ps.Ping(e.ctx)
			}
		}
	}
}

// listener owns one subscription connection and the loop that reads it.
type listener struct {
	name   string
	ps     *redis.PubSub
	reach  *reachability
	handle func(context.Context, *redis.Message)
	logger *slog.Logger
	// lastSeen is when the loop last received anything, in Unix
	// nanoseconds.
	lastSeen atomic.Int64
	// up is set while the connection is subscribed: from the first message
	// received after (re)connecting until a receive fails.
	up   atomic.Bool
	done chan struct{}

	// waitersMu guards waiters: the calls waiting for Redis to confirm a
	// (un)subscription, by kind and channel.
	waitersMu sync.Mutex
	waiters   map[waiterKey][]chan struct{}
}

type waiterKey struct{ kind, channel string }

func (e *Engine) newListener(name string, handle func(context.Context, *redis.Message)) *listener {
	l := &listener{
		name:    name,
		ps:      e.client.Subscribe(e.ctx),
		reach:   &e.reach,
		handle:  handle,
		logger:  e.logger.With("conn", name),
		done:    make(chan struct{}),
		waiters: make(map[waiterKey][]chan struct{}),
	}
	l.lastSeen.Store(time.Now().UnixNano())
	return l
}

// subscribe sends a (un)subscribe command for channel and waits until Redis
// confirms it. started, when not nil, runs after the command was sent and
// before the wait: it starts the loop that receives the confirmation.
func (l *listener) subscribe(ctx context.Context, kind, channel string, started func()) error {
	key := waiterKey{kind, channel}
	w := make(chan struct{})
	l.waitersMu.Lock()
	l.waiters[key] = append(l.waiters[key], w)
	l.waitersMu.Unlock()
	var err error
	if kind == "subscribe" {
		err = l.ps.Subscribe(ctx, channel)
	} else {
		err = l.ps.Unsubscribe(ctx, channel)
	}
	if started != nil {
		started()
	}
	if err == nil {
		select {
		case <-w:
			return nil
		case <-ctx.Done():
			err = ctx.Err()
		case <-l.done:
			err = cluster.ErrClosed
		}
	}
	l.waitersMu.Lock()
	ws := l.waiters[key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(l.waiters, key)
	} else {
		l.waiters[key] = ws
	}
	l.waitersMu.Unlock()
	return err
}

// confirm wakes the calls waiting for a (un)subscription of channel.
func (l *listener) confirm(kind, channel string) {
	key := waiterKey{kind, channel}
	l.waitersMu.Lock()
	ws := l.waiters[key]
	delete(l.waiters, key)
	l.waitersMu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// run reads the connection until ctx ends. go-redis reconnects a broken
// connection on the next read and subscribes it again to every channel;
// run waits a little longer after each failure, so as not to spin, and
// while Redis is known to be down it waits until a heartbeat finds it up.
func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	failures := 0
	for {
		msg, err := l.ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.up.Store(false)
			if failures == 0 {
				l.logger.Warn("redis subscription connection lost; reconnecting", "err", err)
			}
			failures++
			if up := l.reach.wait(); up != nil {
				select {
				case <-ctx.Done():
					return
				case <-up:
				}
				continue
			}
			backoff := min(50*time.Millisecond<<min(failures, 6), time.Second)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		l.lastSeen.Store(time.Now().UnixNano())
		l.up.Store(true)
		if failures > 0 {
			l.logger.Info("redis subscription connection restored", "failures", failures)
			failures = 0
		}
		switch m := msg.(type) {
		case *redis.Message:
			l.handle(ctx, m)
		case *redis.Subscription:
			l.confirm(m.Kind, m.Channel)
		}
	}
}
