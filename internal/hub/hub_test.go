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
