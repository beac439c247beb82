package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// redisBlock is how long one XREADGROUP waits for a new entry, and so
	// how long a stop may wait for it.
	redisBlock = time.Second
	// redisBatch is how many pending or claimed entries are read at once.
	redisBatch = 16
)

// redisSource consumes a Redis stream as consumer -consumer of the group
// -group, which it creates at the stream's first entry (with MKSTREAM)
// when it is missing. Besides the new entries it reads the entries it
// holds unacknowledged (at start, then -retry after a post failed), and
// every -claim-idle takes over those another consumer has held that long
// (XAUTOCLAIM), so that the messages of a worker that died are answered.
type redisSource struct {
	o   options
	log *slog.Logger

	// down is true while Redis fails, so that an outage is logged once.
	down bool
}

func (s *redisSource) run(ctx context.Context, handle func(context.Context, delivery) outcome) error {
	opts, err := redis.ParseURL(s.o.url)
	if err != nil {
		// ParseURL's messages may quote the URL, password included.
		return errors.New("redis: -url is not a URL such as redis://127.0.0.1:6379/0")
	}
	client := redis.NewClient(opts)
	defer client.Close()

	// The entries this consumer holds are read first: a worker started
	// again under the same name answers what it had taken before.
	// pendingAt is when to read them next; zero: not scheduled.
	pendingAt := time.Now()
	pendingFrom := "0"
	failed := false
	nextClaim := time.Now().Add(s.o.claimIdle)
	groupReady := false

	for ctx.Err() == nil {
		if !groupReady {
			if !s.ok(ctx, s.createGroup(ctx, client)) {
				continue
			}
			groupReady = true
		}
		var entries []redis.XMessage
		var err error
		now := time.Now()
		switch {
		case !pendingAt.IsZero() && !pendingAt.After(now):
			// This consumer's pending entries after pendingFrom.
			if pendingFrom == "0" {
				failed = false
			}
			var res []redis.XStream
			res, err = client.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: s.o.group, Consumer: s.o.consumer,
				Streams: []string{s.o.stream, pendingFrom}, Count: redisBatch, Block: -1,
			}).Result()
			if err == nil && len(res) > 0 {
				entries = res[0].Messages
			}
			if err == nil {
				if len(entries) > 0 {
					pendingFrom = entries[len(entries)-1].ID
				} else {
					// All read: again after -retry if one failed.
					pendingFrom, pendingAt = "0", time.Time{}
					if failed {
						pendingAt, failed = now.Add(s.o.retry), false
					}
				}
			}
		case !nextClaim.After(now):
			var cursor string
			entries, cursor, err = client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: s.o.stream, Group: s.o.group, Consumer: s.o.consumer,
				MinIdle: s.o.claimIdle, Start: "0-0", Count: redisBatch,
			}).Result()
			if err == nil && (cursor == "0-0" || len(entries) == 0) {
				nextClaim = now.Add(s.o.claimIdle)
			}
			if len(entries) > 0 {
				s.log.Info("claimed entries another consumer held", "entries", len(entries))
			}
		default:
			block := redisBlock
			if !pendingAt.IsZero() {
				block = min(block, max(time.Until(pendingAt), time.Millisecond))
			}
			var res []redis.XStream
			res, err = client.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: s.o.group, Consumer: s.o.consumer,
				Streams: []string{s.o.stream, ">"}, Count: 1, Block: block,
			}).Result()
			if errors.Is(err, redis.Nil) {
				err = nil
			}
			if err == nil && len(res) > 0 {
				entries = res[0].Messages
			}
		}
		if err != nil {
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				// The stream or the group is gone (deleted, or a Redis
				// that restarted empty): create them again.
				groupReady = false
			}
			s.ok(ctx, err)
			continue
		}
		s.ok(ctx, nil)
		for _, e := range entries {
			switch s.dispatch(ctx, client, e, handle) {
			case retry:
				failed = true
				if pendingAt.IsZero() {
					pendingAt = time.Now().Add(s.o.retry)
				}
			case release:
				return nil
			}
		}
	}
	return nil
}

// createGroup creates the consumer group, and the stream when it is
// missing; the group starts at the stream's first entry, so that messages
// published before the first worker started are answered too.
func (s *redisSource) createGroup(ctx context.Context, client *redis.Client) error {
	err := client.XGroupCreateMkStream(ctx, s.o.stream, s.o.group, "0").Err()
	if err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP") {
		err = nil
	}
	if err == nil {
		s.log.Info("consuming", "stream", s.o.stream, "group", s.o.group, "consumer", s.o.consumer)
	}
	return err
}

// ok logs the first error of an outage and the recovery, and after an
// error waits a moment before the next attempt. It reports whether err is
// nil.
func (s *redisSource) ok(ctx context.Context, err error) bool {
	if err == nil {
		if s.down {
			s.log.Info("redis is back")
			s.down = false
		}
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	if !s.down {
		s.log.Warn("redis failed; trying again every second", "err", err)
		s.down = true
	}
	sleep(ctx, time.Second)
	return false
}

// dispatch handles one entry and acknowledges it unless the outcome says
// otherwise.
func (s *redisSource) dispatch(ctx context.Context, client *redis.Client, e redis.XMessage, handle func(context.Context, delivery) outcome) outcome {
	d, err := fromRedisEntry(e.Values)
	out := ack
	if err != nil {
		s.log.Warn("entry dropped", "id", e.ID, "err", err)
	} else {
		out = handle(ctx, d)
	}
	if out != ack {
		return out
	}
	ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := client.XAck(ackCtx, s.o.stream, s.o.group, e.ID).Err(); err != nil {
		s.log.Warn("acknowledging the entry failed; it will be delivered again", "id", e.ID, "err", fmt.Errorf("redis: %w", err))
	}
	return ack
}
