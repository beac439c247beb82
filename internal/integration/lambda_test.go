package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"go.uber.org/goleak"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// echoFunction builds testdata/echofn once per test binary.
func echoFunction(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = tempDirForBuild()
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "echofn"), "./testdata/echofn").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "echofn")
}

func startRuntime(t *testing.T, concurrency int) *LocalRuntime {
	t.Helper()
	rt, err := NewLocalRuntime(RuntimeConfig{Command: echoFunction(t), Concurrency: concurrency})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

func invokeBody(t *testing.T, inv Invoker, body string) (*Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return (&Lambda{Invoker: inv}).Invoke(ctx, &Event{Body: body})
}

func TestLocalRuntimeInvoke(t *testing.T) {
	rt := startRuntime(t, 1)
	for _, body := range []string{"hello", "again", `{"action":"x"}`} {
		resp, err := invokeBody(t, rt, body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Body != body {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, resp.Body, body)
		}
	}
	resp, err := invokeBody(t, rt, "forbid")
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("forbid: %+v, %v", resp, err)
	}
	resp, err = invokeBody(t, rt, "null")
	if err != nil || resp.StatusCode != 200 || resp.Body != "" {
		t.Fatalf("null: %+v, %v", resp, err)
	}
}

func TestLocalRuntimeFunctionError(t *testing.T) {
	rt := startRuntime(t, 1)
	_, err := rt.Invoke(context.Background(), mustEvent(t, "fail"))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Message != "asked to fail" || fe.Type != "errorString" {
		t.Fatalf("err = %#v, want the function's error", err)
	}
	_, err = invokeBody(t, rt, "fail")
	if !errors.Is(err, ErrFailed) || !errors.As(err, &fe) {
		t.Fatalf("integration err = %v, want ErrFailed wrapping a FunctionError", err)
	}
	if resp, err := invokeBody(t, rt, "still here"); err != nil || resp.Body != "still here" {
		t.Fatalf("after a function error: %+v, %v", resp, err)
	}
}

func mustEvent(t *testing.T, body string) []byte {
	t.Helper()
	b, err := json.Marshal(&Event{Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLocalRuntimeConcurrency: with concurrency 2, two invocations run at
// once: each waits, in its own process, until the other has started.
func TestLocalRuntimeConcurrency(t *testing.T) {
	rt := startRuntime(t, 2)
	dir := t.TempDir()
	bodies := make(chan string, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := invokeBody(t, rt, "meet:"+dir)
			if err != nil {
				t.Error(err)
				return
			}
			bodies <- resp.Body
		}()
	}
	wg.Wait()
	close(bodies)
	for body := range bodies {
		if body != "met" {
			t.Fatalf("an invocation answered %q with concurrency 2: the two did not run at once", body)
		}
	}
}

// TestLocalRuntimeSerialisesWithConcurrencyOne: with concurrency 1, each of
// several invocations started together finds itself alone while it runs.
func TestLocalRuntimeSerialisesWithConcurrencyOne(t *testing.T) {
	rt := startRuntime(t, 1)
	dir := t.TempDir()
	bodies := make(chan string, 3)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := invokeBody(t, rt, "alone:"+dir)
			if err != nil {
				t.Error(err)
				return
			}
			bodies <- resp.Body
		}()
	}
	wg.Wait()
	close(bodies)
	for body := range bodies {
		if body != "1" {
			t.Fatalf("an invocation saw %s running with concurrency 1, want 1", body)
		}
	}
}

func TestLocalRuntimeCrashRestarts(t *testing.T) {
	rt := startRuntime(t, 1)
	pid1 := pidOf(t, rt)
	_, err := rt.Invoke(context.Background(), mustEvent(t, "crash"))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "Runtime.ExitError" {
		t.Fatalf("err = %v, want a Runtime.ExitError function error", err)
	}
	resp, err := invokeBody(t, rt, "back")
	if err != nil || resp.Body != "back" {
		t.Fatalf("after the crash: %+v, %v", resp, err)
	}
	if pid2 := pidOf(t, rt); pid2 == pid1 {
		t.Fatalf("same pid %d after a crash", pid1)
	}
}

