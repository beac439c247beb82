package natsregistry

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/internal/registry"
)

// seqCursorPrefix starts ListConnections' cursors: the rest is the stream
// sequence the next page starts at.
const seqCursorPrefix = "seq:"

// listBuffer bounds the messages the listing consumer buffers.
const listBuffer = 256

// ListConnections implements registry.Registry. It reads the registry
// stream in order from the cursor's sequence on, with one ordered consumer
// that it stops before returning, filtered to the most selective index q
// names — a principal's, a topic's or a node's entries, each followed by a
// read of its record — or with no filter to the records themselves. The
// bucket keeps one revision of each key, so each connection is met once;
// one registered again while a listing pages moves to the end of the
// stream and may be listed twice. A connection's topics cost one read, and
// a listing of its subscriptions when it has any.
func (e *Engine) ListConnections(ctx context.Context, q registry.ListQuery) ([]registry.Listed, string, error) {
	if err := registry.CheckList(ctx, q); err != nil {
		return nil, "", err
	}
	start, err := parseSeqCursor(q.Cursor)
	if err != nil {
		return nil, "", err
	}
	b, err := e.buckets(ctx)
	if err != nil {
		return nil, "", regErr("list connections", err)
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	prefix := "c."
	switch {
	case q.PrincipalID != "":
		prefix = "u." + enc(q.PrincipalID) + "."
	case q.Topic != "":
		prefix = "t." + enc(q.Topic) + "."
	case q.NodeID != "":
		prefix = "n." + enc(q.NodeID) + "."
	}
	subject := e.kvSubject(prefix + "*")
	// The last message names where the listing ends, so that the
	// consumer is never waited on for a message that does not exist.
	last, err := b.regStream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", regErr("list connections", err)
	}
	if last.Sequence < start {
		return nil, "", nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	cons, err := b.regStream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, "", regErr("list connections", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(min(q.Limit+1, listBuffer)))
	if err != nil {
		return nil, "", regErr("list connections", err)
	}
	defer it.Stop()
	var page []registry.Listed
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, "", regErr("list connections", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, "", regErr("list connections", err)
		}
		seq := md.Sequence.Stream
		l, ok, err := e.listed(ctx, b, prefix, msg, seq, q)
		if err != nil {
			return nil, "", regErr("list connections", err)
		}
		if ok {
			if len(page) == q.Limit {
				return page, seqCursorPrefix + strconv.FormatUint(seq, 10), nil
			}
			page = append(page, l)
		}
		if seq >= last.Sequence || md.NumPending == 0 {
			return page, "", nil
		}
	}
}

func parseSeqCursor(c string) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	rest, ok := strings.CutPrefix(c, seqCursorPrefix)
	if !ok {
		return 0, registry.ErrBadCursor
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || seq == 0 {
		return 0, registry.ErrBadCursor
	}
	return seq, nil
}

// listed returns the connection msg, an entry under prefix at stream
// sequence seq, stands for, and false when it stands for none that
// matches q: a removal, or an index entry that disagrees with its record.
func (e *Engine) listed(ctx context.Context, b *buckets, prefix string, msg jetstream.Msg, seq uint64, q registry.ListQuery) (registry.Listed, bool, error) {
	if h := msg.Headers(); h.Get("KV-Operation") != "" || h.Get("Nats-Marker-Reason") != "" {
		return registry.Listed{}, false, nil
	}
	key := strings.TrimPrefix(msg.Subject(), e.kvSubject(""))
	id, err := dec(strings.TrimPrefix(key, prefix))
	if err != nil {
		return registry.Listed{}, false, nil
	}
	var rec registry.Record
	var gen uint64
	if prefix == "c." {
		var s storedRecord
		if err := json.Unmarshal(msg.Data(), &s); err != nil {
			return registry.Listed{}, false, nil
		}
		rec, gen = registry.Record(s), seq
	} else {
		rec, gen, err = getRecord(ctx, b.reg, id)
		if errors.Is(err, registry.ErrNotFound) {
			return registry.Listed{}, false, nil
		}
		if err != nil {
			return registry.Listed{}, false, err
		}
	}
	if (q.PrincipalID != "" && rec.PrincipalID != q.PrincipalID) || (q.NodeID != "" && rec.NodeID != q.NodeID) {
		return registry.Listed{}, false, nil
	}
	topics, err := e.topicsOf(ctx, b, id, gen)
	if err != nil {
		return registry.Listed{}, false, err
	}
	l := registry.Listed{Record: rec, Topics: topics}
	if q.Topic != "" && !slices.Contains(topics, q.Topic) {
		return registry.Listed{}, false, nil
	}
	return l, true, nil
}

// topicsOf returns the topics connection id subscribes to in generation
// gen. A first read tells whether it has any subscription entry, so that a
// connection without one costs no listing.
func (e *Engine) topicsOf(ctx context.Context, b *buckets, id string, gen uint64) ([]string, error) {
	prefix := "s." + enc(id) + "."
	_, err := b.regStream.GetLastMsgForSubject(ctx, e.kvSubject(prefix+"*"))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	entries, err := list(ctx, b.reg, b.regStream, prefix+"*")
	if err != nil {
		return nil, err
	}
	want := strconv.FormatUint(gen, 10)
	topics := make([]string, 0, len(entries))
	for _, ent := range entries {
		if string(ent.Value()) != want {
			continue
		}
		if t, err := dec(strings.TrimPrefix(ent.Key(), prefix)); err == nil {
			topics = append(topics, t)
		}
	}
	return topics, nil
}
