package registry

import (
	"context"
	"slices"
	"strings"

	"github.com/google/btree"
)

// idCursorPrefix starts the cursors of registries that list in the order
// of connection ids: the rest is the last id of the page.
const idCursorPrefix = "id:"

// IDCursor returns the cursor that continues a listing in connection id
// order after id.
func IDCursor(id string) string { return idCursorPrefix + id }

// ParseIDCursor returns the id an IDCursor names, and false for the empty
// cursor of a first page. Any other cursor is ErrBadCursor.
func ParseIDCursor(c string) (after string, ok bool, err error) {
	if c == "" {
		return "", false, nil
	}
	if !strings.HasPrefix(c, idCursorPrefix) || len(c) == len(idCursorPrefix) {
		return "", false, ErrBadCursor
	}
	return c[len(idCursorPrefix):], true, nil
}

// CheckList returns the error ListConnections returns for q before it
// reaches the store, if any: ErrBadLimit or the context's error.
func CheckList(ctx context.Context, q ListQuery) error {
	if q.Limit < 1 {
		return ErrBadLimit
	}
	return ctx.Err()
}

// smallSet is the size up to which Memory lists a principal's, topic's or
// node's index by sorting it; a larger index is found by walking every id in order, where
// one match in every len(records)/smallSet ids is expected.
const smallSet = 4096

// ListConnections implements Registry. It lists in connection id order:
// a principal's, a topic's or a node's connections, when there are at most
// smallSet, by sorting that index; otherwise by walking an ordered index of every id
// from the cursor on, so that no page costs a scan of all connections
// before its own.
func (m *Memory) ListConnections(ctx context.Context, q ListQuery) ([]Listed, string, error) {
	if err := CheckList(ctx, q); err != nil {
		return nil, "", err
	}
	after, paged, err := ParseIDCursor(q.Cursor)
	if err != nil {
		return nil, "", err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Listed
	next := ""
	// take adds id's connection when it matches, and reports whether to
	// go on.
	take := func(id string) bool {
		if paged && id <= after {
			return true
		}
		e := m.records[id]
		if e == nil || (q.PrincipalID != "" && e.rec.PrincipalID != q.PrincipalID) ||
			(q.NodeID != "" && e.rec.NodeID != q.NodeID) ||
			(q.Topic != "" && !slices.Contains(e.topics, q.Topic)) {
			return true
		}
		if len(out) == q.Limit {
			next = IDCursor(out[len(out)-1].ConnectionID)
			return false
		}
		out = append(out, Listed{Record: e.rec, Topics: slices.Clone(e.topics)})
		return true
	}
	var index []string
	sorted := true
	switch {
	case q.PrincipalID != "" && m.users[q.PrincipalID].live() <= smallSet:
		m.users[q.PrincipalID].each(func(id string) { index = append(index, id) })
	case q.Topic != "" && len(m.topics[q.Topic]) <= smallSet:
		index = setKeys(m.topics[q.Topic])
	case q.NodeID != "" && len(m.nodes[q.NodeID]) <= smallSet:
		index = setKeys(m.nodes[q.NodeID])
	default:
		sorted = false
	}
	if sorted {
		slices.Sort(index)
		for _, id := range index {
			if !take(id) {
				break
			}
		}
		return out, next, nil
	}
	if m.all != nil {
		m.all.AscendGreaterOrEqual(after, take)
	}
	return out, next, nil
}

func setKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}

// newIDIndex returns an empty ordered set of connection ids.
func newIDIndex() *btree.BTreeG[string] {
	return btree.NewG(32, func(a, b string) bool { return a < b })
}
