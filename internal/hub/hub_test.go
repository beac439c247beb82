package hub

import (
	"fmt"
	"sync"
	"testing"
)

type fakeConn struct{ id string }

func (f *fakeConn) ID() string        { return f.id }
func (f *fakeConn) Send([]byte) error { return nil }
func (f *fakeConn) Close(int, string) {}
func (f *fakeConn) Info() Info        { return Info{} }

func TestHubAddGetRemove(t *testing.T) {
	h := New()
	a := &fakeConn{id: "a"}
	if !h.Add(a) {
		t.Fatal("first Add returned false")
	}
	if h.Add(&fakeConn{id: "a"}) {
		t.Fatal("Add with a duplicate id returned true")
	}
	if got := h.Get("a"); got != a {
		t.Fatalf("Get(a) = %v, want %v", got, a)
	}
	other := &fakeConn{id: "a"}
	h.Remove(other)
	if h.Get("a") != a {
		t.Fatal("Remove of a different Conn with the same id removed the live one")
	}
	h.Remove(a)
	if h.Get("a") != nil || h.Len() != 0 {
		t.Fatal("Remove left the connection in the hub")
	}
}

func TestHubConcurrent(t *testing.T) {
	h := New()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				c := &fakeConn{id: fmt.Sprintf("%d-%d", w, i)}
				h.Add(c)
				if h.Get(c.id) != c {
					t.Errorf("Get(%s) missed", c.id)
				}
				if i%2 == 0 {
					h.Remove(c)
				}
			}
		}(w)
	}
	wg.Wait()
	if got := h.Len(); got != 8*250 {
		t.Fatalf("Len = %d, want %d", got, 8*250)
	}
	n := 0
	h.Range(func(Conn) bool { n++; return true })
	if n != 8*250 {
		t.Fatalf("Range visited %d, want %d", n, 8*250)
	}
}

// sendConn records what Send and SendMessage were given.
type sendConn struct {
	fakeConn
	err  error
	sent [][]byte
}

func (s *sendConn) Send(data []byte) error {
	s.sent = append(s.sent, data)
	return s.err
}

type messageConn struct {
	fakeConn
	key    int
	err    error
	frames [][]byte
	binary []bool
}

var encodes int

func encodeForTest(data []byte, binary bool, key int) []byte {
	encodes++
	return fmt.Appendf(nil, "%d:%v:%s", key, binary, data)
}

func (m *messageConn) SendMessage(msg *Message) error {
	m.frames = append(m.frames, msg.Encoded(m.key, encodeForTest))
	m.binary = append(m.binary, msg.Binary())
	return m.err
}

func TestBroadcast(t *testing.T) {
	a := &messageConn{key: 1}
	b := &messageConn{key: 1}
	c := &messageConn{key: 2}
	gone := &messageConn{key: 1, err: ErrClosed}
	plain := &sendConn{}
	plainGone := &sendConn{err: ErrClosed}
	encodes = 0
	n := Broadcast([]Conn{a, b, gone, c, plain, plainGone}, []byte("hi"))
	if n != 4 {
		t.Fatalf("Broadcast reported %d, want 4", n)
	}
	if encodes != 2 {
		t.Fatalf("%d encodings for two keys in a row, want 2", encodes)
	}
	if string(a.frames[0]) != "1:false:hi" || string(c.frames[0]) != "2:false:hi" {
		t.Fatalf("frames %q and %q", a.frames[0], c.frames[0])
	}
	if &a.frames[0][0] != &b.frames[0][0] {
		t.Fatal("connections with the same key got different encodings")
	}
	if len(plain.sent) != 1 || string(plain.sent[0]) != "hi" {
		t.Fatalf("plain connection got %q", plain.sent)
	}
	Broadcast([]Conn{a}, []byte{0xff, 0xfe})
	if !a.binary[1] || a.binary[0] {
		t.Fatalf("binary flags %v, want [false true]", a.binary)
	}
	if Broadcast(nil, []byte("x")) != 0 {
		t.Fatal("Broadcast to nobody reported deliveries")
	}
}

func TestNewMessage(t *testing.T) {
	for _, tc := range []struct {
		data   string
		binary bool
	}{{"plain", false}, {"héllo", false}, {"\xff", true}, {"a\xc3", true}, {"", false}} {
		if m := NewMessage([]byte(tc.data)); m.Binary() != tc.binary || string(m.Data()) != tc.data {
			t.Errorf("NewMessage(%q): binary %v, want %v", tc.data, m.Binary(), tc.binary)
		}
	}
}

type nopMessageConn struct{ fakeConn }

func (nopMessageConn) SendMessage(m *Message) error {
	_ = m.Encoded(1, func(data []byte, _ bool, _ int) []byte { return data })
	return nil
}

func BenchmarkBroadcast(b *testing.B) {
	conns := make([]Conn, 10000)
	for i := range conns {
		conns[i] = &nopMessageConn{}
	}
	data := []byte("wsbench t=0000000000000000000 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	b.ReportAllocs()
	for b.Loop() {
		Broadcast(conns, data)
	}
}
