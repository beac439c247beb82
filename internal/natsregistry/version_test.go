package natsregistry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// TestServerTooOld: on a server older than 2.11 (the distribution's
// nats-server, which the test starts when it is installed), the engine
// says the server is too old rather than failing as if it were
// unreachable: Ready and Heartbeat fail with a cluster.EngineError whose
// reason says so, and Check names the version.
func TestServerTooOld(t *testing.T) {
	url, version := servicetest.OldNATS(t)
	e := newEngine(t, url, freshPrefix())
	if err := e.Listen("node-a", newRecorder()); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, recovery)
	const reason = "NATS server too old (needs ≥ 2.11)"
	for name, call := range map[string]func(context.Context) error{
		"Ready":     e.Ready,
		"Heartbeat": func(ctx context.Context) error { _, err := e.Heartbeat(ctx, "node-a"); return err },
	} {
		var ee *cluster.EngineError
		if err := call(ctx); !errors.As(err, &ee) || ee.Reason != reason {
			t.Errorf("%s on nats-server %s = %v, want a cluster.EngineError with reason %q", name, version, err, reason)
		}
	}
	err := e.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), version) || !strings.Contains(err.Error(), "2.11") {
		t.Errorf("Check on nats-server %s = %v, want an error naming both versions", version, err)
	}
}
