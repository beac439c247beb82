package gateway_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestChurnTailStartRacesClose opens message tails and subscriptions
// through the management API while the connections are closing: whatever
// the order, nothing of a closed connection may stay behind.
func TestChurnTailStartRacesClose(t *testing.T) {
	churnSoak(t)
	const n = 150
	b := churnBackend(t)
	g := gt.Start(t, churnConfig(b, ""))
	var statusMu sync.Mutex
	statuses := map[int]int{}
	defer func() { t.Logf("statuses: %v", statuses) }()
	parallel(n, 6, func(i int) {
		c, err := dialChurn(t, g, i, nil)
		if err != nil {
			t.Errorf("dial: %v", err)
			return
		}
		defer c.CloseNow()
		id := whoAmI(t, c)
		if id == "" {
			return
		}
		var wg sync.WaitGroup
		for _, path := range []string{"/@connections/" + escID(id) + "/tail", "/@connections/" + escID(id) + "/topics/news"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					status, _, body := g.MgmtDo(t, "PUT", path, nil, nil)
					statusMu.Lock()
					statuses[status]++
					statusMu.Unlock()
					if status != http.StatusNoContent && status != http.StatusOK {
						if status != http.StatusGone {
							t.Logf("PUT %s: %d %s", path, status, body)
						}
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(i%5) * time.Millisecond)
		if i%2 == 0 {
			_ = c.CloseNow()
		} else {
			_ = c.Close(websocket.StatusNormalClosure, "bye")
		}
		wg.Wait()
	})
	waitEmpty(t, g)
}
