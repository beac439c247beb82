package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestChurnHeap churns connections that subscribe and are tailed through a
// gateway that logs nothing, to a backend that keeps nothing, and checks
// that the heap in use does not grow with the connections.
func TestChurnHeap(t *testing.T) {
	churnSoak(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"statusCode":200,"body":"ok"}`)
	}))
	t.Cleanup(backend.Close)
	b := &gt.Backend{Server: backend}
	cfg, err := config.Parse("test.yaml", []byte(churnConfig(b, "")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Management.Listen = "127.0.0.1:0", "127.0.0.1:0"
	g, err := gateway.New(cfg, gateway.Options{Getenv: func(k string) string {
		if k == "WSGATE_TEST_JWT_SECRET" {
			return gt.TestJWTSecret
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	gw := &gt.Gateway{Gateway: g, URL: g.ClientURL(), MgmtURL: g.ManagementURL()}
	const n = 100
	var heaps []uint64
	for r := range roundsFromEnv() + 2 {
		parallel(n, 6, func(i int) {
			c, err := dialChurn(t, gw, i, nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"action":"subscribe","topic":"news"}`))
			_, _, _ = c.Read(ctx)
			_ = c.Close(websocket.StatusNormalClosure, "bye")
		})
		waitEmpty(t, gw)
		time.Sleep(100 * time.Millisecond)
		h := heapInUse()
		heaps = append(heaps, h)
		t.Logf("round %d: %d KiB", r, h>>10)
	}
	// Round 0 warms up; from round 1 on, what a closed connection leaves
	// behind adds up. 2 KiB each is less than an edge connection and its
	// session hold.
	churned := uint64(n * (len(heaps) - 2))
	if grown := heaps[len(heaps)-1] - min(heaps[1], heaps[len(heaps)-1]); grown > churned*2<<10 {
		t.Fatalf("the heap grew by %d KiB over %d connections: %v", grown>>10, churned, heaps)
	}
}
