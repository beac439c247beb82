package auth

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var cacheT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestCacheKey(t *testing.T) {
	tests := []struct {
		name string
		a, b [][]string
		same bool
	}{
		{"same values", [][]string{{"tok"}, {"csrf"}}, [][]string{{"tok"}, {"csrf"}}, true},
		{"same repeated values", [][]string{{"x", "y"}}, [][]string{{"x", "y"}}, true},
		{"order of sources matters", [][]string{{"tok"}, {"csrf"}}, [][]string{{"csrf"}, {"tok"}}, false},
		{"one value differs", [][]string{{"tok"}, {"csrf-1"}}, [][]string{{"tok"}, {"csrf-2"}}, false},
		{"split differs", [][]string{{"ab"}, {"c"}}, [][]string{{"a"}, {"bc"}}, false},
		{"split at a NUL differs", [][]string{{"a\x00b"}, {"c"}}, [][]string{{"a"}, {"b\x00c"}}, false},
		{"split within a source differs", [][]string{{"a\x00b"}}, [][]string{{"a", "b"}}, false},
		{"a value moved to the next source", [][]string{{"x", "y"}, {}}, [][]string{{"x"}, {"y"}}, false},
		{"extra empty value", [][]string{{"tok"}}, [][]string{{"tok"}, {""}}, false},
		{"empty value against none", [][]string{{""}}, [][]string{{}}, false},
		{"earlier repeated value differs", [][]string{{"x", "y"}}, [][]string{{"z", "y"}}, false},
		{"only the last value alike", [][]string{{"x", "y"}}, [][]string{{"y"}}, false},
		{"order of repeated values matters", [][]string{{"x", "y"}}, [][]string{{"y", "x"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := CacheKey(tt.a), CacheKey(tt.b)
			if (a == b) != tt.same {
				t.Errorf("CacheKey(%q) = %s, CacheKey(%q) = %s; want same = %v", tt.a, a, tt.b, b, tt.same)
			}
		})
	}
	key := CacheKey([][]string{{"Bearer tok"}, {"csrf-1"}})
	if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
		t.Errorf("CacheKey() = %s; want 64 hex digits of a SHA-256", key)
	}
	if strings.Contains(key, "tok") || strings.Contains(key, "csrf") {
		t.Errorf("CacheKey() = %s holds a value", key)
	}
}

func TestCacheDecisions(t *testing.T) {
	alice := &Identity{PrincipalID: "alice", Context: map[string]any{"role": "admin"}}
	tests := []struct {
		name      string
		id        *Identity
		deny      *Denial
		wantKept  bool
		wantAllow bool
	}{
		{"allow", alice, nil, true, true},
		{"deny 401", nil, Unauthorized("expired"), true, false},
		{"deny 403", nil, Forbidden("policy"), true, false},
		{"failure 500", nil, Failed("authorizer down"), false, false},
		{"failure 502", nil, &Denial{Status: http.StatusBadGateway, Message: "Bad Gateway"}, false, false},
		{"plain error as a denial", nil, AsDenial(errors.New("dial tcp: refused")), false, false},
		{"neither", nil, nil, false, false},
		{"both", alice, Forbidden("policy"), false, false},
		{"allow expired", &Identity{PrincipalID: "bob", ExpiresAt: cacheT0}, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCache(time.Minute, 10)
			c.Put("k", tt.id, tt.deny, cacheT0)
			id, deny, ok := c.Get("k", cacheT0)
			if ok != tt.wantKept {
				t.Fatalf("Get() ok = %v; want %v", ok, tt.wantKept)
			}
			if !ok {
				if id != nil || deny != nil || c.Len() != 0 {
					t.Errorf("Get() = %v, %v on a miss, Len() = %d", id, deny, c.Len())
				}
				return
			}
			if tt.wantAllow {
				if deny != nil || id == nil || id.PrincipalID != tt.id.PrincipalID || id.Context["role"] != "admin" {
					t.Errorf("Get() = %+v, %v; want the identity %+v", id, deny, tt.id)
				}
				return
			}
			if id != nil || deny == nil || deny.Status != tt.deny.Status || deny.Reason != tt.deny.Reason {
				t.Errorf("Get() = %+v, %v; want the denial %v", id, deny, tt.deny)
			}
		})
	}
}

