package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/wsgate/wsgate/internal/destination"
)

// AMQP header names of the identity sent with every message (see
// identity): the NATS header names in lower case, as AMQP applications
// write theirs.
var amqpHeaders = map[string]string{
	"connectionId": "wsgate-connection-id",
	"routeKey":     "wsgate-route-key",
	"eventType":    "wsgate-event-type",
	"requestId":    "wsgate-request-id",
	"principalId":  "wsgate-principal-id",
	"authorizer":   "wsgate-authorizer",
}

const (
	// amqpChannels is the size of a connection's pool of publishing
	// channels. Each channel is a process in RabbitMQ, so several let the
	// broker route and confirm in parallel; a connection may have 2047.
	amqpChannels = 8
	// amqpConfirmBuffer is how many confirmations a channel's dispatcher
	// may be behind before the connection's reader waits for it.
	amqpConfirmBuffer = 256
	// amqpRetryMin and amqpRetryMax bound the pause between attempts to
	// reach RabbitMQ; it doubles after each failure.
	amqpRetryMin = 250 * time.Millisecond
	amqpRetryMax = 5 * time.Second
	// amqpDialTimeout bounds connecting and the AMQP handshake.
	amqpDialTimeout = 5 * time.Second
	// amqpHeartbeat is the heartbeat interval asked of the broker.
	amqpHeartbeat = 10 * time.Second
	// amqpCloseTimeout bounds the closing handshake on Close.
	amqpCloseTimeout = 2 * time.Second
	// amqpMaxRoutingKey is the longest routing key: an AMQP short string.
	amqpMaxRoutingKey = 255
)

var (
	errAMQPDown    = errors.New("not connected to RabbitMQ")
	errAMQPClosed  = errors.New("the RabbitMQ connection is closed (the gateway is stopping)")
	errAMQPBlocked = errors.New("RabbitMQ is blocking publishers (a resource alarm)")
	errAMQPNack    = errors.New("RabbitMQ refused the message (basic.nack)")
)

// AMQPOptions locate a RabbitMQ server.
type AMQPOptions struct {
	// URL is amqp://[user:password@]host[:port]/[vhost], or amqps://
	// for TLS. Without credentials, the client logs in as guest.
	URL string
}

// AMQPConn is one AMQP connection that amqp integrations share, with a
// small pool of channels in confirm mode. It connects in the background and
// reconnects by itself, with backoff, for as long as it is open; while it
// is not connected, publishing fails at once. Close it when the
// integrations using it are done.
type AMQPConn struct {
	url    string
	server string // host:port/vhost, for logs; never the credentials
	log    *slog.Logger
	cancel context.CancelFunc
	// done is closed when run has returned.
	done chan struct{}

	// epoch changes with every new connection and whenever the broker
	// closed a channel because something was not found: exchanges known
	// to exist are checked again.
	epoch   atomic.Uint64
	blocked atomic.Bool
	next    atomic.Uint32

	// mu guards the fields below.
	mu     sync.Mutex
	conn   *amqp.Connection
	closed bool
	// dispatchers counts the channels' dispatcher goroutines and the
	// broker calls that run apart from their callers (see goWorker).
	dispatchers sync.WaitGroup

	slots [amqpChannels]amqpSlot
}

// amqpSlot holds one channel of the pool, opened when first needed and
// again after it closed.
type amqpSlot struct {
	// sem, held by one goroutine at a time, serialises opening the slot's
	// channel and guards ch. It is a channel rather than a mutex so that a
	// caller waiting for a channel that does not open can give up when its
	// context ends.
	sem chan struct{}
	ch  *amqpChannel
}

// DialAMQP returns a connection to the server opts names. It does not wait
// for the server: an unreachable server is not an error, and the connection
// comes up when the server does. Errors are about the options only and
// never hold the URL, which may hold a password.
func DialAMQP(opts AMQPOptions, logger *slog.Logger) (*AMQPConn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	uri, err := amqp.ParseURI(opts.URL)
	if err != nil {
		return nil, errors.New("amqp: url is not an amqp:// or amqps:// URL such as amqp://127.0.0.1:5672/")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &AMQPConn{
		url:    opts.URL,
		server: net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)) + "/" + strings.TrimPrefix(uri.Vhost, "/"),
		log:    logger,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	for i := range c.slots {
		c.slots[i].sem = make(chan struct{}, 1)
	}
	go c.run(ctx)
	return c, nil
}

