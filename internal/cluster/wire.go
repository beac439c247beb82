package cluster

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/inspect"
)

// Node-to-node requests are a compact binary encoding: an op byte, then
// fields, each string or byte slice prefixed with its length as a uvarint.
// Every answer starts with one status byte per item.

type op byte

const (
	opSend        op = iota + 1 // n × (id, data) → n × status
	opInfo                      // n × id → n × (status, info)
	opClose                     // id, code, reason → status
	opSubscribe                 // id, topic → status
	opUnsubscribe               // id, topic → status
	opStats                     // → status, stats
	opTopics                    // prefix, after, limit → status, n × (topic, subscribers)
	opLog                       // kind, max → count × entry
	opTailStart                 // id → status
	opTailRead                  // id, after → status, page
	opTailStop                  // id → status
)

type status byte

const (
	statusOK        status = iota // done
	statusGone                    // no such connection on the node
	statusFail                    // the node could not do it (its engine failed)
	statusLimit                   // the connection is at its subscription limit
	statusTailsOff                // the node's message tails are off
	statusTailLimit               // the node has the most message tails open
	statusNoTail                  // the connection has no tail open
)

// errMalformed is an answer or request that does not decode.
var errMalformed = errors.New("malformed cluster message")

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendInt(b []byte, v int) []byte { return binary.AppendUvarint(b, uint64(v)) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader decodes a message; the first decoding error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errMalformed
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errMalformed
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errMalformed
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) time() time.Time {
	ms := r.uvarint()
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendUvarint(b, 0)
	}
	return binary.AppendUvarint(b, uint64(t.UnixMilli()))
}

func appendInfo(b []byte, in hub.Info) []byte {
	b = appendTime(b, in.ConnectedAt)
	b = appendTime(b, in.LastActiveAt)
	b = appendString(b, in.SourceIP)
	return appendString(b, in.UserAgent)
}

func (r *reader) info() hub.Info {
	return hub.Info{ConnectedAt: r.time(), LastActiveAt: r.time(), SourceIP: r.string(), UserAgent: r.string()}
}

// publication is what a node publishes on a topic: the publishing node's
// id, so that it skips its own publication (it has delivered locally), and
// the message.
func encodePublication(origin string, data []byte) []byte {
	b := make([]byte, 0, len(origin)+len(data)+4)
	b = appendString(b, origin)
	return append(b, data...)
}

func decodePublication(msg []byte) (origin string, data []byte, err error) {
	r := reader{b: msg}
	origin = r.string()
	return origin, r.b, r.err
}

func appendStats(b []byte, st NodeStats) []byte {
	b = appendInt(b, st.Connections)
	b = appendInt(b, st.Subscriptions)
	b = binary.AppendUvarint(b, st.MessagesReceived)
	b = binary.AppendUvarint(b, st.MessagesSent)
	return appendTime(b, st.StartedAt)
}

func (r *reader) stats() NodeStats {
	return NodeStats{Connections: int(r.uvarint()), Subscriptions: int(r.uvarint()),
		MessagesReceived: r.uvarint(), MessagesSent: r.uvarint(), StartedAt: r.time()}
}

func appendNanos(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendUvarint(b, 0)
	}
	return binary.AppendUvarint(b, uint64(t.UnixNano()))
}

func (r *reader) nanos() time.Time {
	ns := r.uvarint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendEntry(b []byte, e *inspect.Entry) []byte {
	b = appendNanos(b, e.Time)
	b = appendString(b, e.NodeID)
	b = appendString(b, e.SourceIP)
	b = appendString(b, e.Reason)
	b = appendString(b, e.Authorizer)
	b = appendString(b, e.Decision)
	b = binary.AppendUvarint(b, uint64(max(e.Latency, 0)))
	b = appendBool(b, e.CacheHit)
	b = appendString(b, e.PrincipalID)
	b = appendInt(b, max(e.Status, 0))
	b = appendString(b, e.UserAgent)
	return appendString(b, e.Path)
}

func (r *reader) entry() inspect.Entry {
	return inspect.Entry{
		Time: r.nanos(), NodeID: r.string(), SourceIP: r.string(), Reason: r.string(),
		Authorizer: r.string(), Decision: r.string(), Latency: time.Duration(r.uvarint()),
		CacheHit: r.byte() == 1, PrincipalID: r.string(), Status: int(r.uvarint()),
		UserAgent: r.string(), Path: r.string(),
	}
}

func appendTailPage(b []byte, p *inspect.TailPage) []byte {
	b = binary.AppendUvarint(b, p.Next)
	b = binary.AppendUvarint(b, p.Dropped)
	b = appendInt(b, len(p.Items))
	for i := range p.Items {
		it := &p.Items[i]
		b = binary.AppendUvarint(b, it.Seq)
		b = appendNanos(b, it.Time)
		var flags byte
		if it.Out {
			flags |= 1
		}
		if it.Truncated {
			flags |= 2
		}
		if it.Binary {
			flags |= 4
		}
		b = append(b, flags)
		b = appendInt(b, it.Bytes)
		b = appendString(b, it.Data)
	}
	return b
}

func (r *reader) tailPage() inspect.TailPage {
	p := inspect.TailPage{Next: r.uvarint(), Dropped: r.uvarint()}
	count := r.uvarint()
	if r.err != nil || count > uint64(len(r.b)) {
		r.err = errMalformed
		return inspect.TailPage{}
	}
	p.Items = make([]inspect.TailItem, 0, count)
	for range count {
		it := inspect.TailItem{Seq: r.uvarint(), Time: r.nanos()}
		flags := r.byte()
		it.Out, it.Truncated, it.Binary = flags&1 != 0, flags&2 != 0, flags&4 != 0
		it.Bytes = int(r.uvarint())
		it.Data = r.string()
		if r.err != nil {
			return inspect.TailPage{}
		}
		p.Items = append(p.Items, it)
	}
	return p
}
