package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// sigv4Config turns on SigV4 for the management API with the test key.
const sigv4Config = `
management:
  auth:
    sigv4: {access_key_id: ` + gt.TestSigV4KeyID + `, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}
`

// sigv4AndBearerConfig accepts both the test key's signatures and the test
// bearer tokens.
const sigv4AndBearerConfig = `
management:
  auth:
    bearer_tokens_env: WSGATE_TEST_TOKEN
    sigv4: {access_key_id: ` + gt.TestSigV4KeyID + `, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}
`

// sdkClient is the unmodified AWS SDK management client, pointed at g's
// management API for stage prod.
func sdkClient(g *gt.Gateway, keyID, secret, token string, optFns ...func(*apigatewaymanagementapi.Options)) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(g.MgmtURL + "/prod"),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, token),
	}, optFns...)
}

func sdkCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSDKPostToConnectionIDs(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, sigv4Config))
	client := sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "")
	ctx := sdkCtx(t)

	// Every id ends in "="; connect until ids with "-" and "_" have been
	// posted to as well.
	var sawDash, sawUnderscore bool
	for n := 0; n < 200 && !(sawDash && sawUnderscore) || n < 5; n++ {
		c := gt.Dial(t, g.URL, nil)
		id := b.ConnectionID(t, "/connect", n)
		if !strings.HasSuffix(id, "=") {
			t.Fatalf("connection id %q does not end in =", id)
		}
		sawDash = sawDash || strings.Contains(id, "-")
		sawUnderscore = sawUnderscore || strings.Contains(id, "_")
		msg := "hello " + id
		if _, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(id), Data: []byte(msg)}); err != nil {
			t.Fatalf("PostToConnection(%q): %v", id, err)
		}
		if got := c.NextText(); got != msg {
			t.Fatalf("client %q got %q, want %q", id, got, msg)
		}
		_ = c.CloseNow()
	}
	if !sawDash || !sawUnderscore {
		t.Fatalf("no connection id with - (%v) or _ (%v) in 200 connections", sawDash, sawUnderscore)
	}
}

func TestSDKGetAndDeleteConnection(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, sigv4Config))
	client := sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "")
	ctx := sdkCtx(t)
	before := time.Now().Add(-time.Second)
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)

	out, err := client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetConnection: %v", err)
	}
	if out.ConnectedAt == nil || out.LastActiveAt == nil || out.Identity == nil {
		t.Fatalf("GetConnection = %+v, want connectedAt, lastActiveAt and identity", out)
	}
	if out.ConnectedAt.Before(before) || out.ConnectedAt.After(time.Now()) || out.LastActiveAt.Before(out.ConnectedAt.Truncate(time.Millisecond)) {
		t.Fatalf("connectedAt %v, lastActiveAt %v: not around %v", out.ConnectedAt, out.LastActiveAt, before)
	}
	if aws.ToString(out.Identity.SourceIp) != "127.0.0.1" {
		t.Fatalf("identity.sourceIp = %q", aws.ToString(out.Identity.SourceIp))
	}

	if _, err := client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatalf("DeleteConnection: %v", err)
	}
	c.ExpectClose(1000)
	b.WaitEvent(t, "/disconnect", nil)

	var gone *types.GoneException
	_, err = client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("late")})
	if !errors.As(err, &gone) {
		t.Fatalf("PostToConnection after delete: %v, want GoneException", err)
	}
	_, err = client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if !errors.As(err, &gone) {
		t.Fatalf("GetConnection after delete: %v, want GoneException", err)
	}
	_, err = client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)})
	if !errors.As(err, &gone) {
		t.Fatalf("DeleteConnection after delete: %v, want GoneException", err)
	}
}

func TestSDKPayloadTooLarge(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, sigv4Config))
	client := sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "")
	ctx := sdkCtx(t)
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)

	_, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(id), Data: make([]byte, 131073)})
	var tooLarge *types.PayloadTooLargeException
	if !errors.As(err, &tooLarge) {
		t.Fatalf("131073 bytes: %v, want PayloadTooLargeException", err)
	}
	full := strings.Repeat("x", 131072)
	if _, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(id), Data: []byte(full)}); err != nil {
		t.Fatalf("131072 bytes: %v", err)
	}
	if got := c.NextText(); got != full {
		t.Fatalf("client got %d bytes, want the 131072 posted (the 131073 must not arrive)", len(got))
	}
}

