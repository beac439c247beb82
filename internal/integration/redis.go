package integration

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
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
	return &RedisConn{client: redis.NewClient(opt)}, nil
}

// Close closes the pool.
func (c *RedisConn) Close() error { return c.client.Close() }

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
		n, err := r.Conn.client.Publish(callCtx, channel, data).Result()
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
	id, err := r.Conn.client.XAdd(callCtx, args).Result()
	if err != nil {
		return nil, publishFailed(callCtx, "redis XADD", r.Timeout, err)
	}
	ack.Stream, ack.ID = stream, id
	return ack.response(), nil
}
