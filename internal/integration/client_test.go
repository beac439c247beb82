package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestClientReusesConnections: calls through the Invoke API and an http
// integration, sharing one NewClient, from 100 goroutines at once in a
// closed loop, need about one backend connection per goroutine (at most
// two), and a
// second round of as many calls opens next to none. The REQUEST authorizer
// is given the same client by the gateway.
func TestClientReusesConnections(t *testing.T) {
	const workers, calls = 100, 20
	srv, opened := countingServer(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"statusCode":200,"body":"ok"}`))
	})
	srv.Start()
	defer srv.Close()
	client := NewFastClient()
	defer client.CloseIdleConnections()
	invoke := &Lambda{Invoker: &InvokeAPI{Endpoint: srv.URL, FunctionName: "f", Fast: client}}
	post := &HTTP{URL: srv.URL + "/x", Fast: client}

	round := func() error {
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			in := Integration(invoke)
			if w%2 == 1 {
				in = post
			}
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for i := range calls {
					resp, err := in.Invoke(ctx, &Event{Body: "hi"})
					if err != nil {
						errs <- fmt.Errorf("worker %d call %d: %w", w, i, err)
						return
					}
					if resp.Body != "ok" {
						errs <- fmt.Errorf("worker %d call %d: body %q", w, i, resp.Body)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		return errors.Join(<-errs)
	}
	if err := round(); err != nil {
		t.Fatal(err)
	}
	first := opened.Load()
	// A connection goes back to the pool just after its call returns: a
	// call starting in between dials. That costs a few dozen connections
	// while cold, not one per call.
	if first > 2*workers {
		t.Fatalf("%d connections for %d calls from %d goroutines, want at most %d", first, workers*calls, workers, 2*workers)
	}
	if err := round(); err != nil {
		t.Fatal(err)
	}
	if more := opened.Load() - first; more > workers/10 {
		t.Fatalf("warm: %d more connections for %d more calls (%d after the first round), want at most %d", more, workers*calls, first, workers/10)
	}
}
