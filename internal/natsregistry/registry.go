package natsregistry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/internal/registry"
)

// The registry bucket holds, with every name encoded by enc:
//
//	c.<id>          the connection's record, as JSON
//	u.<principal>.<id>  user index; empty value
//	n.<node>.<id>   node index; empty value
//	s.<id>.<topic>  the connection's subscriptions; value: generation
//	t.<topic>.<id>  topic membership; value: generation
//	l.<principal>, r.<principal>.<id>  the principal's connection slots (slots.go)
//
// A record's generation is the revision of its c.<id> entry, which changes
// every time the id is registered; subscriptions carry the generation they
// were made for, so that a reused id does not inherit them.
//
// Key-value buckets have no multi-key transactions, so the writes are
// ordered such that a crash between two of them leaves at worst stale index
// entries, never a record that an index misses:
//
//   - Register writes the new index entries first, then the record, then
//     removes the old record's index entries and subscriptions.
//   - Unregister removes the record first, then its index entries and
//     subscriptions.
//   - Subscribe writes s.<id>.<topic> before t.<topic>.<id>; Unsubscribe
//     removes them in the other order.
//
// Readers therefore trust the record, not the index: an index entry whose
// record is missing, names another principal or node, or (for topics) has
// another generation is skipped. A reader removes such an entry once it is
// older than staleGrace, long enough that it is not a write in progress.
// Orphaned s.<id>.<topic> entries (a crash in Subscribe, or Subscribe racing
// Unregister) stay until the id is registered and unregistered again; they
// hold no record and readers never list them by topic.
//
// Removals are purges whose tombstones expire after markerTTL.

// staleGrace is the age after which a reader removes an index entry that
// disagrees with its record.
const staleGrace = time.Minute

// fetchWorkers bounds the concurrent record reads of one listing.
const fetchWorkers = 16

// storedRecord is a Record as the bucket stores it.
type storedRecord struct {
	ConnectionID string         `json:"id"`
	NodeID       string         `json:"node"`
	PrincipalID  string         `json:"principal,omitempty"`
	ConnectedAt  time.Time      `json:"connectedAt"`
	SourceIP     string         `json:"sourceIp,omitempty"`
	UserAgent    string         `json:"userAgent,omitempty"`
	DomainName   string         `json:"domainName,omitempty"`
	Authorizer   map[string]any `json:"authorizer"`
}

func recordKey(id string) string          { return "c." + enc(id) }
func userKey(principal, id string) string { return "u." + enc(principal) + "." + enc(id) }
func nodeKey(node, id string) string      { return "n." + enc(node) + "." + enc(id) }
func subKey(id, topic string) string      { return "s." + enc(id) + "." + enc(topic) }
func topicKey(topic, id string) string    { return "t." + enc(topic) + "." + enc(id) }
func purgeOpts(rev uint64) []jetstream.KVDeleteOpt {
	opts := []jetstream.KVDeleteOpt{jetstream.PurgeTTL(markerTTL)}
	if rev != 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	return opts
}

// regErr wraps a bucket error with the operation that met it.
func regErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("nats registry: %s: %w", op, err)
}

// getRecord reads id's record and its generation; a missing id is
// registry.ErrNotFound.
func getRecord(ctx context.Context, kv jetstream.KeyValue, id string) (registry.Record, uint64, error) {
	ent, err := kv.Get(ctx, recordKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return registry.Record{}, 0, registry.ErrNotFound
	}
	if err != nil {
		return registry.Record{}, 0, err
	}
	var s storedRecord
	if err := json.Unmarshal(ent.Value(), &s); err != nil {
		return registry.Record{}, 0, fmt.Errorf("record of %q: %w", id, err)
	}
	return registry.Record(s), ent.Revision(), nil
}

// Register implements registry.Registry.
func (e *Engine) Register(ctx context.Context, rec registry.Record) error {
	b, err := e.buckets(ctx)
	if err != nil {
		return regErr("register", err)
	}
	data, err := json.Marshal(storedRecord(rec))
	if err != nil {
		return regErr("register", err)
	}
	id := rec.ConnectionID
	old, _, err := getRecord(ctx, b.reg, id)
	found := err == nil
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return regErr("register", err)
	}
	if rec.PrincipalID != "" {
		if _, err := b.reg.Put(ctx, userKey(rec.PrincipalID, id), nil); err != nil {
			return regErr("register", err)
		}
	}
	if _, err := b.reg.Put(ctx, nodeKey(rec.NodeID, id), nil); err != nil {
		return regErr("register", err)
	}
	gen, err := b.reg.Put(ctx, recordKey(id), data)
	if err != nil {
		return regErr("register", err)
	}
	if !found {
		return nil
	}
	if old.PrincipalID != "" && old.PrincipalID != rec.PrincipalID {
		if err := b.reg.Purge(ctx, userKey(old.PrincipalID, id), purgeOpts(0)...); err != nil {
			return regErr("register", err)
		}
	}
	if old.NodeID != rec.NodeID {
		if err := b.reg.Purge(ctx, nodeKey(old.NodeID, id), purgeOpts(0)...); err != nil {
			return regErr("register", err)
		}
	}
	return regErr("register", e.dropSubscriptions(ctx, b, id, gen))
}

