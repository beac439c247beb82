package inspect

import (
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/hub"
)

func TestLogRing(t *testing.T) {
	l := NewLog("gw-1")
	if got := l.Recent(KindRefused, 10); len(got) != 0 {
		t.Fatalf("empty log: %v", got)
	}
	base := time.Unix(1000, 0)
	for i := range LogSize + 5 {
		l.Add(KindRefused, Entry{Time: base.Add(time.Duration(i) * time.Second), Status: i})
	}
	l.Add(KindAuthorizer, Entry{Decision: DecisionAllow})
	got := l.Recent(KindRefused, 2000)
	if len(got) != LogSize {
		t.Fatalf("%d entries, want %d", len(got), LogSize)
	}
	if got[0].Status != LogSize+4 || got[LogSize-1].Status != 5 || got[0].NodeID != "gw-1" {
		t.Fatalf("newest %+v, oldest %+v", got[0], got[LogSize-1])
	}
	if got := l.Recent(KindRefused, 3); len(got) != 3 || got[2].Status != LogSize+2 {
		t.Fatalf("3 newest: %+v", got)
	}
	a := l.Recent(KindAuthorizer, 10)
	if len(a) != 1 || a[0].Decision != DecisionAllow || a[0].Time.IsZero() {
		t.Fatalf("authorizer entries: %+v", a)
	}
	if l.Recent("other", 10) != nil || (*Log)(nil).Recent(KindRefused, 1) != nil {
		t.Fatal("an unknown kind or a nil log has entries")
	}
	(*Log)(nil).Add(KindRefused, Entry{})
	l.Add("other", Entry{})
}

func TestLogCutsLongFields(t *testing.T) {
	l := NewLog("n")
	long := strings.Repeat("é", 300)
	l.Add(KindRefused, Entry{UserAgent: long, Reason: long, Path: "/" + long})
	e := l.Recent(KindRefused, 1)[0]
	for _, f := range []string{e.UserAgent, e.Reason, e.Path} {
		if len(f) > maxField || !strings.HasPrefix(long, strings.TrimPrefix(f, "/")) {
			t.Errorf("field cut to %d bytes: %q", len(f), f)
		}
	}
}

// fakeConn is a tappable connection.
type fakeConn struct {
	id  string
	tap atomic.Pointer[hub.Tap]
}

func (c *fakeConn) ID() string        { return c.id }
func (c *fakeConn) Send([]byte) error { return nil }
func (c *fakeConn) Close(int, string) {}
func (c *fakeConn) Info() hub.Info    { return hub.Info{} }
func (c *fakeConn) SetTap(t hub.Tap) {
	if t == nil {
		c.tap.Store(nil)
		return
	}
	c.tap.Store(&t)
}

func (c *fakeConn) message(out bool, data string, binary bool) {
	if t := c.tap.Load(); t != nil {
		(*t).Message(out, []byte(data), binary)
	}
}

// clock is a settable clock.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *clock                   { c := &clock{}; c.ns.Store(time.Unix(2000, 0).UnixNano()); return c }

func TestTails(t *testing.T) {
	clk := newClock()
	ts := NewTails(clk.now)
	c := &fakeConn{id: "c1"}
	if err := ts.Start(c); err != ErrTailsOff {
		t.Fatalf("off: %v", err)
	}
	ts.SetEnabled(true)
	if _, err := ts.Read("c1", 0); err != ErrNoTail {
		t.Fatalf("read without a tail: %v", err)
	}
	c.message(false, "before", false)
	if err := ts.Start(c); err != nil {
		t.Fatal(err)
	}
	c.message(false, `{"action":"x","token":"s3cret"}`, false)
	c.message(true, "reply", false)
	p, err := ts.Read("c1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 2 || p.Next != 2 || p.Dropped != 0 {
		t.Fatalf("page %+v", p)
	}
	if it := p.Items[0]; it.Seq != 1 || it.Out || it.Data != `{"action":"x","token":"[redacted]"}` || it.Bytes != 31 || it.Truncated || !it.Time.Equal(clk.now()) {
		t.Fatalf("item %+v", it)
	}
	if it := p.Items[1]; it.Seq != 2 || !it.Out || it.Data != "reply" {
		t.Fatalf("item %+v", it)
	}
	if p, _ := ts.Read("c1", 2); len(p.Items) != 0 || p.Next != 2 || p.Dropped != 0 {
		t.Fatalf("nothing new: %+v", p)
	}
	if p, _ := ts.Read("c1", 7); len(p.Items) != 0 || p.Next != 7 {
		t.Fatalf("after beyond the last: %+v", p)
	}
	// 150 more: the ring holds seq 53..152.
	for i := range 150 {
		c.message(i%2 == 0, fmt.Sprint(i), false)
	}
	p, _ = ts.Read("c1", 2)
	if len(p.Items) != TailSize || p.Items[0].Seq != 53 || p.Next != 152 || p.Dropped != 50 {
		t.Fatalf("overflowed: %d items from %d, next %d, dropped %d", len(p.Items), p.Items[0].Seq, p.Next, p.Dropped)
	}
	p, _ = ts.Read("c1", 150)
	if len(p.Items) != 2 || p.Items[0].Seq != 151 || p.Dropped != 0 {
		t.Fatalf("tail end: %+v", p)
	}

	// Extending moves the lapse.
	clk.advance(TailLapse - time.Second)
	if err := ts.Start(c); err != nil {
		t.Fatal(err)
	}
	clk.advance(TailLapse - time.Second)
	if _, err := ts.Read("c1", 0); err != nil {
		t.Fatalf("extended tail: %v", err)
	}
	clk.advance(time.Second)
	if _, err := ts.Read("c1", 0); err != ErrNoTail {
		t.Fatalf("lapsed tail: %v", err)
	}
	if c.tap.Load() != nil || ts.Open() != 0 {
		t.Fatal("a lapsed tail is still set on its connection")
	}
	// A new tail starts at seq 1.
	if err := ts.Start(c); err != nil {
		t.Fatal(err)
	}
	c.message(false, "again", false)
	if p, _ := ts.Read("c1", 0); len(p.Items) != 1 || p.Items[0].Seq != 1 {
		t.Fatalf("new tail: %+v", p)
	}
	ts.Stop("c1")
	ts.Stop("c1")
	if _, err := ts.Read("c1", 0); err != ErrNoTail || c.tap.Load() != nil {
		t.Fatalf("stopped tail: %v", err)
	}
}