func TestSDKForbidden(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, sigv4Config))
	ctx := sdkCtx(t)
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)

	inRegion := func(region string) func(*apigatewaymanagementapi.Options) {
		return func(o *apigatewaymanagementapi.Options) { o.Region = region }
	}
	for name, client := range map[string]*apigatewaymanagementapi.Client{
		"wrong secret": sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret+"x", ""),
		"wrong key id": sdkClient(g, "AKIAWSGATETESTKEY2", gt.TestSigV4Secret, ""),
		"wrong region": sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "", inRegion("eu-west-1")),
	} {
		_, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("no")})
		var forbidden *types.ForbiddenException
		if !errors.As(err, &forbidden) {
			t.Fatalf("%s: %v, want ForbiddenException", name, err)
		}
		if strings.Contains(err.Error(), gt.TestSigV4Secret) {
			t.Fatalf("%s: error %q holds the secret", name, err)
		}
	}

	// Temporary credentials: the session token is signed over and accepted.
	client := sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "FwoGZXIvYXdzEXAMPLEsessiontoken")
	if _, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("yes")}); err != nil {
		t.Fatalf("with a session token: %v", err)
	}
	if got := c.NextText(); got != "yes" {
		t.Fatalf("client got %q, want only the authorized post", got)
	}
	if strings.Contains(g.Logs.String(), gt.TestSigV4Secret) {
		t.Fatal("the secret access key reached the log")
	}
}

func TestSDKSigV4AndBearerTokens(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, sigv4AndBearerConfig))
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)
	client := sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "")
	if _, err := client.PostToConnection(sdkCtx(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("signed")}); err != nil {
		t.Fatalf("signed: %v", err)
	}
	if got := c.NextText(); got != "signed" {
		t.Fatalf("client got %q", got)
	}
	status, _, _ := g.MgmtDo(t, "POST", "/prod/@connections/"+strings.ReplaceAll(id, "=", "%3D"), strings.NewReader("bearer"),
		http.Header{"Authorization": {"Bearer " + gt.TestToken}})
	if status != http.StatusOK {
		t.Fatalf("bearer: %d", status)
	}
	if got := c.NextText(); got != "bearer" {
		t.Fatalf("client got %q", got)
	}
	status, _, _ = g.MgmtDo(t, "POST", "/prod/@connections/"+strings.ReplaceAll(id, "=", "%3D"), strings.NewReader("no"), nil)
	if status != http.StatusForbidden {
		t.Fatalf("no credentials: %d, want 403", status)
	}
}

// flakyTransport fails the first attempts of some SDK calls before they
// leave the client (a retryable dial error), and records what the gateway
// answered to the attempts that reached it.
type flakyTransport struct {
	base http.RoundTripper

	mu       sync.Mutex
	calls    int            // distinct invocations seen
	failures map[string]int // invocation id → attempts still to fail
	reached  map[string]int // invocation id → attempts that reached the gateway
	statuses []int          // every status the gateway answered
	maxTry   int            // highest attempt number that reached the gateway
}

func (f *flakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	inv := req.Header.Get("Amz-Sdk-Invocation-Id")
	f.mu.Lock()
	left, seen := f.failures[inv]
	if !seen {
		left = f.calls % 3 // 0, 1 or 2 failed attempts out of 3
		f.calls++
	}
	if left > 0 {
		f.failures[inv] = left - 1
		f.mu.Unlock()
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("injected failure")}
	}
	f.failures[inv] = 0
	f.reached[inv]++
	var attempt int
	_, _ = fmt.Sscanf(req.Header.Get("Amz-Sdk-Request"), "attempt=%d", &attempt)
	f.maxTry = max(f.maxTry, attempt)
	f.mu.Unlock()

	resp, err := f.base.RoundTrip(req)
	if err == nil {
		f.mu.Lock()
		f.statuses = append(f.statuses, resp.StatusCode)
		f.mu.Unlock()
	}
	return resp, err
}

