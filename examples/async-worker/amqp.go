package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The headers wsgate's amqp integration sends beside a message; the
// connection id is the one a payload: body message needs. They are looked
// up in any case (see amqpHeader).
const (
	amqpConnectionIDHeader = "wsgate-connection-id"
	amqpEventTypeHeader    = "wsgate-event-type"
	amqpRequestIDHeader    = "wsgate-request-id"
)

// amqpSource consumes a RabbitMQ queue with manual acknowledgements, one
// unacknowledged message at a time (prefetch 1). With -declare it declares
// the queue, durable, and with -exchange declares that exchange, durable,
// and binds the queue to it. It reconnects by itself
// when the connection drops; the messages it held are then delivered again
// by RabbitMQ.
type amqpSource struct {
	o   options
	log *slog.Logger

	// down is true from a failure until the worker consumes again, so that
	// an outage is logged once.
	down bool
}

func (s *amqpSource) run(ctx context.Context, handle func(context.Context, delivery) outcome) error {
	if _, err := amqp.ParseURI(s.o.url); err != nil {
		// Its messages may quote the URL, password included.
		return errors.New("amqp: -url is not an AMQP URL such as amqp://guest:guest@127.0.0.1:5672/")
	}
	for ctx.Err() == nil {
		err := s.consume(ctx, handle)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if err == amqp.ErrCredentials || err == amqp.ErrVhost || err == amqp.ErrSASL {
			return fmt.Errorf("amqp: %w", err)
		}
		// Anything else may pass: the broker restarting, a queue that
		// is declared later.
		if !s.down {
			s.log.Warn("amqp failed; trying again every second", "err", err)
			s.down = true
		}
		sleep(ctx, time.Second)
	}
	return nil
}

// consume connects, sets the queue up and handles deliveries until ctx ends
// (nil) or the connection or channel fails (the error).
func (s *amqpSource) consume(ctx context.Context, handle func(context.Context, delivery) outcome) error {
	conn, err := amqp.DialConfig(s.o.url, amqp.Config{
		Properties: amqp.Table{"connection_name": "wsgate async-worker " + s.o.name},
		Heartbeat:  10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Qos(1, 0, false); err != nil {
		return err
	}
	if s.o.declare {
		if _, err := ch.QueueDeclare(s.o.queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declaring queue %s: %w", s.o.queue, err)
		}
		if s.o.exchange != "" {
			// As wsgate's declare: true does, so that whichever of the
			// two starts first, the other finds the exchange it expects.
			// amq.* names are the broker's own, always there.
			if !strings.HasPrefix(s.o.exchange, "amq.") {
				if err := ch.ExchangeDeclare(s.o.exchange, s.o.exchangeType, true, false, false, false, nil); err != nil {
					return fmt.Errorf("declaring exchange %s (%s, durable): %w", s.o.exchange, s.o.exchangeType, err)
				}
			}
			key := s.o.routingKey
			if key == "" {
				key = s.o.queue
			}
			if err := ch.QueueBind(s.o.queue, key, s.o.exchange, false, nil); err != nil {
				return fmt.Errorf("binding queue %s to exchange %s: %w", s.o.queue, s.o.exchange, err)
			}
		}
	}
	tag := "async-worker-" + s.o.name
	deliveries, err := ch.Consume(s.o.queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consuming queue %s: %w", s.o.queue, err)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	s.log.Info("consuming", "queue", s.o.queue)
	s.down = false
	for {
		select {
		case <-ctx.Done():
			// Stop the flow, then give back what arrived meanwhile; Close
			// would requeue it as well.
			if ch.Cancel(tag, false) == nil {
				for d := range deliveries {
					_ = d.Nack(false, true)
				}
			}
			return nil
		case err := <-closed:
			if err == nil {
				return errors.New("the channel was closed")
			}
			return err
		case d, ok := <-deliveries:
			if !ok {
				return errors.New("the broker stopped the consumer")
			}
			s.dispatch(ctx, d, handle)
		}
	}
}

func (s *amqpSource) dispatch(ctx context.Context, m amqp.Delivery, handle func(context.Context, delivery) outcome) {
	var d delivery
	var err error
	if s.o.payload == "event" {
		d, err = fromEvent(m.Body)
	} else {
		lookup := func(name string) string { return amqpHeader(m.Headers, name) }
		d, err = fromBody(m.Body, lookup, amqpConnectionIDHeader, amqpEventTypeHeader, amqpRequestIDHeader)
	}
	if err != nil {
		// Rejected without requeueing: dead-lettered if the queue has a
		// dead-letter exchange, dropped otherwise.
		s.log.Warn("message rejected", "err", err)
		if err := m.Reject(false); err != nil {
			s.log.Warn("rejecting the message failed", "err", err)
		}
		return
	}
	var ackErr error
	switch handle(ctx, d) {
	case ack:
		ackErr = m.Ack(false)
	case retry:
		// The message goes back to the head of the queue; waiting first
		// keeps a gateway that is down from being called in a tight loop.
		sleep(ctx, s.o.retry)
		ackErr = m.Nack(false, true)
	case release:
		ackErr = m.Nack(false, true)
	}
	if ackErr != nil {
		s.log.Warn("acknowledging the message failed; it will be delivered again", "connectionId", d.connectionID, "err", ackErr)
	}
}
