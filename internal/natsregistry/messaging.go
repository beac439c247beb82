package natsregistry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/internal/cluster"
)

// errorHeader marks an answer the answering node could not send; its value
// says why. Answers are otherwise the handler's bytes, unwrapped.
const errorHeader = "Wsgate-Error"

// listenFlushTimeout bounds how long Listen waits for the server to
// confirm the node's subscription.
const listenFlushTimeout = 5 * time.Second

// topicSub is one topic subscription. ready is closed once the server has
// confirmed it or it failed; err is set before.
type topicSub struct {
	sub   *nats.Subscription
	ready chan struct{}
	err   error
}

// Listen implements cluster.Engine. It subscribes <prefix>.node.<nodeID>.
// When NATS is unreachable Listen still succeeds: nats.go sends the
// subscription once connected.
func (e *Engine) Listen(nodeID string, h cluster.Handler) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return cluster.ErrClosed
	}
	if e.handler != nil {
		e.mu.Unlock()
		return errors.New("nats: engine already listens")
	}
	sub, err := e.nc.Subscribe(e.nodeSubject(nodeID), e.onRequest)
	if err != nil {
		e.mu.Unlock()
		return fmt.Errorf("nats: listen: %w", err)
	}
	e.nodeID, e.handler, e.nodeSub = nodeID, h, sub
	e.mu.Unlock()
	if e.nc.IsConnected() {
		if err := e.nc.FlushTimeout(listenFlushTimeout); err != nil {
			e.logger.Warn("nats did not confirm the node subscription; it is sent again on reconnection", "err", err)
		}
	}
	return nil
}

// onRequest runs on the node subscription's dispatch goroutine. It hands
// the request to a handler goroutine; at handlerLimit running handlers it
// waits for one to end.
func (e *Engine) onRequest(m *nats.Msg) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	h := e.handler
	e.handlers.Add(1)
	e.mu.Unlock()
	e.sem <- struct{}{}
	go func() {
		defer e.handlers.Done()
		defer func() { <-e.sem }()
		e.answer(m, h.HandleRequest(m.Data))
	}()
}

// answer sends resp as m's answer, or an error answer when it cannot be
// sent (larger than the server's max_payload), so that the requester does
// not wait for its deadline.
func (e *Engine) answer(m *nats.Msg, resp []byte) {
	if m.Reply == "" {
		return
	}
	err := m.Respond(resp)
	if errors.Is(err, nats.ErrMaxPayload) {
		em := nats.NewMsg(m.Reply)
		em.Header.Set(errorHeader, fmt.Sprintf("answer of %d bytes exceeds the server's max_payload", len(resp)))
		err = e.nc.PublishMsg(em)
	}
	if err != nil {
		e.logger.Debug("sending an answer failed", "err", err)
	}
}

// Request implements cluster.Engine. The request and answer are the bytes
// themselves; each, with NATS headers, must fit the server's max_payload
// (1 MiB by default). It fails at once while NATS is unreachable.
func (e *Engine) Request(ctx context.Context, nodeID string, req []byte) ([]byte, error) {
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	m, err := e.nc.RequestWithContext(ctx, e.nodeSubject(nodeID), req)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, cluster.ErrNoNode
		}
		return nil, fmt.Errorf("nats: request: %w", err)
	}
	if m.Header != nil {
		if msg := m.Header.Get(errorHeader); msg != "" {
			return nil, fmt.Errorf("nats: request: node %q: %s", nodeID, msg)
		}
	}
	return m.Data, nil
}

// Publish implements cluster.Engine. It publishes <prefix>.topic.<topic>
// without waiting for the server; it fails at once while NATS is
// unreachable.
func (e *Engine) Publish(ctx context.Context, topic string, msg []byte) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	if err := e.nc.Publish(e.topicSubj+enc(topic), msg); err != nil {
		return fmt.Errorf("nats: publish: %w", err)
	}
	return nil
}

// SubscribeTopic implements cluster.Engine. It returns once the server
// has the subscription. Each topic has its own subscription, whose
// dispatch goroutine calls HandlePublish in order.
func (e *Engine) SubscribeTopic(ctx context.Context, topic string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return cluster.ErrClosed
	}
	if e.handler == nil {
		e.mu.Unlock()
		return errors.New("nats: subscribe topic: Listen first")
	}
	if ts, ok := e.topics[topic]; ok {
		e.mu.Unlock()
		select {
		case <-ts.ready:
			return ts.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h := e.handler
	ts := &topicSub{ready: make(chan struct{})}
	e.topics[topic] = ts
	e.mu.Unlock()

	ts.err = e.subscribeTopic(ctx, ts, topic, h)
	if ts.err != nil {
		e.mu.Lock()
		if e.topics[topic] == ts {
			delete(e.topics, topic)
		}
		e.mu.Unlock()
	}
	close(ts.ready)
	return ts.err
}

func (e *Engine) subscribeTopic(ctx context.Context, ts *topicSub, topic string, h cluster.Handler) error {
	sub, err := e.nc.Subscribe(e.topicSubj+enc(topic), func(m *nats.Msg) {
		h.HandlePublish(topic, m.Data)
	})
	if err != nil {
		return fmt.Errorf("nats: subscribe topic: %w", err)
	}
	ts.sub = sub
	fctx, cancel := withDeadline(ctx)
	defer cancel()
	if err := e.nc.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("nats: subscribe topic: %w", err)
	}
	return nil
}

// UnsubscribeTopic implements cluster.Engine. Publications already on
// their way are dropped.
func (e *Engine) UnsubscribeTopic(ctx context.Context, topic string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	ts, ok := e.topics[topic]
	delete(e.topics, topic)
	e.mu.Unlock()
	if !ok {
		return nil
	}
	// A SubscribeTopic in progress ends within its own context.
	<-ts.ready
	if ts.err != nil {
		return nil
	}
	if err := ts.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("nats: unsubscribe topic: %w", err)
	}
	return nil
}

// nodeSubject returns <prefix>.node.<enc(nodeID)>, cached: a node sends
// most requests to the few other nodes of its cluster.
func (e *Engine) nodeSubject(nodeID string) string {
	if s, ok := e.nodeSubjects.Load(nodeID); ok {
		return s.(string)
	}
	s := e.nodeSubj + enc(nodeID)
	e.nodeSubjects.Store(nodeID, s)
	return s
}