func TestSDKRetriesNeverDuplicate(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, sigv4Config))
	ctx := sdkCtx(t)
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)

	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	flaky := &flakyTransport{base: base, failures: map[string]int{}, reached: map[string]int{}}
	client := sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "", func(o *apigatewaymanagementapi.Options) {
		o.HTTPClient = &http.Client{Transport: flaky}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.RateLimiter = ratelimit.None
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	})

	const n = 12
	for i := range n {
		if _, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(id), Data: fmt.Appendf(nil, "msg-%d", i)}); err != nil {
			t.Fatalf("PostToConnection %d: %v", i, err)
		}
	}
	// The marker arrives right after the n messages only if none was
	// delivered twice.
	if _, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(id), Data: []byte("end")}); err != nil {
		t.Fatalf("PostToConnection end: %v", err)
	}
	for i := range n {
		if got, want := c.NextText(), fmt.Sprintf("msg-%d", i); got != want {
			t.Fatalf("message %d = %q, want %q", i, got, want)
		}
	}
	if got := c.NextText(); got != "end" {
		t.Fatalf("after %d messages got %q, want the end marker: a duplicate delivery", n, got)
	}

	// Gone is final: the SDK does not retry it.
	if _, err := client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatalf("DeleteConnection: %v", err)
	}
	c.ExpectClose(1000)
	var gone *types.GoneException
	for range 3 {
		_, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("late")})
		if !errors.As(err, &gone) {
			t.Fatalf("PostToConnection after delete: %v, want GoneException", err)
		}
	}

	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	if flaky.maxTry != 3 {
		t.Fatalf("highest attempt that reached the gateway = %d, want 3: the SDK did not retry", flaky.maxTry)
	}
	for inv, k := range flaky.reached {
		if k != 1 {
			t.Fatalf("invocation %s reached the gateway %d times, want once", inv, k)
		}
	}
	for _, s := range flaky.statuses {
		if s >= 500 || s == http.StatusTooManyRequests {
			t.Fatalf("gateway answered %d: the SDK would retry a delivered post (statuses %v)", s, flaky.statuses)
		}
	}
}

func TestSigV4SecretSources(t *testing.T) {
	const secret = "file-secret/0123456789abcdefghijklmnopqrstu"
	build := func(yamlText string) error {
		cfg, err := config.Parse("test.yaml", []byte(yamlText))
		if err != nil {
			t.Fatalf("config: %v", err)
		}
		g, err := gateway.New(cfg, gateway.Options{
			Getenv: func(k string) string { return map[string]string{"SET": "env-secret"}[k] },
			ReadFile: func(name string) ([]byte, error) {
				switch name {
				case "/ok":
					return []byte(secret + "\n"), nil
				case "/empty":
					return []byte("\n"), nil
				}
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
			},
		})
		if err == nil {
			g.Close()
		}
		return err
	}
	sig := func(source string) string {
		return "management:\n  auth:\n    sigv4:\n      access_key_id: " + gt.TestSigV4KeyID + "\n      " + source + "\n"
	}
	for _, ok := range []string{"secret_access_key_env: SET", "secret_access_key_file: /ok"} {
		if err := build(sig(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for source, want := range map[string]string{
		"secret_access_key_env: UNSET":     "test.yaml:5: management.auth.sigv4.secret_access_key_env: environment variable UNSET is unset or empty",
		"secret_access_key_file: /missing": "test.yaml:5: management.auth.sigv4.secret_access_key_file: reading the secret access key: open /missing",
		"secret_access_key_file: /empty":   "test.yaml:5: management.auth.sigv4.secret_access_key_file: /empty holds no secret access key",
	} {
		err := build(sig(source))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", source, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "env-secret")) {
			t.Errorf("%s: error %q holds a secret", source, err)
		}
	}
}