// Unregister implements registry.Registry.
func (e *Engine) Unregister(ctx context.Context, connectionID string) error {
	b, err := e.buckets(ctx)
	if err != nil {
		return regErr("unregister", err)
	}
	rec, gen, err := getRecord(ctx, b.reg, connectionID)
	if errors.Is(err, registry.ErrNotFound) {
		// An earlier Unregister may have removed the record and failed
		// before the subscriptions: this retry ends them. The index
		// entries it may have left name the principal and node only the
		// record knew; readers remove those (see above).
		return regErr("unregister", e.dropSubscriptions(ctx, b, connectionID, 0))
	}
	if err != nil {
		return regErr("unregister", err)
	}
	// LastRevision: a registration that replaced the record since the read
	// above is not removed along with the one this call saw.
	if err := b.reg.Purge(ctx, recordKey(connectionID), purgeOpts(gen)...); err != nil {
		if isWrongRevision(err) {
			return nil
		}
		return regErr("unregister", err)
	}
	if rec.PrincipalID != "" {
		if err := b.reg.Purge(ctx, userKey(rec.PrincipalID, connectionID), purgeOpts(0)...); err != nil {
			return regErr("unregister", err)
		}
	}
	if err := b.reg.Purge(ctx, nodeKey(rec.NodeID, connectionID), purgeOpts(0)...); err != nil {
		return regErr("unregister", err)
	}
	return regErr("unregister", e.dropSubscriptions(ctx, b, connectionID, 0))
}

// dropSubscriptions removes id's subscriptions of every generation but
// keep. It first asks for the newest s.<id>.* entry, one direct read, so
// that a connection that never subscribed costs no listing.
func (e *Engine) dropSubscriptions(ctx context.Context, b *buckets, id string, keep uint64) error {
	prefix := "s." + enc(id) + "."
	_, err := b.regStream.GetLastMsgForSubject(ctx, "$KV."+e.regBucket+"."+prefix+"*")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	entries, err := list(ctx, b.reg, b.regStream, prefix+"*")
	if err != nil {
		return err
	}
	for _, ent := range entries {
		gen, _ := strconv.ParseUint(string(ent.Value()), 10, 64)
		if gen == keep && keep != 0 {
			continue
		}
		topic, err := dec(strings.TrimPrefix(ent.Key(), prefix))
		if err != nil {
			continue
		}
		// Remove t.<topic>.<id> only while it holds the dropped generation:
		// a Subscribe of the new generation may have rewritten it.
		tk := topicKey(topic, id)
		t, err := b.reg.Get(ctx, tk)
		switch {
		case err == nil && string(t.Value()) == string(ent.Value()):
			if err := b.reg.Purge(ctx, tk, purgeOpts(t.Revision())...); err != nil && !isWrongRevision(err) {
				return err
			}
		case err == nil, errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		default:
			return err
		}
		if err := b.reg.Purge(ctx, ent.Key(), purgeOpts(ent.Revision())...); err != nil && !isWrongRevision(err) {
			return err
		}
	}
	return nil
}

// isWrongRevision reports a write refused because the key changed.
func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Lookup implements registry.Registry. It is one direct read.
func (e *Engine) Lookup(ctx context.Context, connectionID string) (registry.Record, error) {
	b, err := e.buckets(ctx)
	if err != nil {
		return registry.Record{}, regErr("lookup", err)
	}
	rec, _, err := getRecord(ctx, b.reg, connectionID)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return rec, regErr("lookup", err)
	}
	return rec, err
}

