package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsAckWait is how long JetStream waits for a message's acknowledgement
// before it delivers it again: longer than a -delay and a post.
const natsAckWait = time.Minute

// natsPullExpiry is how long a pull request for the next message waits on
// the server before it is renewed (see consume).
const natsPullExpiry = 2 * time.Second

// natsSource consumes a JetStream stream through a durable pull consumer
// named -group, which the workers sharing it split the messages of. It
// creates the consumer (or updates it to these settings), waiting for the
// stream while the gateway has not declared it yet.
type natsSource struct {
	o   options
	log *slog.Logger
}

func (s *natsSource) run(ctx context.Context, handle func(context.Context, delivery) outcome) error {
	nc, err := nats.Connect(s.o.url,
		nats.Name("wsgate async-worker"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ConnectHandler(func(nc *nats.Conn) { s.log.Info("connected", "server", nc.ConnectedUrlRedacted()) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { s.log.Info("reconnected", "server", nc.ConnectedUrlRedacted()) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn("disconnected", "err", err)
			}
		}),
	)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: jetstream: %w", err)
	}

	for {
		err := s.consume(ctx, js, handle)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode != jetstream.JSErrCodeStreamNotFound {
			// A refusal such as a consumer configuration the server
			// rejects, or no permission.
			return fmt.Errorf("nats: consumer %s on stream %s: %w", s.o.group, s.o.stream, err)
		}
		// The consumer or its stream was deleted: create it again.
		s.log.Warn("consuming stopped; starting again", "stream", s.o.stream, "err", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
}

// consume creates the durable consumer, waiting for the stream, and
// handles its messages until ctx ends (nil) or the consumer goes away.
func (s *natsSource) consume(ctx context.Context, js jetstream.JetStream, handle func(context.Context, delivery) outcome) error {
	cfg := jetstream.ConsumerConfig{
		Durable:       s.o.group,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       natsAckWait,
		FilterSubject: s.o.subject,
	}
	var cons jetstream.Consumer
	waiting := false
	for {
		var err error
		cons, err = js.CreateOrUpdateConsumer(ctx, s.o.stream, cfg)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode != jetstream.JSErrCodeStreamNotFound {
			return err
		}
		if !waiting {
			s.log.Info("waiting for the stream (wsgate declares it on the route's first message)", "stream", s.o.stream, "err", err)
			waiting = true
		}
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	s.log.Info("consuming", "stream", s.o.stream, "consumer", s.o.group)

	// One message at a time, so that a worker holds none it has not
	// started. Pull requests expire after natsPullExpiry and are renewed:
	// nats.go may miss renewing one (a message that arrives while the
	// request for it is still being sent leaves none outstanding), and the
	// iterator notices only when the heartbeats of a request stop, after
	// twice the heartbeat, half of the expiry; the default expiry of 30s
	// would hold the next message that long.
	it, err := cons.Messages(jetstream.PullMaxMessages(1), jetstream.PullExpiry(natsPullExpiry))
	if err != nil {
		return err
	}
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			if msg != nil {
				_ = msg.Nak()
			}
			break
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			it.Stop()
			return err
		}
		if err != nil {
			// No heartbeat while NATS is down: the iterator goes on once
			// the connection is back.
			s.log.Warn("waiting for messages", "err", err)
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		s.dispatch(ctx, msg, handle)
	}
	// The message the iterator may have fetched ahead goes back at once.
	it.Drain()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			break
		}
		_ = msg.Nak()
	}
	return nil
}

func (s *natsSource) dispatch(ctx context.Context, msg jetstream.Msg, handle func(context.Context, delivery) outcome) {
	var d delivery
	var err error
	if s.o.payload == "event" {
		d, err = fromEvent(msg.Data())
	} else {
		d, err = fromBody(msg.Data(), msg.Headers().Get, natsConnectionIDHeader, natsEventTypeHeader, natsRequestIDHeader)
	}
	if err != nil {
		// Delivering it again would not make it readable.
		s.log.Warn("message dropped", "subject", msg.Subject(), "err", err)
		if err := msg.Term(); err != nil {
			s.log.Warn("terminating the message failed", "err", err)
		}
		return
	}
	var ackErr error
	switch handle(ctx, d) {
	case ack:
		// Wait for the server to confirm, so that an acknowledgement lost
		// on the way is reported rather than silently redelivered.
		ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		ackErr = msg.DoubleAck(ackCtx)
		cancel()
	case retry:
		ackErr = msg.NakWithDelay(s.o.retry)
	case release:
		ackErr = msg.Nak()
	}
	if ackErr != nil {
		s.log.Warn("acknowledging the message failed; it will be delivered again", "connectionId", d.connectionID, "err", ackErr)
	}
}

// sleep waits for d or until ctx ends, and reports whether ctx is still
// live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
