package natsregistry_test

import (
	"context"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// BenchmarkRequest measures node-to-node requests, the second half of
// routing POST /@connections/{id} to another node, from parallel callers.
func BenchmarkRequest(b *testing.B) {
	srv := servicetest.NATS(b)
	p := freshPrefix()
	a, c := newEngine(b, srv.URL(), p), newEngine(b, srv.URL(), p)
	if err := a.Listen("node-a", newRecorder()); err != nil {
		b.Fatal(err)
	}
	req := make([]byte, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	// Many requests in flight, as a node routing many deliveries has.
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for pb.Next() {
			if _, err := c.Request(ctx, "node-a", req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLookup measures the first half: one key-value read.
func BenchmarkLookup(b *testing.B) {
	srv := servicetest.NATS(b)
	e := newEngine(b, srv.URL(), freshPrefix())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := registry.Record{ConnectionID: "R1kmxc2VNjMCFIA=", NodeID: "node-a", PrincipalID: "user-1",
		Authorizer: map[string]any{"principalId": "user-1", "scope": "orders:read"}}
	if err := e.Register(ctx, rec); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Lookup(ctx, rec.ConnectionID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
