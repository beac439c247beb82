package natsregistry

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/cluster"
)

// The engine's per-key TTLs (claims, lost markers, expiring tombstones)
// need the buckets' limit marker TTL, which nats-server has since 2.11.
const minMajor, minMinor = 2, 11

// errTooOld is what the engine answers on a server older than 2.11, whose
// version the error it wraps names.
var errTooOld = &cluster.EngineError{Reason: fmt.Sprintf("NATS server too old (needs ≥ %d.%d)", minMajor, minMinor)}

// checkVersion returns an error wrapping errTooOld when the server the
// engine is connected to is older than 2.11, and nil when it is recent
// enough, or not connected, or its version cannot be read.
func (e *Engine) checkVersion() error {
	v := e.nc.ConnectedServerVersion()
	major, minor, ok := parseVersion(v)
	if !ok || major > minMajor || major == minMajor && minor >= minMinor {
		return nil
	}
	return fmt.Errorf("nats: server %s: %w", v, errTooOld)
}

// parseVersion reads the major and minor numbers of a version such as
// "2.9.10" or "v2.11.0-beta.1".
func parseVersion(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

// Check reports a NATS server that cannot serve the engine: when the engine
// is connected to one older than 2.11, the error names its version. It
// returns nil when the server is recent enough or not reachable now.
// `wsgate validate` warns with it.
func (e *Engine) Check(ctx context.Context) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	if e.checkVersion() != nil {
		return fmt.Errorf("NATS server %s too old (needs ≥ %d.%d)", e.nc.ConnectedServerVersion(), minMajor, minMinor)
	}
	return nil
}