func TestTailCuts(t *testing.T) {
	ts := NewTails(nil)
	ts.SetEnabled(true)
	c := &fakeConn{id: "c"}
	if err := ts.Start(c); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", TailDataBytes-1) + "é" + "zz"
	c.message(true, long, false)
	bin := string(make([]byte, 4000))
	c.message(false, bin, true)
	c.message(false, "Bearer abc", true)
	p, _ := ts.Read("c", 0)
	if it := p.Items[0]; !it.Truncated || it.Bytes != len(long) || it.Data != strings.Repeat("a", TailDataBytes-1) {
		t.Fatalf("long text: truncated %v, %d bytes, %d kept", it.Truncated, it.Bytes, len(it.Data))
	}
	if it := p.Items[1]; !it.Truncated || !it.Binary || it.Bytes != 4000 || len(it.Data) != TailDataBytes {
		t.Fatalf("long binary: %+v", it)
	}
	raw, _ := base64.StdEncoding.DecodeString(p.Items[2].Data)
	if string(raw) != "[redacted]" || p.Items[2].Truncated {
		t.Fatalf("binary bearer: %q", raw)
	}
}

func TestTailsLimit(t *testing.T) {
	clk := newClock()
	ts := NewTails(clk.now)
	ts.SetEnabled(true)
	conns := make([]*fakeConn, MaxTails+1)
	for i := range conns {
		conns[i] = &fakeConn{id: fmt.Sprint(i)}
	}
	for _, c := range conns[:MaxTails] {
		if err := ts.Start(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.Start(conns[MaxTails]); err != ErrTooManyTails {
		t.Fatalf("one tail too many: %v", err)
	}
	// Extending an open one is not a new one.
	if err := ts.Start(conns[0]); err != nil {
		t.Fatal(err)
	}
	ts.Drop("1")
	if err := ts.Start(conns[MaxTails]); err != nil {
		t.Fatalf("after a drop: %v", err)
	}
	// Lapsed tails free their places, by a sweep or when one is needed.
	clk.advance(TailLapse)
	if err := ts.Start(conns[1]); err != nil {
		t.Fatalf("after the others lapsed: %v", err)
	}
	if ts.Open() != 1 {
		t.Fatalf("%d open, want 1", ts.Open())
	}
	clk.advance(TailLapse)
	ts.Sweep()
	if ts.Open() != 0 || conns[1].tap.Load() != nil {
		t.Fatal("the sweep left a lapsed tail")
	}
	// Turning tails off stops them all.
	_ = ts.Start(conns[2])
	ts.SetEnabled(false)
	if ts.Open() != 0 || conns[2].tap.Load() != nil {
		t.Fatal("tails left open when turned off")
	}
	if _, err := ts.Read("2", 0); err != ErrTailsOff {
		t.Fatalf("read while off: %v", err)
	}
}

// TestTailConcurrent records from several goroutines while reading; run
// with -race.
func TestTailConcurrent(t *testing.T) {
	ts := NewTails(nil)
	ts.SetEnabled(true)
	c := &fakeConn{id: "c"}
	_ = ts.Start(c)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				c.message(g%2 == 0, fmt.Sprint(i), false)
			}
		}()
	}
	var next uint64
	seen := 0
	for range 200 {
		p, err := ts.Read("c", next)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			if it.Seq <= next {
				t.Fatalf("seq %d after %d", it.Seq, next)
			}
		}
		seen += len(p.Items) + int(p.Dropped)
		next = p.Next
	}
	wg.Wait()
	p, _ := ts.Read("c", next)
	seen += len(p.Items) + int(p.Dropped)
	if seen != 2000 {
		t.Fatalf("read and dropped %d, want 2000", seen)
	}
}

// BenchmarkTailMessage is the cost a tailed connection pays per message:
// redaction and a copy of up to TailDataBytes.
func BenchmarkTailMessage(b *testing.B) {
	ts := NewTails(nil)
	ts.SetEnabled(true)
	c := &fakeConn{id: "c"}
	_ = ts.Start(c)
	tap := *c.tap.Load()
	msg := []byte(`{"action":"sendmessage","token":"abc","message":"` + strings.Repeat("x", 200) + `"}`)
	b.ReportAllocs()
	for b.Loop() {
		tap.Message(false, msg, false)
	}
}
