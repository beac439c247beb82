package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/internal/destination"
	"github.com/wsgate/wsgate/internal/redact"
)

// NATS header names of the identity sent with every message (see
// identity): Wsgate-Connection-Id, Wsgate-Route-Key, Wsgate-Event-Type,
// Wsgate-Request-Id, Wsgate-Principal-Id, Wsgate-Authorizer.
var natsHeaders = map[string]string{
	"connectionId": "Wsgate-Connection-Id",
	"routeKey":     "Wsgate-Route-Key",
	"eventType":    "Wsgate-Event-Type",
	"requestId":    "Wsgate-Request-Id",
	"principalId":  "Wsgate-Principal-Id",
	"authorizer":   "Wsgate-Authorizer",
}

// natsReconnectWait is the pause between attempts to reach NATS.
const natsReconnectWait = 250 * time.Millisecond

// NATSOptions locate a NATS server.
type NATSOptions struct {
	// URL is one or more nats:// URLs separated by commas.
	URL string
	// Token or CredentialsFile authenticate, or neither.
	Token           string
	CredentialsFile string
}

// NATSConn is one connection to NATS that nats integrations share. It
// connects in the background and reconnects by itself for as long as it
// is open; while it is not connected, publishing fails at once rather than
// being buffered. Close it when the integrations using it are done.
type NATSConn struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	log   *slog.Logger
	flush *flushGroup
}

// DialNATS returns a connection to the server opts names. It does not wait
// for the server: an unreachable server is not an error, and the connection
// comes up when the server does. Errors are about the options only and
// never hold the token or the URL's credentials.
func DialNATS(opts NATSOptions, logger *slog.Logger) (*NATSConn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &NATSConn{log: logger}
	o := []nats.Option{
		nats.Name("wsgate integration"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(natsReconnectWait),
		// No buffering while disconnected: a message published then fails
		// at once, instead of waiting for a reconnection that may never
		// come and blocking the client behind it.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(nc *nats.Conn) {
			c.log.Info("nats integration connected", "server", redact.URL(nc.ConnectedUrl()))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info("nats integration reconnected", "server", redact.URL(nc.ConnectedUrl()))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				c.log.Warn("nats integration disconnected", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.log.Warn("nats integration error", "err", err)
		}),
	}
	switch {
	case opts.Token != "":
		o = append(o, nats.Token(opts.Token))
	case opts.CredentialsFile != "":
		o = append(o, nats.UserCredentials(opts.CredentialsFile))
	}
	for _, u := range strings.Split(opts.URL, ",") {
		if p, err := url.Parse(strings.TrimSpace(u)); err != nil || p.Host == "" {
			// url.Parse's messages quote the URL, which may hold
			// credentials.
			return nil, errors.New("nats: url is not a URL such as nats://127.0.0.1:4222 (several separated by commas)")
		}
	}
	nc, err := nats.Connect(opts.URL, o...)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, errors.New("nats: url is not a URL such as nats://127.0.0.1:4222")
		}
		return nil, fmt.Errorf("nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	c.nc, c.js = nc, js
	c.flush = newFlushGroup(nc)
	return c, nil
}

// Close closes the connection. Publishing through it fails afterwards.
func (c *NATSConn) Close() error {
	c.nc.Close()
	c.flush.close()
	return nil
}

// NATS publishes each event to a NATS subject: to core NATS, acknowledged
// once the server has received it (a flush round trip), or with JetStream
// to the stream that captures the subject, acknowledged by the stream's
// publish ack. The message carries the identity headers (natsHeaders) and
// Nats-Msg-Id, the event's requestId, which JetStream deduplicates on.
type NATS struct {
	Conn    *NATSConn
	Subject *destination.Template
	// JetStream publishes to a stream and waits for its ack.
	JetStream bool
	// DeclareStream, when set (with JetStream), is the stream created, to
	// capture every subject Subject expands to, when it does not exist.
	DeclareStream string
	Payload       Payload
	// Timeout bounds one publication; zero means no bound beyond ctx.
	Timeout time.Duration

	// declareMu serialises declaring; declared is true once the stream
	// exists.
	declareMu sync.Mutex
	declared  bool
}

var _ Integration = (*NATS)(nil)

