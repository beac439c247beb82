package cluster

import (
	"fmt"
	"testing"
)

func TestMergeTopics(t *testing.T) {
	ts := func(pairs ...any) []TopicSubscribers {
		var out []TopicSubscribers
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, TopicSubscribers{pairs[i].(string), pairs[i+1].(int)})
		}
		return out
	}
	for _, tc := range []struct {
		pages [][]TopicSubscribers
		limit int
		want  []TopicSubscribers
		more  bool
	}{
		{nil, 3, nil, false},
		{[][]TopicSubscribers{nil, nil}, 3, nil, false},
		{[][]TopicSubscribers{ts("a", 1, "c", 2), ts("b", 5, "c", 1)}, 3, ts("a", 1, "b", 5, "c", 3), false},
		{[][]TopicSubscribers{ts("a", 1, "c", 2), ts("b", 5, "c", 1)}, 2, ts("a", 1, "b", 5), true},
		{[][]TopicSubscribers{ts("x", 1), ts("x", 2), ts("x", 3)}, 1, ts("x", 6), false},
		{[][]TopicSubscribers{ts("a", 1, "b", 1), ts("a", 1, "b", 1)}, 1, ts("a", 2), true},
	} {
		got, more := mergeTopics(tc.pages, tc.limit)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || more != tc.more {
			t.Errorf("merge %v limit %d: %v %v, want %v %v", tc.pages, tc.limit, got, more, tc.want, tc.more)
		}
	}
}

// TestDecodeTopicPage: another node's page is taken only when it holds what
// was asked, in order, since the merge relies on it.
func TestDecodeTopicPage(t *testing.T) {
	page := func(items ...TopicSubscribers) []byte { return appendTopicPage(nil, items) }
	q := TopicQuery{Prefix: "o/", After: "o/1", Limit: 2}
	good := page(TopicSubscribers{"o/2", 1}, TopicSubscribers{"o/3", 4})
	if got, err := decodeTopicPage(good, q, 2); err != nil || len(got) != 2 || got[1] != (TopicSubscribers{"o/3", 4}) {
		t.Fatalf("%v %v", got, err)
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"too many":        page(TopicSubscribers{"o/2", 1}, TopicSubscribers{"o/3", 1}, TopicSubscribers{"o/4", 1}),
		"out of order":    page(TopicSubscribers{"o/3", 1}, TopicSubscribers{"o/2", 1}),
		"repeated":        page(TopicSubscribers{"o/2", 1}, TopicSubscribers{"o/2", 1}),
		"not after":       page(TopicSubscribers{"o/1", 1}),
		"other prefix":    page(TopicSubscribers{"p/2", 1}),
		"no subscribers":  page(TopicSubscribers{"o/2", 0}),
		"trailing bytes":  append(page(TopicSubscribers{"o/2", 1}), 0),
		"cut short":       good[:len(good)-2],
		"count past body": {9, 1},
	} {
		if got, err := decodeTopicPage(b, q, 2); err == nil {
			t.Errorf("%s: decoded %v", name, got)
		}
	}
}

// TestInspectRequestsMalformed: a stats or topics request that does not
// decode, or asks for too big a page, is answered statusFail.
func TestInspectRequestsMalformed(t *testing.T) {
	n := NewNode(Config{NodeID: "n1"}, NewMemory(), nil)
	for name, req := range map[string][]byte{
		"stats with a body": {byte(opStats), 1},
		"topics cut short":  {byte(opTopics), 3, 'a'},
		"topics limit 0":    appendInt(appendString(appendString([]byte{byte(opTopics)}, ""), ""), 0),
		"topics limit big":  appendInt(appendString(appendString([]byte{byte(opTopics)}, ""), ""), MaxTopicPage+2),
	} {
		if got := n.HandleRequest(req); len(got) != 1 || status(got[0]) != statusFail {
			t.Errorf("%s: answered %v", name, got)
		}
	}
}