// Subscribe implements registry.Registry.
func (e *Engine) Subscribe(ctx context.Context, connectionID, topic string) error {
	b, err := e.buckets(ctx)
	if err != nil {
		return regErr("subscribe", err)
	}
	_, gen, err := getRecord(ctx, b.reg, connectionID)
	if errors.Is(err, registry.ErrNotFound) {
		return err
	}
	if err != nil {
		return regErr("subscribe", err)
	}
	val := []byte(strconv.FormatUint(gen, 10))
	sk, tk := subKey(connectionID, topic), topicKey(topic, connectionID)
	srev, err := b.reg.Put(ctx, sk, val)
	if err != nil {
		return regErr("subscribe", err)
	}
	trev, err := b.reg.Put(ctx, tk, val)
	if err != nil {
		return regErr("subscribe", err)
	}
	// An Unregister (or a new Register) that removed the record after the
	// read above may have listed the subscriptions before these writes,
	// and left them behind. Whichever removal comes after these writes
	// sees them; one that came before is seen here, and the writes undone.
	_, now, err := getRecord(ctx, b.reg, connectionID)
	if err == nil && now == gen {
		return nil
	}
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return regErr("subscribe", err)
	}
	if err := b.reg.Purge(ctx, tk, purgeOpts(trev)...); err != nil && !isWrongRevision(err) {
		return regErr("subscribe", err)
	}
	if err := b.reg.Purge(ctx, sk, purgeOpts(srev)...); err != nil && !isWrongRevision(err) {
		return regErr("subscribe", err)
	}
	return registry.ErrNotFound
}

// Unsubscribe implements registry.Registry.
func (e *Engine) Unsubscribe(ctx context.Context, connectionID, topic string) error {
	b, err := e.buckets(ctx)
	if err != nil {
		return regErr("unsubscribe", err)
	}
	if err := b.reg.Purge(ctx, topicKey(topic, connectionID), purgeOpts(0)...); err != nil {
		return regErr("unsubscribe", err)
	}
	return regErr("unsubscribe", b.reg.Purge(ctx, subKey(connectionID, topic), purgeOpts(0)...))
}

// UserConnections implements registry.Registry. It lists the user index
// (one ordered consumer) and reads every record.
func (e *Engine) UserConnections(ctx context.Context, principalID string) ([]registry.Record, error) {
	if principalID == "" {
		return nil, ctx.Err()
	}
	recs, err := e.indexed(ctx, "u."+enc(principalID)+".", func(rec registry.Record, _, _ uint64) bool {
		return rec.PrincipalID == principalID
	})
	if err != nil {
		return nil, regErr("user connections", err)
	}
	slices.SortStableFunc(recs, func(a, b found) int {
		if c := a.rec.ConnectedAt.Compare(b.rec.ConnectedAt); c != 0 {
			return c
		}
		return compareUint(a.gen, b.gen)
	})
	return records(recs), nil
}

// TopicSubscribers implements registry.Registry. It lists the topic
// (one ordered consumer) and reads every subscriber's record.
func (e *Engine) TopicSubscribers(ctx context.Context, topic string) ([]registry.Record, error) {
	recs, err := e.topicMembers(ctx, topic)
	if err != nil {
		return nil, regErr("topic subscribers", err)
	}
	return records(recs), nil
}

// TopicCount implements registry.Registry. Every publication asks for it,
// so it counts the topic's index entries (one listing) without reading
// each subscriber's record as TopicSubscribers does: an entry left stale by
// a crash between the writes of Subscribe and Unregister is counted until a
// TopicSubscribers call removes it.
func (e *Engine) TopicCount(ctx context.Context, topic string) (int, error) {
	b, err := e.buckets(ctx)
	if err != nil {
		return 0, regErr("topic count", err)
	}
	entries, err := list(ctx, b.reg, b.regStream, "t."+enc(topic)+".*")
	if err != nil {
		return 0, regErr("topic count", err)
	}
	return len(entries), nil
}

func (e *Engine) topicMembers(ctx context.Context, topic string) ([]found, error) {
	return e.indexed(ctx, "t."+enc(topic)+".", func(_ registry.Record, gen, want uint64) bool {
		return gen == want
	})
}

// NodeConnections implements registry.Registry. It lists the node index
// (one ordered consumer) and reads every record.
func (e *Engine) NodeConnections(ctx context.Context, nodeID string) ([]registry.Record, error) {
	recs, err := e.indexed(ctx, "n."+enc(nodeID)+".", func(rec registry.Record, _, _ uint64) bool {
		return rec.NodeID == nodeID
	})
	if err != nil {
		return nil, regErr("node connections", err)
	}
	return records(recs), nil
}

// found is a record a listing found, with its generation.
type found struct {
	rec registry.Record
	gen uint64
}

