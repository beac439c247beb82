package redisregistry

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate/internal/registry"
)

// The bounds of ListConnections; variables so that tests can reach both
// ways of listing with a few connections.
var (
	// smallSet is the size up to which ListConnections reads a
	// principal's, topic's or node's index whole and sorts it; a larger one is found by walking
	// the ordered index of every id, where one match in every
	// ZCARD(all)/smallSet ids is expected.
	smallSet int64 = 4096
	// walkBudget bounds the ids one ListConnections call examines while
	// walking, so that no call holds Redis for long; a page cut short by
	// it holds fewer connections than its limit and continues after the
	// last id examined.
	walkBudget = 10000
)

// listLua collects the connections that match ARGV[3] principal, ARGV[4]
// topic and ARGV[5] node (each "" for any), at most ARGV[2] of them plus
// one to tell that more follow. With ARGV[6] "walk" it walks the sorted
// set of every id after ARGV[7] (none: from the start), at most walkBudget
// of them; otherwise ARGV[8] on are the candidate ids, in order. It
// returns {state, last id examined, record JSON, {topics}, ...}, where
// state is "more" (a match beyond the page was found), "budget" (the walk
// stopped at its budget) or "end".
var listScript = redis.NewScript(`
local p, limit = ARGV[1], tonumber(ARGV[2])
local principal, topic, node = ARGV[3], ARGV[4], ARGV[5]
local out = {'end', ''}
local found = 0
local function take(id)
  out[2] = id
  local h = redis.call('HMGET', p .. ':c:' .. id, 'p', 'n', 'r')
  if not h[3] then return true end
  if principal ~= '' and h[1] ~= principal then return true end
  if node ~= '' and h[2] ~= node then return true end
  if topic ~= '' and redis.call('SISMEMBER', p .. ':t:' .. topic, id) == 0 then return true end
  if found == limit then
    out[1] = 'more'
    return false
  end
  found = found + 1
  out[#out + 1] = h[3]
  out[#out + 1] = redis.call('SMEMBERS', p .. ':ct:' .. id)
  return true
end
if ARGV[6] == 'walk' then
  local from = '-'
  if ARGV[7] ~= '' then from = '(' .. ARGV[7] end
  local seen, budget = 0, tonumber(ARGV[8])
  while true do
    local batch = math.min(256, budget - seen)
    if batch <= 0 then
      out[1] = 'budget'
      return out
    end
    local ids = redis.call('ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, batch)
    for _, id in ipairs(ids) do
      if not take(id) then return out end
    end
    seen = seen + #ids
    if #ids < batch then return out end
    from = '(' .. ids[#ids]
  end
end
for i = 8, #ARGV do
  if not take(ARGV[i]) then return out end
end
return out
`)

// ListConnections implements registry.Registry, in connection id order. A
// principal's, a topic's or a node's connections, when there are at most
// smallSet, are read from that index and sorted; otherwise the call
// walks the sorted set of every id from the cursor, examining at most
// walkBudget ids. Either way each candidate's record is checked against
// every filter in one script, which returns the page's records and topics.
func (e *Engine) ListConnections(ctx context.Context, q registry.ListQuery) ([]registry.Listed, string, error) {
	if err := registry.CheckList(ctx, q); err != nil {
		return nil, "", err
	}
	after, paged, err := registry.ParseIDCursor(q.Cursor)
	if err != nil {
		return nil, "", err
	}
	if err := e.check(ctx); err != nil {
		return nil, "", err
	}
	candidates, walk, err := e.listCandidates(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("redis: list connections: %w", err)
	}
	args := []any{e.keys.prefix, q.Limit, q.PrincipalID, q.Topic, q.NodeID}
	if walk {
		args = append(args, "walk", after, walkBudget)
	} else {
		slices.Sort(candidates)
		if paged {
			i, found := slices.BinarySearch(candidates, after)
			if found {
				i++
			}
			candidates = candidates[i:]
		}
		args = append(args, "ids", "")
		for _, id := range candidates {
			args = append(args, id)
		}
	}
	raw, err := listScript.Run(ctx, e.client, []string{e.keys.all()}, args...).Slice()
	if err != nil {
		return nil, "", fmt.Errorf("redis: list connections: %w", err)
	}
	if len(raw) < 2 || len(raw)%2 != 0 {
		return nil, "", fmt.Errorf("redis: list connections: an answer of %d items", len(raw))
	}
	state, _ := raw[0].(string)
	last, _ := raw[1].(string)
	page := make([]registry.Listed, 0, (len(raw)-2)/2)
	for i := 2; i < len(raw); i += 2 {
		js, _ := raw[i].(string)
		rec, err := decodeRecord([]byte(js))
		if err != nil {
			return nil, "", err
		}
		topics, _ := raw[i+1].([]any)
		l := registry.Listed{Record: rec, Topics: make([]string, 0, len(topics))}
		for _, t := range topics {
			s, _ := t.(string)
			l.Topics = append(l.Topics, s)
		}
		page = append(page, l)
	}
	switch state {
	case "more":
		return page, registry.IDCursor(page[len(page)-1].ConnectionID), nil
	case "budget":
		return page, registry.IDCursor(last), nil
	}
	return page, "", nil
}

// listCandidates returns the ids of the index ListConnections reads for
// q — the first of the principal's, the topic's and the node's that q
// names and that holds at most smallSet ids — or reports that it walks
// every id instead.
func (e *Engine) listCandidates(ctx context.Context, q registry.ListQuery) (ids []string, walk bool, err error) {
	if q.PrincipalID != "" {
		key := e.keys.user(q.PrincipalID)
		n, err := e.client.ZCard(ctx, key).Result()
		if err != nil {
			return nil, false, err
		}
		if n <= smallSet {
			ids, err = e.client.ZRange(ctx, key, 0, -1).Result()
			return ids, false, err
		}
	}
	for _, key := range []string{topicKeyIf(e.keys, q.Topic), nodeKeyIf(e.keys, q.NodeID)} {
		if key == "" {
			continue
		}
		n, err := e.client.SCard(ctx, key).Result()
		if err != nil {
			return nil, false, err
		}
		if n <= smallSet {
			ids, err = e.client.SMembers(ctx, key).Result()
			return ids, false, err
		}
	}
	return nil, true, nil
}

func topicKeyIf(k keys, topic string) string {
	if topic == "" {
		return ""
	}
	return k.topic(topic)
}

func nodeKeyIf(k keys, node string) string {
	if node == "" {
		return ""
	}
	return k.node(node)
}