// TestCacheDenyStaysDeny checks that nothing but a new decision turns a
// cached Deny into an Allow: not a later failure, not another key's Allow,
// not a change to the Denial the caller passed in.
func TestCacheDenyStaysDeny(t *testing.T) {
	c := NewCache(time.Minute, 10)
	d := Forbidden("revoked")
	d.Header = http.Header{"X-Reason": {"revoked"}}
	c.Put(CacheKey([][]string{{"tok-1"}}), nil, d, cacheT0)
	c.Put(CacheKey([][]string{{"tok-2"}}), &Identity{PrincipalID: "bob"}, nil, cacheT0)
	c.Put(CacheKey([][]string{{"tok-1"}}), nil, Failed("timeout"), cacheT0.Add(time.Second))
	c.Put(CacheKey([][]string{{"tok-1"}}), nil, nil, cacheT0.Add(time.Second))
	d.Status, d.Header = http.StatusOK, nil

	for _, at := range []time.Duration{0, time.Second, time.Minute - 1} {
		id, deny, ok := c.Get(CacheKey([][]string{{"tok-1"}}), cacheT0.Add(at))
		if !ok || id != nil || deny == nil || deny.Status != http.StatusForbidden || deny.Header.Get("X-Reason") != "revoked" {
			t.Fatalf("Get(+%v) = %+v, %v, %v; want the cached 403", at, id, deny, ok)
		}
	}
	c.Put(CacheKey([][]string{{"tok-1"}}), &Identity{PrincipalID: "alice"}, nil, cacheT0.Add(2*time.Second))
	if id, deny, ok := c.Get(CacheKey([][]string{{"tok-1"}}), cacheT0.Add(2*time.Second)); !ok || deny != nil || id.PrincipalID != "alice" {
		t.Errorf("Get() after a new Allow = %+v, %v, %v; want alice", id, deny, ok)
	}
	if c.Len() != 2 {
		t.Errorf("Len() = %d; want 2", c.Len())
	}
}

func TestCachePutCopies(t *testing.T) {
	c := NewCache(time.Minute, 10)
	id := &Identity{PrincipalID: "alice", Context: map[string]any{"role": "user"}}
	c.Put("k", id, nil, cacheT0)
	id.PrincipalID, id.Context["role"] = "mallory", "admin"
	got, _, ok := c.Get("k", cacheT0)
	if !ok || got.PrincipalID != "alice" || got.Context["role"] != "user" {
		t.Errorf("Get() = %+v after the caller changed its identity; want alice, role user", got)
	}
}

func TestCacheExpiry(t *testing.T) {
	const ttl = time.Minute
	tests := []struct {
		name      string
		id        *Identity
		deny      *Denial
		wantUntil time.Duration // the entry is found before cacheT0+wantUntil only
	}{
		{"alice without exp", &Identity{PrincipalID: "a"}, nil, ttl},
		{"deny", nil, Unauthorized("bad"), ttl},
		{"alice expiring before ttl", &Identity{PrincipalID: "a", ExpiresAt: cacheT0.Add(10 * time.Second)}, nil, 10 * time.Second},
		{"alice expiring after ttl", &Identity{PrincipalID: "a", ExpiresAt: cacheT0.Add(time.Hour)}, nil, ttl},
		{"alice expiring at ttl", &Identity{PrincipalID: "a", ExpiresAt: cacheT0.Add(ttl)}, nil, ttl},
		{"alice expiring in 1ns", &Identity{PrincipalID: "a", ExpiresAt: cacheT0.Add(1)}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCache(ttl, 10)
			c.Put("k", tt.id, tt.deny, cacheT0)
			if _, _, ok := c.Get("k", cacheT0.Add(tt.wantUntil-1)); !ok {
				t.Fatalf("Get(+%v) missed; want a hit", tt.wantUntil-1)
			}
			if _, _, ok := c.Get("k", cacheT0.Add(tt.wantUntil)); ok {
				t.Fatalf("Get(+%v) hit; want expired", tt.wantUntil)
			}
			if c.Len() != 0 {
				t.Errorf("Len() = %d after expiry; want 0", c.Len())
			}
			if _, _, ok := c.Get("k", cacheT0); ok {
				t.Errorf("Get() of a dropped entry hit")
			}
		})
	}
}