// run keeps the connection up until ctx ends.
func (c *AMQPConn) run(ctx context.Context) {
	defer close(c.done)
	wait := amqpRetryMin
	failing := false
	// pause waits before the next attempt, longer each time; false when
	// ctx ended.
	pause := func() bool {
		t := time.NewTimer(wait)
		defer t.Stop()
		wait = min(2*wait, amqpRetryMax)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for {
		conn, err := c.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				c.log.Warn("amqp integration cannot connect", "server", c.server, "err", err)
				failing = true
			} else {
				c.log.Debug("amqp integration cannot connect", "server", c.server, "err", err)
			}
			if !pause() {
				return
			}
			continue
		}
		failing = false
		connectedAt := time.Now()
		closes := conn.NotifyClose(make(chan *amqp.Error, 1))
		blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			_ = conn.CloseDeadline(time.Now().Add(amqpCloseTimeout))
			return
		}
		c.conn = conn
		c.epoch.Add(1)
		c.blocked.Store(false)
		c.mu.Unlock()
		c.log.Info("amqp integration connected", "server", c.server)
	connected:
		for {
			select {
			case b, ok := <-blocks:
				if ok {
					c.blocked.Store(b.Active)
					if b.Active {
						c.log.Warn("amqp integration blocked by RabbitMQ", "server", c.server, "reason", b.Reason)
					}
				} else {
					blocks = nil
				}
			case err := <-closes:
				c.mu.Lock()
				if c.conn == conn {
					c.conn = nil
				}
				c.mu.Unlock()
				if err != nil {
					c.log.Warn("amqp integration disconnected", "server", c.server, "err", err)
				}
				// A connection that closes soon after opening is
				// not retried at once, lest it loop.
				if time.Since(connectedAt) > amqpRetryMax {
					wait = amqpRetryMin
				} else if !pause() {
					return
				}
				break connected
			case <-ctx.Done():
				return
			}
		}
	}
}

// dial connects once; ctx ends connecting but not the handshake, which
// amqpDialTimeout bounds.
func (c *AMQPConn) dial(ctx context.Context) (*amqp.Connection, error) {
	d := net.Dialer{Timeout: amqpDialTimeout}
	return amqp.DialConfig(c.url, amqp.Config{
		Heartbeat:  amqpHeartbeat,
		Properties: amqp.Table{"connection_name": "wsgate", "product": "wsgate"},
		Dial: func(network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// A deadline for the TLS and AMQP handshakes; the library
			// clears it once connected.
			if err := conn.SetDeadline(time.Now().Add(amqpDialTimeout)); err != nil {
				conn.Close()
				return nil, err
			}
			return conn, nil
		},
	})
}

// Close closes the connection and waits for its goroutines. Publications
// still waiting for a confirmation fail; the gateway closes it after its
// integrations have answered. Publishing fails afterwards.
func (c *AMQPConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	c.cancel()
	<-c.done
	if conn != nil {
		_ = conn.CloseDeadline(time.Now().Add(amqpCloseTimeout))
	}
	c.dispatchers.Wait()
	return nil
}

// current returns the connection and its epoch, or why there is none.
func (c *AMQPConn) current() (*amqp.Connection, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, 0, errAMQPClosed
	case c.conn == nil:
		return nil, 0, errAMQPDown
	case c.blocked.Load():
		return nil, 0, errAMQPBlocked
	}
	return c.conn, c.epoch.Load(), nil
}

// goWorker runs f in a goroutine that Close waits for, and reports false,
// not running it, once the connection is closed. The library's calls that
// wait for the broker's reply (channel.open, confirm.select,
// exchange.declare) take no context: a broker that stops answering holds
// them until the heartbeat timeout ends the connection, or for ever when it
// still answers heartbeats. They run in a worker, and the caller waits for
// it or for its context; the worker ends when the broker answers or the
// connection closes.
func (c *AMQPConn) goWorker(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.dispatchers.Add(1)
	go func() {
		defer c.dispatchers.Done()
		f()
	}()
	return true
}

