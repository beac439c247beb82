package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// silentBroker is an AMQP 0-9-1 server that completes the connection
// handshake and then answers nothing, as a broker does behind a network
// partition or while it is stuck: the connection stays open, no method gets
// a reply. Closing it closes its connections.
type silentBroker struct {
	// stall, when set, makes the broker open channels in confirm mode
	// and then stop reading, as RabbitMQ's flow control stops reading a
	// publisher's socket while it still sends heartbeats.
	stall bool
	stop  chan struct{} // closed by close
	once  sync.Once
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startSilentBroker(t *testing.T) *silentBroker { return startBroker(t, false) }

func startBroker(t *testing.T, stall bool) *silentBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &silentBroker{ln: ln, stall: stall, stop: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.serve(c)
			}()
		}
	}()
	return b
}

func (b *silentBroker) url() string { return "amqp://" + b.ln.Addr().String() + "/" }

func (b *silentBroker) close() {
	b.once.Do(func() { close(b.stop) })
	_ = b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func amqpMethodFrame(class, method uint16, args []byte) []byte {
	return amqpChannelFrame(0, class, method, args)
}

func amqpChannelFrame(channel, class, method uint16, args []byte) []byte {
	payload := binary.BigEndian.AppendUint16(nil, class)
	payload = binary.BigEndian.AppendUint16(payload, method)
	payload = append(payload, args...)
	f := binary.BigEndian.AppendUint16([]byte{1}, channel)
	f = binary.BigEndian.AppendUint32(f, uint32(len(payload)))
	f = append(f, payload...)
	return append(f, 0xCE)
}

// readAMQPFrame reads one frame and returns its class and method ids.
func readAMQPFrame(r io.Reader) (class, method uint16, err error) {
	class, method, _, _, err = readAMQPChannelFrame(r)
	return
}

func readAMQPChannelFrame(r io.Reader) (class, method, channel uint16, typ byte, err error) {
	var h [7]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	p := make([]byte, binary.BigEndian.Uint32(h[3:])+1)
	if _, err = io.ReadFull(r, p); err != nil {
		return
	}
	channel, typ = binary.BigEndian.Uint16(h[1:]), h[0]
	if h[0] == 1 && len(p) >= 5 {
		class, method = binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:])
	}
	return
}

func (b *silentBroker) serve(c net.Conn) {
	var header [8]byte
	if _, err := io.ReadFull(c, header[:]); err != nil || !bytes.HasPrefix(header[:], []byte("AMQP")) {
		return
	}
	longstr := func(s string) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...) }
	start := []byte{0, 9}
	start = append(start, 0, 0, 0, 0) // server properties: an empty table
	start = append(start, longstr("PLAIN")...)
	start = append(start, longstr("en_US")...)
	if _, err := c.Write(amqpMethodFrame(10, 10, start)); err != nil {
		return
	}
	if _, _, err := readAMQPFrame(c); err != nil { // start-ok
		return
	}
	tune := binary.BigEndian.AppendUint16(nil, 2047)
	tune = binary.BigEndian.AppendUint32(tune, 131072)
	tune = binary.BigEndian.AppendUint16(tune, 10)
	if _, err := c.Write(amqpMethodFrame(10, 30, tune)); err != nil {
		return
	}
	bodies := 0
	for {
		class, method, channel, typ, err := readAMQPChannelFrame(c)
		if err != nil {
			return
		}
		var reply []byte
		switch {
		case class == 10 && method == 40: // connection.open
			reply = amqpMethodFrame(10, 41, []byte{0})
		case b.stall && class == 20 && method == 10: // channel.open
			reply = amqpChannelFrame(channel, 20, 11, []byte{0, 0, 0, 0})
		case b.stall && class == 85 && method == 10: // confirm.select
			reply = amqpChannelFrame(channel, 85, 11, nil)
		}
		// Anything else (channel.open, exchange.declare…) goes
		// unanswered.
		if reply != nil {
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
		if b.stall && typ == 3 {
			bodies++
		}
		if bodies == 16 {
			// Stop reading: the broker's buffers fill, then ours.
			<-b.stop
			return
		}
	}
}

// An amqp integration's call is bounded by its timeout and by the caller's
// context even when the broker, once connected, stops answering: opening a
// channel (default exchange) or checking the exchange must not outlive them.
func TestAMQPSilentBrokerHonoursTimeout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		exchange string
		declare  bool
	}{
		{"default exchange", "", false},
		{"declared exchange", "events", true},
		{"existing exchange", "events", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startSilentBroker(t)
			defer b.close()
			c, err := DialAMQP(AMQPOptions{URL: b.url()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			waitConnected(t, c)
			a := &AMQP{Conn: c, Exchange: tc.exchange, Declare: tc.declare, ExchangeType: "topic",
				RoutingKey: mustTemplate(t, "q"), Timeout: 200 * time.Millisecond}
			done := make(chan error, 1)
			go func() {
				_, err := a.Invoke(context.Background(), messageEvent("c", "x", ""))
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrFailed) {
					t.Errorf("Invoke = %v, want an integration failure", err)
				}
			case <-time.After(3 * time.Second):
				t.Errorf("Invoke with a 200ms timeout still running after 3s against a broker that does not answer")
				// Let the call end before the leak check: close the
				// broker's side.
				b.close()
				<-done
			}
		})
	}
}

// A publication is bounded by its timeout when the broker has stopped
// reading the connection, as RabbitMQ's flow control does: writing the
// message must not outlive the call.
func TestAMQPStalledBrokerHonoursTimeout(t *testing.T) {
	b := startBroker(t, true)
	defer b.close()
	c, err := DialAMQP(AMQPOptions{URL: b.url()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitConnected(t, c)
	a := &AMQP{Conn: c, RoutingKey: mustTemplate(t, "q"), Payload: PayloadBody, Timeout: 200 * time.Millisecond}
	body := string(bytes.Repeat([]byte("x"), 120<<10))
	const calls = 200 // 24 MB, more than the sockets' buffers hold
	done := make(chan error, calls)
	for i := 0; i < calls; i++ {
		go func() {
			_, err := a.Invoke(context.Background(), messageEvent("c", body, ""))
			done <- err
		}()
	}
	deadline := time.After(5 * time.Second)
	for i := 0; i < calls; i++ {
		select {
		case err := <-done:
			if !errors.Is(err, ErrFailed) {
				t.Fatalf("Invoke = %v, want an integration failure", err)
			}
		case <-deadline:
			t.Errorf("%d of %d calls with a 200ms timeout still running after 5s against a broker that stopped reading", calls-i, calls)
			b.close()
			for ; i < calls; i++ {
				<-done
			}
			return
		}
	}
}
