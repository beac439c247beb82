package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/wsgate/wsgate/internal/cluster"
)

// engineChecker is implemented by engines that can tell whether the server
// they reach can serve the cluster.
type engineChecker interface {
	Check(ctx context.Context) error
}

// Warnings returns what `wsgate validate` warns about beyond the
// configuration itself: a cluster engine server that the gateway reaches
// but that cannot serve it, such as a NATS server too old. Each warning is
// positioned at the engine's url key. An engine that cannot be reached
// within ctx is not a warning: it may be down now and up when serving.
func (g *Gateway) Warnings(ctx context.Context) []error {
	c, ok := g.eng.(engineChecker)
	if !ok {
		return nil
	}
	err := c.Check(ctx)
	if err == nil || ctx.Err() != nil || errors.Is(err, cluster.ErrClosed) {
		return nil
	}
	return []error{g.cfg.Errorf(fmt.Sprintf("registry.%s.url", g.cfg.Registry.Type), "warning: %v", err)}
}
