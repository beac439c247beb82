package redisregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate/internal/registry"
)

// The scripts reach the index keys of a connection's old record, which
// only the record names, by building their names from the prefix in ARGV[1]
// exactly as type keys does.

// removeLua is the common part of registering and unregistering: it takes
// connection ARGV[2] out of its user's and node's indexes and out of every
// topic. KEYS[1] is its record, KEYS[2] its set of topics.
const removeLua = `
local p, id = ARGV[1], ARGV[2]
local old = redis.call('HMGET', KEYS[1], 'p', 'n')
if old[1] and old[1] ~= '' then redis.call('ZREM', p .. ':u:' .. old[1], id) end
if old[2] then redis.call('SREM', p .. ':n:' .. old[2], id) end
for _, t in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('SREM', p .. ':t:' .. t, id)
end
redis.call('DEL', KEYS[2])
`

// registerScript replaces connection ARGV[2]'s record: ARGV[3] principal,
// ARGV[4] node, ARGV[5] score, ARGV[6] record JSON.
var registerScript = redis.NewScript(removeLua + `
redis.call('HSET', KEYS[1], 'p', ARGV[3], 'n', ARGV[4], 'r', ARGV[6])
if ARGV[3] ~= '' then redis.call('ZADD', p .. ':u:' .. ARGV[3], ARGV[5], id) end
redis.call('SADD', p .. ':n:' .. ARGV[4], id)
redis.call('ZADD', p .. ':all', 0, id)
return 1
`)

var unregisterScript = redis.NewScript(removeLua + `
redis.call('DEL', KEYS[1])
redis.call('ZREM', p .. ':all', id)
return 1
`)

// subscribeScript subscribes connection ARGV[1] (record KEYS[1], topics
// KEYS[2]) to topic ARGV[2] (KEYS[3]); it returns 0 for an unknown
// connection.
var subscribeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
`)

// unsubscribeScript is subscribeScript's reverse.
var unsubscribeScript = redis.NewScript(`
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
`)

// recordsLua returns the record JSON of each connection id in ids, skipping
// any without a record.
const recordsLua = `
local out = {}
for _, id in ipairs(ids) do
  local r = redis.call('HGET', ARGV[1] .. ':c:' .. id, 'r')
  if r then out[#out + 1] = r end
end
return out
`

// userScript returns the records of the sorted set KEYS[1], lowest score
// first; setScript those of the set KEYS[1].
var (
	userScript = redis.NewScript(`local ids = redis.call('ZRANGE', KEYS[1], 0, -1)` + recordsLua)
	setScript  = redis.NewScript(`local ids = redis.call('SMEMBERS', KEYS[1])` + recordsLua)
)

// storedRecord is a Record as JSON in Redis.
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

// Register implements registry.Registry. Replacing a record moves the
// connection out of its old user's and node's indexes and ends its topic
// subscriptions, as a new connection with the same id starts without any.
func (e *Engine) Register(ctx context.Context, rec registry.Record) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	js, err := json.Marshal(storedRecord(rec))
	if err != nil {
		return fmt.Errorf("redis: register %q: encoding the record: %w", rec.ConnectionID, err)
	}
	id := rec.ConnectionID
	err = registerScript.Run(ctx, e.client,
		[]string{e.keys.record(id), e.keys.connTopics(id)},
		e.keys.prefix, id, rec.PrincipalID, rec.NodeID,
		strconv.FormatInt(rec.ConnectedAt.UnixMilli(), 10), js,
	).Err()
	if err != nil {
		return fmt.Errorf("redis: register: %w", err)
	}
	return nil
}

// Unregister implements registry.Registry.
func (e *Engine) Unregister(ctx context.Context, connectionID string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	err := unregisterScript.Run(ctx, e.client,
		[]string{e.keys.record(connectionID), e.keys.connTopics(connectionID)},
		e.keys.prefix, connectionID,
	).Err()
	if err != nil {
		return fmt.Errorf("redis: unregister: %w", err)
	}
	return nil
}

// Lookup implements registry.Registry.
func (e *Engine) Lookup(ctx context.Context, connectionID string) (registry.Record, error) {
	if err := e.check(ctx); err != nil {
		return registry.Record{}, err
	}
	js, err := e.client.HGet(ctx, e.keys.record(connectionID), "r").Bytes()
	if errors.Is(err, redis.Nil) {
		return registry.Record{}, registry.ErrNotFound
	}
	if err != nil {
		return registry.Record{}, fmt.Errorf("redis: lookup: %w", err)
	}
	return decodeRecord(js)
}

// UserConnections implements registry.Registry. Connections made in the
// same millisecond come in the order of their ids.
func (e *Engine) UserConnections(ctx context.Context, principalID string) ([]registry.Record, error) {
	return e.records(ctx, userScript, e.keys.user(principalID))
}

// Subscribe implements registry.Registry.
func (e *Engine) Subscribe(ctx context.Context, connectionID, topic string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	n, err := subscribeScript.Run(ctx, e.client,
		[]string{e.keys.record(connectionID), e.keys.connTopics(connectionID), e.keys.topic(topic)},
		connectionID, topic,
	).Int()
	if err != nil {
		return fmt.Errorf("redis: subscribe: %w", err)
	}
	if n == 0 {
		return registry.ErrNotFound
	}
	return nil
}

// Unsubscribe implements registry.Registry.
func (e *Engine) Unsubscribe(ctx context.Context, connectionID, topic string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	err := unsubscribeScript.Run(ctx, e.client,
		[]string{e.keys.record(connectionID), e.keys.connTopics(connectionID), e.keys.topic(topic)},
		connectionID, topic,
	).Err()
	if err != nil {
		return fmt.Errorf("redis: unsubscribe: %w", err)
	}
	return nil
}

// TopicSubscribers implements registry.Registry.
func (e *Engine) TopicSubscribers(ctx context.Context, topic string) ([]registry.Record, error) {
	return e.records(ctx, setScript, e.keys.topic(topic))
}

// TopicCount implements registry.Registry.
func (e *Engine) TopicCount(ctx context.Context, topic string) (int, error) {
	if err := e.check(ctx); err != nil {
		return 0, err
	}
	n, err := e.client.SCard(ctx, e.keys.topic(topic)).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: topic count: %w", err)
	}
	return int(n), nil
}

// NodeConnections implements registry.Registry.
func (e *Engine) NodeConnections(ctx context.Context, nodeID string) ([]registry.Record, error) {
	return e.records(ctx, setScript, e.keys.node(nodeID))
}

// records runs a script that returns record JSONs and decodes them.
func (e *Engine) records(ctx context.Context, s *redis.Script, key string) ([]registry.Record, error) {
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	raw, err := s.Run(ctx, e.client, []string{key}, e.keys.prefix).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: reading records: %w", err)
	}
	out := make([]registry.Record, 0, len(raw))
	for _, js := range raw {
		rec, err := decodeRecord([]byte(js))
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func decodeRecord(js []byte) (registry.Record, error) {
	var s storedRecord
	if err := json.Unmarshal(js, &s); err != nil {
		return registry.Record{}, fmt.Errorf("redis: decoding a connection record: %w", err)
	}
	return registry.Record(s), nil
}