// Invoke implements Integration.
func (n *NATS) Invoke(ctx context.Context, ev *Event) (*Response, error) {
	subject, err := expand(n.Subject, ev, natsToken)
	if err != nil {
		return nil, err
	}
	data, err := n.Payload.payload(ev)
	if err != nil {
		return nil, failf("%v", err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	for _, f := range identity(ev) {
		msg.Header.Set(natsHeaders[f.name], f.value)
	}
	msg.Header.Set(jetstream.MsgIDHeader, ev.RequestContext.RequestID)
	callCtx, cancel := bound(ctx, n.Timeout)
	defer cancel()
	ack := &accepted{RequestID: ev.RequestContext.RequestID, Subject: subject}
	if !n.JetStream {
		if err := n.Conn.nc.PublishMsg(msg); err != nil {
			return nil, failf("nats publish: %v", n.Conn.natsErr(err))
		}
		if err := n.Conn.flush.wait(callCtx); err != nil {
			return nil, publishFailed(callCtx, "nats publish", n.Timeout, err)
		}
		return ack.response(), nil
	}
	if err := n.declare(callCtx); err != nil {
		return nil, publishFailed(callCtx, "jetstream declare stream "+n.DeclareStream, n.Timeout, n.Conn.natsErr(err))
	}
	pa, err := n.Conn.js.PublishMsg(callCtx, msg)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) && n.DeclareStream != "" {
			// The server lost the stream (it restarted without its
			// store): declare it again next time.
			n.declareMu.Lock()
			n.declared = false
			n.declareMu.Unlock()
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return nil, failf("jetstream publish: no stream captures subject %q", subject)
		}
		return nil, publishFailed(callCtx, "jetstream publish", n.Timeout, n.Conn.natsErr(err))
	}
	ack.Stream, ack.Sequence, ack.Duplicate = pa.Stream, pa.Sequence, pa.Duplicate
	return ack.response(), nil
}

// declare creates DeclareStream when it is set and not yet known to exist.
// A stream of that name that exists already is left as it is.
func (n *NATS) declare(ctx context.Context) error {
	if n.DeclareStream == "" {
		return nil
	}
	n.declareMu.Lock()
	defer n.declareMu.Unlock()
	if n.declared {
		return nil
	}
	_, err := n.Conn.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     n.DeclareStream,
		Subjects: []string{SubjectFilter(n.Subject)},
		Storage:  jetstream.FileStorage,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return err
	}
	n.declared = true
	n.Conn.log.Info("jetstream stream declared", "stream", n.DeclareStream)
	return nil
}

// SubjectFilter returns the subject filter that matches every subject t
// expands to: each token holding a placeholder becomes "*".
func SubjectFilter(t *destination.Template) string {
	const mark = "\x00"
	toks := strings.Split(t.Mask(mark), ".")
	for i, tok := range toks {
		if strings.Contains(tok, mark) {
			toks[i] = "*"
		}
	}
	return strings.Join(toks, ".")
}

// natsErr names the error of a publication made while the connection is
// down for what it is. nats.go reports its disabled reconnect buffer or,
// before the first connection, headers the server has not said it
// supports.
func (c *NATSConn) natsErr(err error) error {
	if errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrHeadersNotSupported) && !c.nc.IsConnected() {
		return errNATSDown
	}
	return err
}

var errNATSDown = errors.New("not connected to NATS")

// natsToken is the rule for a placeholder's value in a NATS subject: one
// token, so no dot, wildcard or white space.
func natsToken(v string) error {
	if strings.ContainsAny(v, ".*> \t") {
		return errors.New(`the value holds ".", "*", ">" or white space, which a NATS subject token cannot`)
	}
	return nil
}

// maxFlushWait bounds a flush round trip whose publications have no
// deadline: AWS's longest integration timeout.
const maxFlushWait = 29 * time.Second

// flushGroup confirms core NATS publications in rounds: one PING/PONG round
// trip with the server confirms every publication waiting when the round
// starts, instead of one round trip (and one write to the socket) per
// publication. A round starts when the previous one has ended, so under
// load each round covers the publications made during the previous one's
// round trip, and with a single publication in flight a round is a plain
// flush. Its goroutine is started by newFlushGroup and stopped by close.
type flushGroup struct {
	nc   *nats.Conn
	kick chan struct{} // a round is waiting; buffered
	stop chan struct{}
	done chan struct{} // closed when run has returned

	// mu guards next and closed.
	mu     sync.Mutex
	next   *flushRound // the round that starts next; nil when none waits
	closed bool
}

// flushRound is one round trip and the publications it confirms.
type flushRound struct {
	deadline time.Time     // the latest deadline of its publications
	done     chan struct{} // closed when err is set
	err      error
}

func newFlushGroup(nc *nats.Conn) *flushGroup {
	g := &flushGroup{nc: nc, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

func (g *flushGroup) run() {
	defer close(g.done)
	for {
		select {
		case <-g.stop:
			return
		case <-g.kick:
		}
		for {
			g.mu.Lock()
			r := g.next
			g.next = nil
			g.mu.Unlock()
			if r == nil {
				break
			}
			ctx, cancel := context.WithDeadline(context.Background(), r.deadline)
			r.err = g.nc.FlushWithContext(ctx)
			cancel()
			close(r.done)
		}
	}
}

// wait returns nil once the server has received every message published
// on the connection before the call, or the error of the round trip that
// was to confirm them, or ctx's error when ctx ends first.
func (g *flushGroup) wait(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(maxFlushWait)
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nats.ErrConnectionClosed
	}
	r := g.next
	if r == nil {
		r = &flushRound{done: make(chan struct{})}
		g.next = r
	}
	if deadline.After(r.deadline) {
		r.deadline = deadline
	}
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the group's goroutine and fails the round that had not
// started. The connection is closed first, so that a round trip in
// progress ends at once.
func (g *flushGroup) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	r := g.next
	g.next = nil
	g.mu.Unlock()
	close(g.stop)
	<-g.done
	if r != nil {
		r.err = nats.ErrConnectionClosed
		close(r.done)
	}
}