// channel returns an open channel of the pool, in turn, opening it when
// needed; it gives up when ctx ends first.
func (c *AMQPConn) channel(ctx context.Context) (*amqpChannel, error) {
	conn, _, err := c.current()
	if err != nil {
		return nil, err
	}
	slot := &c.slots[c.next.Add(1)%amqpChannels]
	select {
	case slot.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if ch := slot.ch; ch != nil && ch.conn == conn && !ch.dead.Load() {
		<-slot.sem
		return ch, nil
	}
	type opened struct {
		ch  *amqpChannel
		err error
	}
	res := make(chan opened, 1)
	// The worker holds the slot until the channel is open, so that the
	// callers behind it use that channel rather than open more.
	if !c.goWorker(func() {
		ch, err := c.openChannel(conn)
		if err == nil {
			slot.ch = ch
		}
		<-slot.sem
		res <- opened{ch, err}
	}) {
		<-slot.sem
		return nil, errAMQPClosed
	}
	select {
	case r := <-res:
		return r.ch, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// openChannel opens a channel on conn in confirm mode and starts its
// dispatcher.
func (c *AMQPConn) openChannel(conn *amqp.Connection) (*amqpChannel, error) {
	raw, err := conn.Channel()
	if err != nil {
		return nil, c.connErr(err)
	}
	ch := &amqpChannel{
		conn:    conn,
		ch:      raw,
		pubSem:  make(chan struct{}, 1),
		pending: map[uint64]*amqpPending{},
		byID:    map[string]uint64{},
	}
	// Returns are handed over unbuffered: the connection's reader passes
	// a message's basic.return to the dispatcher before it reads the
	// basic.ack that follows it, so the dispatcher always knows a message
	// was returned by the time it sees the message confirmed.
	returns := raw.NotifyReturn(make(chan amqp.Return))
	confirms := raw.NotifyPublish(make(chan amqp.Confirmation, amqpConfirmBuffer))
	closes := raw.NotifyClose(make(chan *amqp.Error, 1))
	if err := raw.Confirm(false); err != nil {
		_ = raw.Close()
		return nil, c.connErr(err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = raw.Close()
		return nil, errAMQPClosed
	}
	c.dispatchers.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.dispatchers.Done()
		ch.dispatch(returns, confirms, closes, c)
	}()
	return ch, nil
}

// connErr names an error of a connection that closed under a call.
func (c *AMQPConn) connErr(err error) error {
	if errors.Is(err, amqp.ErrClosed) {
		return errAMQPDown
	}
	return err
}

// amqpChannel is a channel in confirm mode. Publishers register each
// message under its delivery tag before sending it; the dispatcher
// goroutine resolves it when the broker confirms or returns it, or the
// channel closes.
type amqpChannel struct {
	conn *amqp.Connection
	ch   *amqp.Channel
	// pubSem serialises publishing, so that the delivery tag read before
	// a publication is the one the broker confirms.
	pubSem chan struct{}
	// dead is set, under pendMu, once the channel has closed and the
	// dispatcher has failed what was pending.
	dead atomic.Bool

	// pendMu guards pending and byID, and is never held across I/O: the
	// dispatcher must never wait on a publisher's write.
	pendMu  sync.Mutex
	pending map[uint64]*amqpPending // by delivery tag
	byID    map[string]uint64       // delivery tags by message id
}

// amqpPending is a publication waiting for its confirmation.
type amqpPending struct {
	id       string
	returned *amqp.Return
	// done receives the outcome once; buffered so that the dispatcher
	// never waits for a publisher that gave up.
	done chan error
}

// dispatch resolves the channel's publications until the channel closes,
// then fails those still pending with the reason.
func (ch *amqpChannel) dispatch(returns <-chan amqp.Return, confirms <-chan amqp.Confirmation, closes <-chan *amqp.Error, c *AMQPConn) {
	for confirms != nil {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			ch.pendMu.Lock()
			if tag, ok := ch.byID[r.MessageId]; ok && r.MessageId != "" {
				ch.pending[tag].returned = &r
			}
			ch.pendMu.Unlock()
		case cf, ok := <-confirms:
			if !ok {
				confirms = nil
				continue
			}
			ch.pendMu.Lock()
			p := ch.pending[cf.DeliveryTag]
			if p != nil {
				delete(ch.pending, cf.DeliveryTag)
				delete(ch.byID, p.id)
			}
			ch.pendMu.Unlock()
			switch {
			case p == nil:
			case !cf.Ack:
				p.done <- errAMQPNack
			case p.returned != nil:
				p.done <- fmt.Errorf("RabbitMQ returned the message as unroutable: %d %s (no queue is bound to exchange %q for routing key %q)",
					p.returned.ReplyCode, p.returned.ReplyText, p.returned.Exchange, p.returned.RoutingKey)
			default:
				p.done <- nil
			}
		}
	}
	var reason error = errAMQPDown
	select {
	case e, ok := <-closes:
		if ok && e != nil {
			reason = fmt.Errorf("the channel closed: %w", e)
			if e.Code == amqp.NotFound {
				c.epoch.Add(1)
			}
		}
	default:
	}
	ch.pendMu.Lock()
	ch.dead.Store(true)
	for tag, p := range ch.pending {
		p.done <- reason
		delete(ch.pending, tag)
	}
	clear(ch.byID)
	ch.pendMu.Unlock()
}

// publish sends msg and waits until the broker has confirmed it: a nil
// error means an ack for a message that was not returned. The message is
// written by a worker of c (see goWorker): a broker that stops reading the
// connection, as RabbitMQ's flow control does, blocks the write, which
// takes no deadline, and the caller gives up when ctx ends.
func (ch *amqpChannel) publish(ctx context.Context, c *AMQPConn, exchange, key string, msg amqp.Publishing) error {
	select {
	case ch.pubSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	tag := ch.ch.GetNextPublishSeqNo()
	p := &amqpPending{id: msg.MessageId, done: make(chan error, 1)}
	ch.pendMu.Lock()
	if ch.dead.Load() {
		// The dispatcher has failed what was pending and is gone.
		ch.pendMu.Unlock()
		<-ch.pubSem
		return errAMQPDown
	}
	ch.pending[tag] = p
	if msg.MessageId != "" {
		ch.byID[msg.MessageId] = tag
	}
	ch.pendMu.Unlock()
	written := make(chan error, 1)
	if !c.goWorker(func() {
		// The worker, not the caller, holds pubSem until the message
		// is written, so that the next tag read is the next one sent.
		err := ch.ch.PublishWithContext(ctx, exchange, key, true, false, msg)
		<-ch.pubSem
		written <- err
	}) {
		ch.forget(tag, p)
		<-ch.pubSem
		return errAMQPClosed
	}
	var err error
	select {
	case err = <-written:
	case <-ctx.Done():
		ch.forget(tag, p)
		return ctx.Err()
	}
	if err != nil {
		ch.forget(tag, p)
		if errors.Is(err, amqp.ErrClosed) {
			return errAMQPDown
		}
		return err
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		ch.forget(tag, p)
		return ctx.Err()
	}
}

// forget drops the publication p registered under tag, if it still is.
func (ch *amqpChannel) forget(tag uint64, p *amqpPending) {
	ch.pendMu.Lock()
	defer ch.pendMu.Unlock()
	if ch.pending[tag] == p {
		delete(ch.pending, tag)
		if ch.byID[p.id] == tag {
			delete(ch.byID, p.id)
		}
	}
}

// publish sends msg on a channel of the pool and waits for its
// confirmation.
func (c *AMQPConn) publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error {
	ch, err := c.channel(ctx)
	if err != nil {
		return err
	}
	return ch.publish(ctx, c, exchange, key, msg)
}

// amqpExchangeCheck is where an integration keeps track of checking its
// exchange.
type amqpExchangeCheck struct {
	// checked is the connection epoch at which the exchange was last
	// declared or found.
	checked atomic.Uint64
	// mu guards running.
	mu sync.Mutex
	// running is the check in progress, which the publications waiting
	// for one share, so that they do not each open a channel; nil when
	// none runs.
	running *amqpCheckRun
}

// amqpCheckRun is one check of an exchange; err is set when done closes.
type amqpCheckRun struct {
	done chan struct{}
	err  error
}

// ensureExchange declares exchange as a durable exchange of kind when
// declare is set, or checks that it exists, once per connection epoch,
// sharing the check in progress through chk. It gives up when ctx ends
// first, the check going on in a worker (see goWorker). The default
// exchange always exists.
func (c *AMQPConn) ensureExchange(ctx context.Context, exchange, kind string, declare bool, chk *amqpExchangeCheck) error {
	if exchange == "" {
		return nil
	}
	conn, epoch, err := c.current()
	if err != nil {
		return err
	}
	if chk.checked.Load() == epoch {
		return nil
	}
	chk.mu.Lock()
	run := chk.running
	if run == nil {
		run = &amqpCheckRun{done: make(chan struct{})}
		if !c.goWorker(func() {
			run.err = c.checkExchange(conn, epoch, exchange, kind, declare, &chk.checked)
			chk.mu.Lock()
			chk.running = nil
			chk.mu.Unlock()
			close(run.done)
		}) {
			chk.mu.Unlock()
			return errAMQPClosed
		}
		chk.running = run
	}
	chk.mu.Unlock()
	select {
	case <-run.done:
		return run.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkExchange declares or checks exchange on conn, and stores epoch in
// checked when it succeeds.
func (c *AMQPConn) checkExchange(conn *amqp.Connection, epoch uint64, exchange, kind string, declare bool, checked *atomic.Uint64) error {
	// A channel of its own: a failed declaration closes the channel.
	raw, err := conn.Channel()
	if err != nil {
		return c.connErr(err)
	}
	if declare {
		err = raw.ExchangeDeclare(exchange, kind, true, false, false, false, nil)
	} else {
		err = raw.ExchangeDeclarePassive(exchange, "", false, false, false, false, nil)
	}
	var ae *amqp.Error
	switch {
	case err == nil:
		_ = raw.Close()
		checked.Store(epoch)
		if declare {
			c.log.Info("amqp exchange declared", "exchange", exchange, "type", kind)
		}
		return nil
	case errors.As(err, &ae) && ae.Code == amqp.NotFound:
		return fmt.Errorf("exchange %q does not exist (declare: true creates it)", exchange)
	case errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed:
		return fmt.Errorf("exchange %q exists with another type or other properties than a durable %s exchange: %s", exchange, kind, ae.Reason)
	}
	return c.connErr(err)
}

// AMQP publishes each event to a RabbitMQ exchange with a routing key,
// persistent and mandatory, and answers once the broker has confirmed it
// (publisher confirms). A message the broker returns as unroutable, nacks,
// or does not confirm before the timeout or a lost connection is a
// failure, never acknowledged.
//
// The message carries the identity headers (amqpHeaders) and the
// properties message-id (the event's requestId), timestamp, app-id
// "wsgate", delivery-mode 2 and, with PayloadEvent, content-type
// application/json.
type AMQP struct {
	Conn *AMQPConn
	// Exchange is the exchange; "" is the default exchange, which routes
	// to the queue the routing key names.
	Exchange   string
	RoutingKey *destination.Template
	// Declare declares Exchange, durable, of ExchangeType; otherwise the
	// exchange must exist, and is checked before the first publication on
	// each connection.
	Declare      bool
	ExchangeType string
	Payload      Payload
	// Timeout bounds one publication; zero means no bound beyond ctx.
	Timeout time.Duration

	// check tracks checking Exchange.
	check amqpExchangeCheck
}

var _ Integration = (*AMQP)(nil)

// amqpAccepted is the acknowledgement of an amqp integration:
//
//	{"status":"accepted","requestId":"…","exchange":"…","routingKey":"…"}
//
// exchange is "" for the default exchange.
type amqpAccepted struct {
	Status     string `json:"status"`
	RequestID  string `json:"requestId"`
	Exchange   string `json:"exchange"`
	RoutingKey string `json:"routingKey"`
}

// Invoke implements Integration.
func (a *AMQP) Invoke(ctx context.Context, ev *Event) (*Response, error) {
	key, err := expand(a.RoutingKey, ev, amqpWord)
	if err != nil {
		return nil, err
	}
	if len(key) > amqpMaxRoutingKey {
		return nil, failf("amqp publish: the routing key is longer than %d bytes", amqpMaxRoutingKey)
	}
	data, err := a.Payload.payload(ev)
	if err != nil {
		return nil, failf("%v", err)
	}
	rc := &ev.RequestContext
	msg := amqp.Publishing{
		Headers:      amqp.Table{},
		DeliveryMode: amqp.Persistent,
		MessageId:    rc.RequestID,
		Timestamp:    time.Now().UTC(),
		AppId:        "wsgate",
		Body:         data,
	}
	if a.Payload == PayloadEvent {
		msg.ContentType = "application/json"
	}
	for _, f := range identity(ev) {
		msg.Headers[amqpHeaders[f.name]] = f.value
	}
	callCtx, cancel := bound(ctx, a.Timeout)
	defer cancel()
	if err := a.Conn.ensureExchange(callCtx, a.Exchange, a.ExchangeType, a.Declare, &a.check); err != nil {
		return nil, publishFailed(callCtx, "amqp publish", a.Timeout, err)
	}
	if err := a.Conn.publish(callCtx, a.Exchange, key, msg); err != nil {
		return nil, publishFailed(callCtx, "amqp publish", a.Timeout, err)
	}
	b, _ := json.Marshal(amqpAccepted{Status: "accepted", RequestID: rc.RequestID, Exchange: a.Exchange, RoutingKey: key})
	return &Response{StatusCode: 200, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}, nil
}

// amqpWord is the rule for a placeholder's value in a routing key: no ".",
// which would add words to a topic exchange's routing key and so reach
// bindings the template does not name.
func amqpWord(v string) error {
	if strings.Contains(v, ".") {
		return errors.New(`the value holds ".", which would add words to the routing key`)
	}
	return nil
}
