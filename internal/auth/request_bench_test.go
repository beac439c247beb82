package auth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/config"
)

// BenchmarkRequestAuthorizerCallout authorizes one connect per iteration
// through a REQUEST authorizer whose backend is an in-process HTTP server
// answering an Allow policy: the event encoding, the POST over a kept-alive
// loopback connection, and the decision. No decision cache wraps the
// authorizer, so every iteration calls the backend; the server's work is
// counted too, as it runs in the same process.
func BenchmarkRequestAuthorizerCallout(b *testing.B) {
	answer := []byte(allow(testArn))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer srv.Close()
	a := auth.NewRequest(config.RequestAuth{URL: srv.URL + "/authorize"}, testAPI, nil)
	ctx := context.Background()
	req := testRequest()
	b.ReportAllocs()
	for b.Loop() {
		id, err := a.Authorize(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if id.PrincipalID != "user" {
			b.Fatalf("principalId = %q, want user", id.PrincipalID)
		}
	}
}
