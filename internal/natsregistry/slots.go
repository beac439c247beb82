package natsregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/internal/registry"
)

// A principal's connection slots live in the registry bucket as
//
//	l.<principal>       the connections holding a reservation: a JSON
//	                    object of connection id → the reservation's
//	                    lifetime in milliseconds, written only with
//	                    compare-and-set on its revision
//	r.<principal>.<id>  one reservation, expiring with a per-key TTL
//
// The server's TTL ends a reservation, so no node's clock judges another's.
// A reservation is counted while its id is in l.<principal> and either its
// r. key is there or the connection is registered (counted once). Reserving
// writes the r. key first and then adds the id to l.<principal>; releasing
// removes the id first and then the r. key. So an id whose r. key is gone is
// expired (or its node died releasing it), and a reserver drops it. The
// compare-and-set on l.<principal> makes reservations of one principal
// take turns: a reserver reads it, then lists the user index, and writes it
// only if nobody changed it meanwhile — in particular no handshake released
// its reservation after registering, which it does only once its
// connection is in the index the reserver then lists.
//
// l.<principal> itself carries a TTL as long as the longest reservation it
// lists, renewed by every write, so that the list of a user whose node died
// mid-handshake and who never comes back goes away too.

// slotAttempts bounds the compare-and-set rounds of one reservation; only
// handshakes of one user that would all fit contend, each round lets one
// through.
const slotAttempts = 64

func slotsKey(principal string) string           { return "l." + enc(principal) }
func reservationKey(principal, id string) string { return "r." + enc(principal) + "." + enc(id) }

// ReserveUserSlot implements registry.Registry.
func (e *Engine) ReserveUserSlot(ctx context.Context, principalID, connectionID string, limit int, ttl time.Duration) (bool, error) {
	if err := registry.CheckSlot(ctx, principalID, limit); err != nil {
		return false, err
	}
	b, err := e.buckets(ctx)
	if err != nil {
		return false, regErr("reserve user slot", err)
	}
	ttl = wholeSeconds(ttl)
	rkey := reservationKey(principalID, connectionID)
	if err := e.publishTTL(ctx, rkey, nil, ttl, nil); err != nil {
		return false, regErr("reserve user slot", err)
	}
	for range slotAttempts {
		ok, err := e.reserveRound(ctx, b, principalID, connectionID, limit, ttl)
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return false, regErr("reserve user slot", err)
		}
		if !ok {
			if err := b.reg.Purge(ctx, rkey, purgeOpts(0)...); err != nil {
				e.logger.Debug("removing a refused reservation failed; it expires", "err", err)
			}
		}
		return ok, nil
	}
	return false, regErr("reserve user slot", errContended)
}

// errChanged is a compare-and-set that lost to another writer; the round
// starts again. errContended is too many such rounds.
var (
	errChanged   = errors.New("the user's slots changed")
	errContended = errors.New("the user's slots kept changing under concurrent handshakes")
)

// reserveRound is one compare-and-set round of ReserveUserSlot.
func (e *Engine) reserveRound(ctx context.Context, b *buckets, principalID, connectionID string, limit int, ttl time.Duration) (bool, error) {
	slots, rev, err := e.slots(ctx, b, principalID)
	if err != nil {
		return false, err
	}
	regs, err := e.indexed(ctx, "u."+enc(principalID)+".", func(rec registry.Record, _, _ uint64) bool {
		return rec.PrincipalID == principalID
	})
	if err != nil {
		return false, err
	}
	registered := make(map[string]bool, len(regs))
	others := 0
	for _, f := range regs {
		registered[f.rec.ConnectionID] = true
		if f.rec.ConnectionID != connectionID {
			others++
		}
	}
	next := make(map[string]int64, len(slots)+1)
	for id, ms := range slots {
		if id == connectionID {
			continue
		}
		if registered[id] {
			next[id] = ms
			continue
		}
		_, err := b.reg.Get(ctx, reservationKey(principalID, id))
		if isMissing(err) {
			continue // expired
		}
		if err != nil {
			return false, err
		}
		next[id] = ms
		others++
	}
	ok := others < limit
	if ok {
		next[connectionID] = ttl.Milliseconds()
	} else if len(next) == len(slots) {
		return false, nil // nothing to write: connectionID holds nothing, nothing expired
	}
	return ok, e.writeSlots(ctx, b, principalID, next, rev)
}

// ReleaseUserSlot implements registry.Registry.
func (e *Engine) ReleaseUserSlot(ctx context.Context, principalID, connectionID string) error {
	b, err := e.buckets(ctx)
	if err != nil {
		return regErr("release user slot", err)
	}
	for attempt := 0; ; attempt++ {
		if attempt == slotAttempts {
			return regErr("release user slot", errContended)
		}
		slots, rev, err := e.slots(ctx, b, principalID)
		if err != nil {
			return regErr("release user slot", err)
		}
		if _, ok := slots[connectionID]; !ok {
			break
		}
		delete(slots, connectionID)
		err = e.writeSlots(ctx, b, principalID, slots, rev)
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return regErr("release user slot", err)
		}
		break
	}
	return regErr("release user slot", b.reg.Purge(ctx, reservationKey(principalID, connectionID), purgeOpts(0)...))
}

// slots reads l.<principal> and the revision to write it on: 0 when the
// key never existed, its tombstone's when it was removed or expired.
func (e *Engine) slots(ctx context.Context, b *buckets, principalID string) (map[string]int64, uint64, error) {
	m, err := b.regStream.GetLastMsgForSubject(ctx, e.kvSubject(slotsKey(principalID)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return map[string]int64{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	slots := map[string]int64{}
	if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
		return slots, m.Sequence, nil
	}
	if err := json.Unmarshal(m.Data, &slots); err != nil {
		return nil, 0, fmt.Errorf("slots of %q: %w", principalID, err)
	}
	return slots, m.Sequence, nil
}

// writeSlots writes l.<principal> on revision rev, or removes it when
// slots is empty. A write that another writer beat is errChanged.
func (e *Engine) writeSlots(ctx context.Context, b *buckets, principalID string, slots map[string]int64, rev uint64) error {
	key := slotsKey(principalID)
	var err error
	if len(slots) == 0 {
		if rev == 0 {
			return nil
		}
		err = b.reg.Purge(ctx, key, purgeOpts(rev)...)
	} else {
		var longest int64
		for _, ms := range slots {
			longest = max(longest, ms)
		}
		data, merr := json.Marshal(slots)
		if merr != nil {
			return merr
		}
		err = e.publishTTL(ctx, key, data, time.Duration(longest)*time.Millisecond, &rev)
	}
	if isWrongRevision(err) {
		return errChanged
	}
	return err
}

// publishTTL writes key with a per-key TTL, on revision *rev when rev is
// not nil.
func (e *Engine) publishTTL(ctx context.Context, key string, data []byte, ttl time.Duration, rev *uint64) error {
	opts := []jetstream.PublishOpt{jetstream.WithMsgTTL(wholeSeconds(ttl))}
	if rev != nil {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(*rev))
	}
	_, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: e.kvSubject(key), Data: data}, opts...)
	return err
}

// kvSubject is the subject of key in the registry bucket.
func (e *Engine) kvSubject(key string) string { return "$KV." + e.regBucket + "." + key }