func TestLocalRuntimeTimeoutRestartsProcess(t *testing.T) {
	rt := startRuntime(t, 1)
	pid1 := pidOf(t, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := rt.Invoke(ctx, mustEvent(t, "sleep")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if pid2 := pidOf(t, rt); pid2 == pid1 {
		t.Fatalf("the timed-out process %d still serves", pid1)
	}
}

func pidOf(t *testing.T, inv Invoker) int {
	t.Helper()
	resp, err := invokeBody(t, inv, "pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestLocalRuntimeCloseStopsEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction(DateClock))
	rt, err := NewLocalRuntime(RuntimeConfig{Command: echoFunction(t), Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	pids := map[int]bool{}
	for range 3 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := pidOf(t, rt)
				mu.Lock()
				pids[p] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	if len(pids) == 0 {
		t.Fatal("no pids")
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	for pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Close (kill 0: %v)", pid, err)
		}
	}
	if _, err := rt.Invoke(context.Background(), []byte("{}")); !errors.Is(err, ErrRuntimeClosed) {
		t.Fatalf("Invoke after Close: %v", err)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLocalRuntimeMissingCommand(t *testing.T) {
	if _, err := NewLocalRuntime(RuntimeConfig{Command: filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Fatal("no error for a missing command")
	}
}

// lambdaServer answers like the Lambda Invoke API and checks SigV4
// signatures by re-signing the request with the same signer.
func lambdaServer(t *testing.T, creds aws.Credentials, answer func(w http.ResponseWriter, payload []byte)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.EscapedPath() != "/2015-03-31/functions/my%3Afn/invocations" && r.URL.EscapedPath() != "/2015-03-31/functions/my:fn/invocations" {
			http.Error(w, "bad path "+r.URL.EscapedPath(), http.StatusNotFound)
			return
		}
		payload, _ := io.ReadAll(r.Body)
		if creds.AccessKeyID != "" {
			got := r.Header.Get("Authorization")
			when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
			if err != nil {
				w.Header().Set("X-Amzn-ErrorType", "InvalidSignatureException")
				w.WriteHeader(http.StatusForbidden)
				return
			}
			check, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
			for _, k := range []string{"Content-Type", "X-Amz-Invocation-Type", "X-Amz-Content-Sha256", "X-Amz-Security-Token"} {
				if v := r.Header.Get(k); v != "" {
					check.Header.Set(k, v)
				}
			}
			check.ContentLength = r.ContentLength
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, check, r.Header.Get("X-Amz-Content-Sha256"), "lambda", "eu-west-1", when); err != nil {
				t.Error(err)
			}
			if got == "" || got != check.Header.Get("Authorization") {
				w.Header().Set("X-Amzn-ErrorType", "InvalidSignatureException:http://internal.amazon.com/coral/")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `{"message":"The request signature we calculated does not match"}`)
				return
			}
		}
		answer(w, payload)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func echoAnswer(w http.ResponseWriter, payload []byte) {
	var ev Event
	_ = json.Unmarshal(payload, &ev)
	if ev.Body == "fail" {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		_, _ = io.WriteString(w, `{"errorMessage":"asked to fail","errorType":"errorString"}`)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": 200, "body": ev.Body})
}

func TestInvokeAPI(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIAEXAMPLEEXAMPLE01", SecretAccessKey: "secret", SessionToken: "session"}
	srv := lambdaServer(t, creds, echoAnswer)
	api := &InvokeAPI{Endpoint: srv.URL, FunctionName: "my:fn", Region: "eu-west-1", Credentials: creds}
	resp, err := invokeBody(t, api, "hi")
	if err != nil || resp.StatusCode != 200 || resp.Body != "hi" {
		t.Fatalf("got %+v, %v", resp, err)
	}
	_, err = api.Invoke(context.Background(), mustEvent(t, "fail"))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Message != "asked to fail" || fe.Type != "errorString" {
		t.Fatalf("err = %v, want the function error", err)
	}
	if _, err := invokeBody(t, api, "fail"); !errors.Is(err, ErrFailed) {
		t.Fatalf("integration err = %v, want ErrFailed", err)
	}

	wrong := *api
	wrong.Credentials.SecretAccessKey = "other"
	_, err = wrong.Invoke(context.Background(), mustEvent(t, "hi"))
	if !errors.Is(err, ErrFailed) || errors.As(err, &fe) {
		t.Fatalf("bad signature: err = %v, want a failure that is no function error", err)
	}
	unsigned := *api
	unsigned.Credentials = aws.Credentials{}
	if _, err := unsigned.Invoke(context.Background(), mustEvent(t, "hi")); !errors.Is(err, ErrFailed) {
		t.Fatalf("unsigned request to a signing server: %v", err)
	}
}

func TestInvokeAPIUnsigned(t *testing.T) {
	srv := lambdaServer(t, aws.Credentials{}, echoAnswer)
	api := &InvokeAPI{Endpoint: srv.URL + "/", FunctionName: "my:fn"}
	resp, err := invokeBody(t, api, "rie")
	if err != nil || resp.Body != "rie" {
		t.Fatalf("got %+v, %v", resp, err)
	}
}

func TestLambdaResults(t *testing.T) {
	tests := []struct {
		name       string
		result     string
		wantErr    bool
		wantStatus int
		wantBody   string
	}{
		{name: "proxy", result: `{"statusCode":401,"body":"no"}`, wantStatus: 401, wantBody: "no"},
		{name: "null", result: `null`, wantStatus: 200},
		{name: "empty", result: ``, wantStatus: 200},
		{name: "plain JSON string", result: `"hello"`, wantStatus: 200, wantBody: `"hello"`},
		{name: "malformed proxy", result: `{"statusCode":"x"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := invokerFunc(func(context.Context, []byte) ([]byte, error) { return []byte(tt.result), nil })
			resp, err := (&Lambda{Invoker: inv}).Invoke(context.Background(), &Event{})
			if tt.wantErr {
				if !errors.Is(err, ErrFailed) {
					t.Fatalf("err = %v, want ErrFailed", err)
				}
				return
			}
			if err != nil || resp.StatusCode != tt.wantStatus || resp.Body != tt.wantBody {
				t.Fatalf("got %+v, %v", resp, err)
			}
		})
	}
	slow := invokerFunc(func(ctx context.Context, _ []byte) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() })
	_, err := (&Lambda{Invoker: slow, Timeout: 20 * time.Millisecond}).Invoke(context.Background(), &Event{})
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("timeout: %v", err)
	}
}

type invokerFunc func(context.Context, []byte) ([]byte, error)

func (f invokerFunc) Invoke(ctx context.Context, p []byte) ([]byte, error) { return f(ctx, p) }
