package integration

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/wsgate/wsgate/internal/destination"
)

// redisDialTimeout bounds connecting to Redis; a call's own timeout
// bounds it further.
const redisDialTimeout = 2 * time.Second

// RedisOptions locate a Redis server.
type RedisOptions struct {
	// URL is redis://[user@]host:port[/db] or rediss:// for TLS.
	URL string
	// Password, when set, is the server's password.
	Password string
}

// RedisConn is a pool of connections to Redis that redis integrations
// share. It connects when a call needs a connection, so a server that is
// down at start is not an error; calls fail while it stays down and work
// again once it is back. Close it when the integrations using it are done.
type RedisConn struct {
	client *redis.Client
	batch  *redisBatch
}

// DialRedis returns a pool for the server opts names, without connecting.
// Its errors never hold the password.
func DialRedis(opts RedisOptions) (*RedisConn, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		// url.Parse's messages quote the URL, which may hold a password.
		return nil, errors.New("redis: url is not a redis://host:port/db URL")
	}
	opt, err := redis.ParseURL(opts.URL)
	if err != nil {
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return nil, fmt.Errorf("redis: url: %s", strings.TrimPrefix(msg, "redis: "))
	}
	if opts.Password != "" {
		opt.Password = opts.Password
	}
	opt.DialTimeout = redisDialTimeout
	opt.ContextTimeoutEnabled = true
	// No retries: a command whose answer was lost may have been applied,
	// and XADD again would append the message twice. The client is told
	// the publication failed instead.
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	client := redis.NewClient(opt)
	return &RedisConn{client: client, batch: newRedisBatch(client)}, nil
}

// Close closes the pool. Publishing through it fails afterwards.
func (c *RedisConn) Close() error {
	err := c.client.Close()
	c.batch.close()
	return err
}

// Redis appends each event to a Redis stream (XADD, acknowledged with the
// entry id) or publishes it to a Redis channel (PUBLISH, acknowledged with
// the number of subscribers that received it). Set exactly one of Stream
// and Channel.
//
// A stream entry holds the identity fields (connectionId, routeKey,
// eventType, requestId, and principalId and authorizer when an authorizer
// ran) and then the payload: the field event (the AWS event JSON) or, with
// PayloadBody, the field body. A channel message is the event JSON alone.
type Redis struct {
	Conn    *RedisConn
	Stream  *destination.Template
	Channel *destination.Template
	// MaxLen trims the stream to about this many entries (XADD MAXLEN ~);
	// zero means no trimming.
	MaxLen  int64
	Payload Payload
	// Timeout bounds one publication; zero means no bound beyond ctx.
	Timeout time.Duration
}

var _ Integration = (*Redis)(nil)

// Invoke implements Integration.
func (r *Redis) Invoke(ctx context.Context, ev *Event) (*Response, error) {
	data, err := r.Payload.payload(ev)
	if err != nil {
		return nil, failf("%v", err)
	}
	callCtx, cancel := bound(ctx, r.Timeout)
	defer cancel()
	ack := &accepted{RequestID: ev.RequestContext.RequestID}
	if r.Channel != nil {
		channel, err := expand(r.Channel, ev, nil)
		if err != nil {
			return nil, err
		}
		var cmd *redis.IntCmd
		err = r.Conn.batch.do(callCtx, func(ctx context.Context, p redis.Pipeliner) { cmd = p.Publish(ctx, channel, data) })
		var n int64
		if err == nil {
			n, err = cmd.Result()
		}
		if err != nil {
			return nil, publishFailed(callCtx, "redis PUBLISH", r.Timeout, err)
		}
		ack.Channel, ack.Receivers = channel, &n
		return ack.response(), nil
	}
	stream, err := expand(r.Stream, ev, nil)
	if err != nil {
		return nil, err
	}
	fields := identity(ev)
	values := make([]any, 0, 2*len(fields)+2)
	for _, f := range fields {
		values = append(values, f.name, f.value)
	}
	if r.Payload == PayloadBody {
		values = append(values, "body", data)
	} else {
		values = append(values, "event", data)
	}
	args := &redis.XAddArgs{Stream: stream, Values: values}
	if r.MaxLen > 0 {
		args.MaxLen, args.Approx = r.MaxLen, true
	}
	var cmd *redis.StringCmd
	err = r.Conn.batch.do(callCtx, func(ctx context.Context, p redis.Pipeliner) { cmd = p.XAdd(ctx, args) })
	var id string
	if err == nil {
		id, err = cmd.Result()
	}
	if err != nil {
		return nil, publishFailed(callCtx, "redis XADD", r.Timeout, err)
	}
	ack.Stream, ack.ID = stream, id
	return ack.response(), nil
}

