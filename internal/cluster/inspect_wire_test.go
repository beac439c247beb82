package cluster

import (
	"reflect"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/inspect"
)

func TestInspectWireRoundTrip(t *testing.T) {
	e := inspect.Entry{Time: time.Unix(0, 1765000000123456789), NodeID: "gw-1", SourceIP: "203.0.113.7",
		Reason: "token expired", Authorizer: "jwt", Decision: "deny", Latency: 1250 * time.Microsecond,
		CacheHit: true, PrincipalID: "p", Status: 401, UserAgent: "ua", Path: "/prod"}
	r := reader{b: appendEntry(nil, &e)}
	if got := r.entry(); r.err != nil || len(r.b) != 0 || !got.Time.Equal(e.Time) || got.Time.UnixNano() != e.Time.UnixNano() {
		t.Fatalf("entry: %+v, %v", got, r.err)
	} else {
		got.Time = e.Time
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("entry: %+v, want %+v", got, e)
		}
	}
	p := inspect.TailPage{Next: 9, Dropped: 3, Items: []inspect.TailItem{
		{Seq: 8, Time: time.Unix(0, 5), Out: true, Data: "x", Bytes: 1},
		{Seq: 9, Time: time.Unix(0, 6), Data: "AAAA", Bytes: 5000, Truncated: true, Binary: true},
	}}
	r = reader{b: appendTailPage(nil, &p)}
	got := r.tailPage()
	if r.err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("page: %+v, %v; want %+v", got, r.err, p)
	}
	// Cut short anywhere, a page does not decode.
	whole := appendTailPage(nil, &p)
	for n := range len(whole) {
		r := reader{b: whole[:n]}
		r.tailPage()
		if r.err == nil {
			t.Fatalf("a page cut at %d of %d bytes decoded", n, len(whole))
		}
	}
}

func TestInspectMalformedRequests(t *testing.T) {
	ts := inspect.NewTails(nil)
	ts.SetEnabled(true)
	n := NewNode(Config{NodeID: "n1", Log: inspect.NewLog("n1"), Tails: ts}, NewMemory(), hub.New())
	for _, req := range [][]byte{
		{byte(opLog)},
		append(appendString([]byte{byte(opLog)}, "refused"), 0xff),                 // a bad uvarint
		appendInt(appendString([]byte{byte(opLog)}, "refused"), inspect.LogSize+1), // more than a node keeps
		{byte(opTailStart)},
		{byte(opTailRead), 1, 'x'},
		{byte(opTailStop), 5, 'a'},
	} {
		if got := n.HandleRequest(req); len(got) != 1 || status(got[0]) != statusFail {
			t.Errorf("%v: answered %v", req, got)
		}
	}
	// Well formed, for a connection this node does not hold.
	if got := n.HandleRequest(appendString([]byte{byte(opTailStart)}, "c1")); len(got) != 1 || status(got[0]) != statusGone {
		t.Errorf("start on an unknown connection: %v", got)
	}
	if got := n.HandleRequest(appendInt(appendString([]byte{byte(opLog)}, "refused"), 10)); len(got) != 1 || got[0] != 0 {
		t.Errorf("empty log: %v", got)
	}
}
