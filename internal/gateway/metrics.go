package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/integration"
	"github.com/wsgate/wsgate/internal/metrics"
	"github.com/wsgate/wsgate/internal/mgmt"
	"github.com/wsgate/wsgate/internal/registry"
)

// observeIntegration records the call of rt's integration on route that
// started at start and answered resp or err. A backend that answered an
// error status is an integration error (AWS IntegrationError); any other
// failure is an execution error (AWS ExecutionError). Mock integrations
// have no latency, as in AWS.
func (g *Gateway) observeIntegration(route string, rt *Route, start time.Time, resp *integration.Response, err error) {
	if g.metrics == nil {
		return
	}
	d := time.Since(start)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	var se *integration.StatusError
	if errors.As(err, &se) {
		status, err = se.Status, nil
	}
	_, mock := rt.Integration.(*integration.Mock)
	g.metrics.Integration(route, d, status, err, !mock)
}

// pushCounter is the management API's view of the node that counts the
// messages posted and the connections they reached.
type pushCounter struct {
	*cluster.Node
	m *metrics.Metrics
}

var _ mgmt.Connections = pushCounter{}

func (p pushCounter) Send(ctx context.Context, id string, data []byte) error {
	err := p.Node.Send(ctx, id, data)
	p.m.Push(metrics.PushConnection, b2i(err == nil))
	return err
}

func (p pushCounter) SendMany(ctx context.Context, msgs []cluster.Message) []error {
	errs := p.Node.SendMany(ctx, msgs)
	for _, err := range errs {
		p.m.Push(metrics.PushConnection, b2i(err == nil))
	}
	return errs
}

func (p pushCounter) SendToUser(ctx context.Context, principal string, data []byte) (int, error) {
	n, err := p.Node.SendToUser(ctx, principal, data)
	p.m.Push(metrics.PushUser, n)
	return n, err
}

