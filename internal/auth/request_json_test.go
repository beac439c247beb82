package auth

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/config"
)

// checkEventJSON fails t unless the authorizer event's appendJSON writes
// exactly what awsevent.Marshal writes.
func checkEventJSON(t testing.TB, ev *requestEvent) {
	t.Helper()
	want, err := awsevent.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ev.appendJSON([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[1:], want) {
		t.Fatalf("appendJSON =\n%s\nawsevent.Marshal =\n%s", got[1:], want)
	}
}

var awkwardStrings = []string{"", "plain", `q " \ b`, "<html>&", "\x00\n\t\x1f", "bad \xff", "\u2028\u2029", "é😀"}

func TestRequestEventJSON(t *testing.T) {
	cert := awsevent.NewClientCert(&x509.Certificate{Raw: []byte("der"), SerialNumber: big.NewInt(7)})
	now := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(3, 4))
	pick := func() string {
		return awkwardStrings[r.IntN(len(awkwardStrings))] + awkwardStrings[r.IntN(len(awkwardStrings))]
	}
	for i := range 500 {
		a := NewRequest(config.RequestAuth{URL: "http://127.0.0.1:1/auth", Region: pick(), AccountID: pick()}, API{APIID: pick(), Stage: pick()}, nil)
		req := &Request{ConnectionID: pick(), Host: pick(), SourceIP: pick(), Peer: pick(), UserAgent: pick(),
			Header: http.Header{}, Query: url.Values{}, StageVariables: map[string]string{}}
		for range r.IntN(4) {
			req.Header[pick()] = []string{pick(), pick()}
			req.Query[pick()] = []string{pick()}
			req.StageVariables[pick()] = pick()
		}
		if i%3 == 0 {
			req.ClientCert = cert
			req.Time = now.Add(-time.Minute)
		}
		checkEventJSON(t, a.event(req, now))
	}
	// Nil maps, as a hand-made event may have them.
	checkEventJSON(t, &requestEvent{Type: "REQUEST"})
}

// BenchmarkRequestEventJSON compares encoding/json with appendJSON on an
// authorizer event with a browser's headers.
func BenchmarkRequestEventJSON(b *testing.B) {
	a := NewRequest(config.RequestAuth{URL: "http://127.0.0.1:1/auth"}, API{APIID: "api"}, nil)
	h := http.Header{}
	for _, kv := range []string{"Accept-Encoding=gzip, deflate, br", "Accept-Language=en-US,en;q=0.9", "Cache-Control=no-cache",
		"Origin=https://example.com", "Sec-Websocket-Key=dGhlIHNhbXBsZSBub25jZQ==", "Sec-Websocket-Version=13",
		"Sec-Websocket-Extensions=permessage-deflate; client_max_window_bits", "User-Agent=Mozilla/5.0 (X11; Linux x86_64)",
		"Connection=Upgrade", "Upgrade=websocket", "Cookie=session=abc"} {
		k, v, _ := strings.Cut(kv, "=")
		h.Set(k, v)
	}
	ev := a.event(&Request{ConnectionID: "R1kmxc2VNjMCFIA=", Header: h, Query: url.Values{"token": {"abc"}}, Host: "example.com", SourceIP: "192.0.2.1"}, time.Now())
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := awsevent.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = ev.appendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
