package gateway_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestChurnReloads reloads the configuration many times while connections
// come and go, and checks that the replaced configurations give back
// their goroutines and file descriptors.
func TestChurnReloads(t *testing.T) {
	churnSoak(t)
	b := churnBackend(t)
	text := churnConfig(b, "")
	g := gt.Start(t, text)
	g.SetYAML(text)
	cycle := func(k int) {
		var conns []*websocket.Conn
		for i := range 4 {
			c, err := dialChurn(t, g, i, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			id := whoAmI(t, c)
			subscribeAndTail(t, g, c, id)
			conns = append(conns, c)
		}
		g.SetYAML(strings.Replace(text, "cache_ttl: 300ms", fmt.Sprintf("cache_ttl: %dms", 300+k%2), 1))
		if status, _, body := g.MgmtDo(t, "POST", "/reload", nil, nil); status != 200 {
			t.Fatalf("reload: %d %s", status, body)
		}
		for _, c := range conns {
			_ = c.Close(websocket.StatusNormalClosure, "bye")
		}
		waitEmpty(t, g)
		gt.Eventually(t, func() bool { return g.Retiring() == 0 }, "the replaced configuration to be closed")
	}
	for k := range 3 {
		cycle(k)
	}
	base := settled(t, g, [2]int{}, [2]int{})
	const reloads = 30
	for k := range reloads {
		cycle(k)
	}
	now := settled(t, g, base, [2]int{5, 5})
	t.Logf("after %d reloads: %d goroutines, %d fds; before %d, %d", reloads, now[0], now[1], base[0], base[1])
	if now[0] > base[0]+5 || now[1] > base[1]+5 {
		buf := make([]byte, 1<<20)
		t.Fatalf("after %d reloads: %d goroutines, %d fds; before %d, %d\n%s", reloads, now[0], now[1], base[0], base[1], buf[:runtime.Stack(buf, true)])
	}
}