// maxBatchWait bounds a pipeline whose commands have no deadline: AWS's
// longest integration timeout.
const maxBatchWait = 29 * time.Second

// redisBatch sends the commands of concurrent publications to Redis in
// pipelines: one write and one read of the answers for every command
// waiting when a round starts, instead of a write, a read and a pooled
// connection per command. A round starts when the previous one has ended,
// so under load each round holds the commands queued during the previous
// one, and a lone command goes out at once. Each command has its own
// answer or error, as without the pipeline; a pipeline is never retried.
// Its goroutine is started by newRedisBatch and stopped by close.
type redisBatch struct {
	client *redis.Client
	kick   chan struct{} // a round is waiting; buffered
	stop   chan struct{}
	done   chan struct{} // closed when run has returned

	// mu guards next and closed.
	mu     sync.Mutex
	next   *redisRound // the round that starts next; nil when none waits
	closed bool
}

// redisRound is one pipeline and the commands in it.
type redisRound struct {
	deadline time.Time // the latest deadline of its commands' calls
	queue    []func(context.Context, redis.Pipeliner)
	done     chan struct{} // closed once the pipeline has run, or err is set
	err      error         // the round failed as a whole
}

func newRedisBatch(client *redis.Client) *redisBatch {
	b := &redisBatch{client: client, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

func (b *redisBatch) run() {
	defer close(b.done)
	for {
		select {
		case <-b.stop:
			return
		case <-b.kick:
		}
		for {
			b.mu.Lock()
			r := b.next
			b.next = nil
			b.mu.Unlock()
			if r == nil {
				break
			}
			ctx, cancel := context.WithDeadline(context.Background(), r.deadline)
			pipe := b.client.Pipeline()
			for _, add := range r.queue {
				add(ctx, pipe)
			}
			// An error the server answered belongs to its command, and
			// the others hold their results. Any other error (no
			// connection, a timeout, a connection lost) is the whole
			// round's: go-redis does not always set it on the commands,
			// and the ones answered before it are then not acknowledged,
			// their outcome being unknown to the caller of the round.
			if err := execPipeline(ctx, pipe); err != nil {
				r.err = err
			}
			cancel()
			close(r.done)
		}
	}
}

// execPipeline sends the pipeline and returns an error that is not the
// server's answer to one of its commands.
//
// An error Redis answered while the connection was being set up (AUTH
// refused, SELECT of a database it does not have) is a redis.Error too, but
// go-redis sets it on none of the commands, which were never sent: it is
// the round's.
func execPipeline(ctx context.Context, pipe redis.Pipeliner) error {
	cmds, err := pipe.Exec(ctx)
	var answered redis.Error
	if err == nil {
		return nil
	}
	if errors.As(err, &answered) {
		for _, cmd := range cmds {
			if cmd.Err() != nil {
				return nil
			}
		}
	}
	return err
}

// do has add queue one command on the pipeline of the next round and
// returns nil once that pipeline has run, when the command holds its
// result or the server's error. Otherwise the command must not be read: do
// returns the round's error (see run), ctx's error when ctx ends first, or
// redis.ErrClosed when the pool was closed before the round was sent.
func (b *redisBatch) do(ctx context.Context, add func(context.Context, redis.Pipeliner)) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(maxBatchWait)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return redis.ErrClosed
	}
	r := b.next
	if r == nil {
		r = &redisRound{done: make(chan struct{})}
		b.next = r
	}
	r.queue = append(r.queue, add)
	if deadline.After(r.deadline) {
		r.deadline = deadline
	}
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the batch's goroutine. The commands of the round that had
// not started are not sent and their calls fail with redis.ErrClosed; the
// pool is closed first, so that a pipeline in progress ends at once.
func (b *redisBatch) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	r := b.next
	b.next = nil
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	if r != nil {
		r.err = redis.ErrClosed
		close(r.done)
	}
}
