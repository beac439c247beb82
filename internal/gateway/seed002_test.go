package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// buildFunctions compiles the Lambda programs under testdata into dir.
func buildFunctions(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	bins := make(map[string]string, len(names))
	for _, name := range names {
		bin := filepath.Join(dir, name)
		out, err := exec.Command("go", "build", "-o", bin, "./testdata/seed002/"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
		bins[name] = bin
	}
	return bins
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := servicetest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSeed002Application runs the application of seed 002 unchanged in
// spirit: Go programs written only against aws-lambda-go and aws-sdk-go-v2 —
// an onConnect function, a REQUEST authorizer reading the Auth query
// parameter, and a pushtowebsocket route that calls PostToConnection with
// the endpoint from its environment — served by wsgate's local Lambda
// runtime, with the SDK's SigV4 signatures checked by the management API.
func TestSeed002Application(t *testing.T) {
	bins := buildFunctions(t, t.TempDir(), "onconnect", "authorizer", "pushtowebsocket")
	mgmtPort := freePort(t)
	const keyID, secret = "AKIASEED002EXAMPLE01", "seed-002-secret-access-key"
	yaml := fmt.Sprintf(`
stage: prod
route_selection_expression: "$request.body.action"
authorizer:
  type: lambda
  identity_sources: [route.request.querystring.Auth]
  lambda: {command: %q}
routes:
  $connect:
    integration: {type: lambda, lambda: {command: %q}}
  pushtowebsocket:
    integration:
      type: lambda
      lambda:
        command: %q
        env:
          API_GATEWAY_ENDPOINT: "http://127.0.0.1:%d/prod"
          AWS_REGION: us-east-1
          AWS_ACCESS_KEY_ID: %s
          AWS_SECRET_ACCESS_KEY: %s
management:
  listen: "127.0.0.1:%d"
  auth:
    sigv4: {access_key_id: %s, secret_access_key_env: SEED_SIGV4_SECRET, region: us-east-1}
`, bins["authorizer"], bins["onconnect"], bins["pushtowebsocket"], mgmtPort, keyID, secret, mgmtPort, keyID)
	cfg, err := config.Parse("seed002.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	logs := &gt.LogBuffer{}
	g, err := gateway.New(cfg, gateway.Options{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Getenv: func(k string) string {
			if k == "SEED_SIGV4_SECRET" {
				return secret
			}
			return ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	url := "ws://" + g.Addr() + "/prod"

	if got := dialStatus(url, nil); got != 401 {
		t.Fatalf("without Auth: status %d, want 401", got)
	}
	if got := dialStatus(url+"?Auth=forged", nil); got != 403 {
		t.Fatalf("with a denied token: status %d, want 403", got)
	}
	c := gt.Dial(t, url+"?Auth=valid-alice", nil)
	c.Send(`{"action":"pushtowebsocket","data":"hi"}`)
	if got := c.NextText(); got != "Hello there!" {
		t.Fatalf("pushed message %q, want the function's PostToConnection", got)
	}
}