func records(fs []found) []registry.Record {
	out := make([]registry.Record, len(fs))
	for i, f := range fs {
		out[i] = f.rec
	}
	return out
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// indexed lists the index entries under prefix, whose last token is a
// connection id, reads their records and keeps those valid says agree with
// the entry. valid gets the record, its generation and the generation the
// entry's value names (0 when it names none). Entries that disagree are
// skipped, and removed once older than staleGrace.
func (e *Engine) indexed(ctx context.Context, prefix string, valid func(rec registry.Record, gen, want uint64) bool) ([]found, error) {
	b, err := e.buckets(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := list(ctx, b.reg, b.regStream, prefix+"*")
	if err != nil {
		return nil, err
	}
	out := make([]found, len(entries))
	ok := make([]bool, len(entries))
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(fetchWorkers, len(entries)) {
		wg.Go(func() {
			for i := range next {
				ent := entries[i]
				id, err := dec(strings.TrimPrefix(ent.Key(), prefix))
				if err != nil {
					continue
				}
				rec, gen, err := getRecord(ctx, b.reg, id)
				if err != nil && !errors.Is(err, registry.ErrNotFound) {
					errs[i] = err
					continue
				}
				want, _ := strconv.ParseUint(string(ent.Value()), 10, 64)
				if err == nil && valid(rec, gen, want) {
					out[i], ok[i] = found{rec, gen}, true
					continue
				}
				if time.Since(ent.Created()) > staleGrace {
					if err := b.reg.Purge(ctx, ent.Key(), purgeOpts(ent.Revision())...); err != nil && !isWrongRevision(err) {
						e.logger.Debug("removing a stale index entry failed", "err", err)
					}
				}
			}
		})
	}
feed:
	for i := range entries {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	res := out[:0]
	for i, f := range out {
		if ok[i] {
			res = append(res, f)
		}
	}
	return res, nil
}

// list returns the live entries of kv (whose stream is stream) whose keys
// match filter, as they stand when it returns, in the order they were
// written.
//
// nats.go's watcher does not give that under concurrent writes (heartbeats
// rewrite their keys all the time): it delivers the last entry of each key
// as the server listed them when its consumer was made, skips a key
// rewritten meanwhile, and can send its end-of-initial-values marker, or
// report nothing pending, before that key's new entry. The buckets keep one
// revision per key, so list reads every stored entry matching filter in
// stream order (IncludeHistory, delete markers included), keeping the
// newest of each key, until it has read up to the last sequence any
// matching key holds; it then asks for that sequence again and reads on
// until the answer is one it has read (or none). A key live at that moment has its
// entry at or before that sequence, and an entry still stored is never
// skipped.
func list(ctx context.Context, kv jetstream.KeyValue, stream jetstream.Stream, filter string) ([]jetstream.KeyValueEntry, error) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	subject := "$KV." + kv.Bucket() + "." + filter
	last, err := lastSequence(ctx, stream, subject)
	if err != nil || last == 0 {
		return nil, err
	}
	w, err := kv.WatchFiltered(ctx, []string{filter}, jetstream.IncludeHistory())
	if err != nil {
		return nil, err
	}
	defer stopWatcher(w)
	live := make(map[string]jetstream.KeyValueEntry)
	var read uint64
	// A marker of a deleted key expires (markerTTL): if it was the message
	// at last, nothing at or past last may come, so a listing that waits
	// asks again now and then.
	recheck := time.NewTicker(listRecheck)
	defer recheck.Stop()
	for {
		for read < last {
			select {
			case <-recheck.C:
				if last, err = lastSequence(ctx, stream, subject); err != nil {
					return nil, err
				}
			case ent, ok := <-w.Updates():
				if !ok {
					return nil, errors.New("listing ended before its last entry")
				}
				if ent == nil {
					continue
				}
				read = max(read, ent.Revision())
				if ent.Operation() == jetstream.KeyValuePut {
					live[ent.Key()] = ent
				} else {
					delete(live, ent.Key())
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if last, err = lastSequence(ctx, stream, subject); err != nil {
			return nil, err
		}
		if last == 0 {
			return nil, nil
		}
		if last <= read {
			break
		}
	}
	out := make([]jetstream.KeyValueEntry, 0, len(live))
	for _, ent := range live {
		out = append(out, ent)
	}
	slices.SortFunc(out, func(a, b jetstream.KeyValueEntry) int { return cmp.Compare(a.Revision(), b.Revision()) })
	return out, nil
}

// listRecheck is how long list waits for the next entry before it asks
// again for the last sequence it must read up to.
const listRecheck = 100 * time.Millisecond

// lastSequence returns the stream sequence of the last message on subject
// (a wildcard may match several), or 0 when there is none.
func lastSequence(ctx context.Context, stream jetstream.Stream, subject string) (uint64, error) {
	m, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return m.Sequence, nil
}

// stopWatcher stops w and reads what it still delivers: nats.go's delivery
// goroutine blocks on a full updates channel, and would never end if
// nobody read it.
func stopWatcher(w jetstream.KeyWatcher) {
	_ = w.Stop()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}