func TestCacheEviction(t *testing.T) {
	tests := []struct {
		name string
		size int
		ops  []string // "put K" or "get K"
		want []string // keys present afterwards
	}{
		{"under size", 3, []string{"put a", "put b"}, []string{"a", "b"}},
		{"oldest goes", 2, []string{"put a", "put b", "put c"}, []string{"b", "c"}},
		{"get refreshes", 2, []string{"put a", "put b", "get a", "put c"}, []string{"a", "c"}},
		{"put refreshes", 2, []string{"put a", "put b", "put a", "put c"}, []string{"a", "c"}},
		{"miss does not refresh", 2, []string{"put a", "put b", "get z", "put c"}, []string{"b", "c"}},
		{"size one", 1, []string{"put a", "put b", "get a", "put c"}, []string{"c"}},
		{"many", 3, []string{"put a", "put b", "put c", "put d", "get b", "put e", "put f"}, []string{"b", "e", "f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCache(time.Minute, tt.size)
			for _, op := range tt.ops {
				verb, key, _ := strings.Cut(op, " ")
				if verb == "put" {
					c.Put(key, &Identity{PrincipalID: key}, nil, cacheT0)
				} else {
					c.Get(key, cacheT0)
				}
			}
			if c.Len() != len(tt.want) {
				t.Errorf("Len() = %d; want %d", c.Len(), len(tt.want))
			}
			for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
				want := slices.Contains(tt.want, k)
				if id, _, ok := c.Get(k, cacheT0); ok != want || (ok && id.PrincipalID != k) {
					t.Errorf("Get(%q) = %v, %v; want present = %v", k, id, ok, want)
				}
			}
		})
	}
}

func TestCacheDisabled(t *testing.T) {
	tests := []struct {
		name string
		c    *Cache
	}{
		{"nil", nil},
		{"zero ttl", NewCache(0, 10)},
		{"negative ttl", NewCache(-time.Second, 10)},
		{"zero size", NewCache(time.Minute, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Put("k", &Identity{PrincipalID: "a"}, nil, cacheT0)
			if _, _, ok := tt.c.Get("k", cacheT0); ok || tt.c.Len() != 0 {
				t.Errorf("disabled cache stored an entry")
			}
		})
	}
}

func TestCacheConcurrent(t *testing.T) {
	const size = 16
	c := NewCache(time.Minute, size)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := fmt.Sprintf("k%d", (g*7+i)%40)
				now := cacheT0.Add(time.Duration(i) * time.Millisecond)
				if i%3 == 0 {
					c.Put(key, nil, Forbidden("x"), now)
				} else if i%3 == 1 {
					c.Put(key, &Identity{PrincipalID: key}, nil, now)
				}
				if id, deny, ok := c.Get(key, now); ok && (id == nil) == (deny == nil) {
					t.Errorf("Get(%q) = %v, %v; want exactly one of them", key, id, deny)
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > size {
		t.Errorf("Len() = %d; want at most %d", n, size)
	}
}

func BenchmarkCacheGet(b *testing.B) {
	c := NewCache(time.Minute, 10000)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = CacheKey([][]string{{fmt.Sprintf("token-%d", i)}})
		c.Put(keys[i], &Identity{PrincipalID: fmt.Sprint(i), Context: map[string]any{"n": float64(i)}}, nil, cacheT0)
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, _, ok := c.Get(keys[i%len(keys)], cacheT0); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		key := CacheKey([][]string{{"absent"}})
		for b.Loop() {
			c.Get(key, cacheT0)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.Get(keys[i%len(keys)], cacheT0)
				i++
			}
		})
	})
}