func (p pushCounter) Publish(ctx context.Context, topic string, data []byte) (int, error) {
	n, err := p.Node.Publish(ctx, topic, data)
	p.m.Push(metrics.PushTopic, n)
	return n, err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// timedEngine is a cluster engine whose calls are timed, and whose Nodes
// answers set the node count.
type timedEngine struct {
	cluster.Engine
	m *metrics.Metrics
}

var _ cluster.Engine = (*timedEngine)(nil)

func (e *timedEngine) done(op string, start time.Time, err error) {
	e.m.EngineCall(op, time.Since(start), err)
}

// Ready passes on the engine's own readiness check; an engine without one
// is ready once reachable.
func (e *timedEngine) Ready(ctx context.Context) error {
	r, ok := e.Engine.(interface{ Ready(context.Context) error })
	if !ok {
		return nil
	}
	start := time.Now()
	err := r.Ready(ctx)
	e.done("Ready", start, err)
	return err
}

func (e *timedEngine) Register(ctx context.Context, rec registry.Record) error {
	start := time.Now()
	err := e.Engine.Register(ctx, rec)
	e.done("Register", start, err)
	return err
}

func (e *timedEngine) Unregister(ctx context.Context, id string) error {
	start := time.Now()
	err := e.Engine.Unregister(ctx, id)
	e.done("Unregister", start, err)
	return err
}

func (e *timedEngine) Lookup(ctx context.Context, id string) (registry.Record, error) {
	start := time.Now()
	rec, err := e.Engine.Lookup(ctx, id)
	e.done("Lookup", start, ignoreNotFound(err))
	return rec, err
}

func (e *timedEngine) UserConnections(ctx context.Context, principal string) ([]registry.Record, error) {
	start := time.Now()
	recs, err := e.Engine.UserConnections(ctx, principal)
	e.done("UserConnections", start, err)
	return recs, err
}

func (e *timedEngine) Subscribe(ctx context.Context, id, topic string) error {
	start := time.Now()
	err := e.Engine.Subscribe(ctx, id, topic)
	e.done("Subscribe", start, err)
	return err
}

func (e *timedEngine) Unsubscribe(ctx context.Context, id, topic string) error {
	start := time.Now()
	err := e.Engine.Unsubscribe(ctx, id, topic)
	e.done("Unsubscribe", start, err)
	return err
}

func (e *timedEngine) TopicSubscribers(ctx context.Context, topic string) ([]registry.Record, error) {
	start := time.Now()
	recs, err := e.Engine.TopicSubscribers(ctx, topic)
	e.done("TopicSubscribers", start, err)
	return recs, err
}

func (e *timedEngine) ListConnections(ctx context.Context, q registry.ListQuery) ([]registry.Listed, string, error) {
	start := time.Now()
	page, next, err := e.Engine.ListConnections(ctx, q)
	e.done("ListConnections", start, err)
	return page, next, err
}

func (e *timedEngine) TopicCount(ctx context.Context, topic string) (int, error) {
	start := time.Now()
	n, err := e.Engine.TopicCount(ctx, topic)
	e.done("TopicCount", start, err)
	return n, err
}

func (e *timedEngine) NodeConnections(ctx context.Context, node string) ([]registry.Record, error) {
	start := time.Now()
	recs, err := e.Engine.NodeConnections(ctx, node)
	e.done("NodeConnections", start, err)
	return recs, err
}

func (e *timedEngine) ReserveUserSlot(ctx context.Context, principal, id string, limit int, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := e.Engine.ReserveUserSlot(ctx, principal, id, limit, ttl)
	e.done("ReserveUserSlot", start, err)
	return ok, err
}

func (e *timedEngine) ReleaseUserSlot(ctx context.Context, principal, id string) error {
	start := time.Now()
	err := e.Engine.ReleaseUserSlot(ctx, principal, id)
	e.done("ReleaseUserSlot", start, err)
	return err
}

func (e *timedEngine) Request(ctx context.Context, node string, req []byte) ([]byte, error) {
	start := time.Now()
	resp, err := e.Engine.Request(ctx, node, req)
	e.done("Request", start, err)
	return resp, err
}

func (e *timedEngine) Publish(ctx context.Context, topic string, msg []byte) error {
	start := time.Now()
	err := e.Engine.Publish(ctx, topic, msg)
	e.done("Publish", start, err)
	return err
}

func (e *timedEngine) SubscribeTopic(ctx context.Context, topic string) error {
	start := time.Now()
	err := e.Engine.SubscribeTopic(ctx, topic)
	e.done("SubscribeTopic", start, err)
	return err
}

func (e *timedEngine) UnsubscribeTopic(ctx context.Context, topic string) error {
	start := time.Now()
	err := e.Engine.UnsubscribeTopic(ctx, topic)
	e.done("UnsubscribeTopic", start, err)
	return err
}

func (e *timedEngine) Heartbeat(ctx context.Context, node string) (cluster.Beat, error) {
	start := time.Now()
	b, err := e.Engine.Heartbeat(ctx, node)
	e.done("Heartbeat", start, err)
	return b, err
}

func (e *timedEngine) Nodes(ctx context.Context) (map[string]uint64, error) {
	start := time.Now()
	nodes, err := e.Engine.Nodes(ctx)
	e.done("Nodes", start, err)
	if err == nil {
		e.m.Nodes(len(nodes))
	}
	return nodes, err
}

func (e *timedEngine) ClaimNode(ctx context.Context, node, claimer string, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := e.Engine.ClaimNode(ctx, node, claimer, ttl)
	e.done("ClaimNode", start, err)
	return ok, err
}

func (e *timedEngine) ForgetNode(ctx context.Context, node string) error {
	start := time.Now()
	err := e.Engine.ForgetNode(ctx, node)
	e.done("ForgetNode", start, err)
	return err
}

// ignoreNotFound is err, except that a connection not found is an answer,
// not a failed call.
func ignoreNotFound(err error) error {
	if errors.Is(err, registry.ErrNotFound) {
		return nil
	}
	return err
}
