package redisregistry

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate/internal/registry"
)

// reserveScript takes a slot of the user whose index is KEYS[1] and whose
// reservations are the sorted set KEYS[2], scored by expiry in Redis's own
// clock (TIME), so that the nodes' clocks need not agree. ARGV[1] is the
// connection id, ARGV[2] the limit, ARGV[3] the reservation's lifetime in
// milliseconds. It returns 1 when it reserved, 0 when the user's other
// connections — registered, or reserved and not registered — are at the
// limit; then the connection keeps no reservation. The set expires with
// its last reservation.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local others = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], id) then others = others - 1 end
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if m ~= id and not redis.call('ZSCORE', KEYS[1], m) then others = others + 1 end
end
if others >= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[2], id)
  return 0
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), id)
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return 1
`)

// ReserveUserSlot implements registry.Registry: one script.
func (e *Engine) ReserveUserSlot(ctx context.Context, principalID, connectionID string, limit int, ttl time.Duration) (bool, error) {
	if err := registry.CheckSlot(ctx, principalID, limit); err != nil {
		return false, err
	}
	if err := e.check(ctx); err != nil {
		return false, err
	}
	n, err := reserveScript.Run(ctx, e.client,
		[]string{e.keys.user(principalID), e.keys.userSlots(principalID)},
		connectionID, limit, strconv.FormatInt(max(ttl.Milliseconds(), 1), 10),
	).Int()
	if err != nil {
		return false, fmt.Errorf("redis: reserve user slot: %w", err)
	}
	return n == 1, nil
}

// ReleaseUserSlot implements registry.Registry.
func (e *Engine) ReleaseUserSlot(ctx context.Context, principalID, connectionID string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	if err := e.client.ZRem(ctx, e.keys.userSlots(principalID), connectionID).Err(); err != nil {
		return fmt.Errorf("redis: release user slot: %w", err)
	}
	return nil
}
