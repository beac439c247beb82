package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left running: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testCredentials is the environment of a worker signing with the key the
// test gateways accept.
var testCredentials = map[string]string{
	"AWS_ACCESS_KEY_ID":     gt.TestSigV4KeyID,
	"AWS_SECRET_ACCESS_KEY": gt.TestSigV4Secret,
}

// sigv4Management is the management section of the test gateways: SigV4
// with the test key, as the worker signs.
const sigv4Management = `
management:
  auth:
    sigv4: {access_key_id: ` + gt.TestSigV4KeyID + `, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}
`

// runningWorker is a worker started in-process by startWorker.
type runningWorker struct {
	t      *testing.T
	logs   *gt.LogBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startWorker runs the worker with args in the environment env (nil: the
// process's, through run) until the test ends or stop is called; it must
// then stop by itself and return nil.
func startWorker(t *testing.T, env map[string]string, args ...string) *runningWorker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &runningWorker{t: t, logs: &gt.LogBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		if env == nil {
			w.done <- run(ctx, args, io.Discard, w.logs)
			return
		}
		w.done <- runEnv(ctx, args, func(k string) string { return env[k] }, io.Discard, w.logs)
	}()
	t.Cleanup(w.stop)
	return w
}

// stop cancels the worker's context, as SIGTERM does, and waits for it to
// return. It is idempotent.
func (w *runningWorker) stop() {
	w.once.Do(func() {
		w.cancel()
		select {
		case err := <-w.done:
			if err != nil {
				w.t.Errorf("worker returned %v", err)
			}
		case <-time.After(20 * time.Second):
			w.t.Errorf("the worker did not stop within 20s of its context ending")
		}
		if w.t.Failed() {
			w.t.Logf("worker log:\n%s", w.logs.String())
		}
	})
}

// waitLog waits until the worker has logged s.
func (w *runningWorker) waitLog(s string) {
	w.t.Helper()
	gt.Eventually(w.t, func() bool { return strings.Contains(w.logs.String(), s) }, "worker log line %q", s)
}

// wantResult reads the client's next message and requires it to be the
// worker's reply to body, published with request id requestID.
func wantResult(t *testing.T, c *gt.Client, requestID, body, worker string) {
	t.Helper()
	got := c.NextText()
	var r struct {
		Action, RequestID, Upper, Worker string
		Input                            json.RawMessage
	}
	if err := json.Unmarshal([]byte(got), &r); err != nil {
		t.Fatalf("reply %q: %v", got, err)
	}
	wantInput := body
	if !json.Valid([]byte(body)) {
		b, _ := json.Marshal(body)
		wantInput = string(b)
	}
	if r.Action != "result" || r.RequestID != requestID || string(r.Input) != wantInput ||
		r.Upper != strings.ToUpper(body) || r.Worker != worker {
		t.Fatalf("reply %s, want the result for %s (request %s) from %s", got, body, requestID, worker)
	}
}

// ackFrame reads the acknowledgement frame of a publishing route and
// returns its requestId.
func ackFrame(t *testing.T, c *gt.Client) string {
	t.Helper()
	raw := c.NextText()
	var f struct{ Status, RequestID string }
	if err := json.Unmarshal([]byte(raw), &f); err != nil || f.Status != "accepted" || f.RequestID == "" {
		t.Fatalf("frame %q, want the broker's acknowledgement", raw)
	}
	return f.RequestID
}

func TestUsage(t *testing.T) {
	if err := runEnv(context.Background(), []string{"-h"}, func(string) string { return "" }, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	if err := runEnv(context.Background(), []string{"-brokr", "nats"}, func(string) string { return "" }, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("unknown flag: %v, want errUsage", err)
	}
	const secret = "s3cret-key-value"
	env := func(k string) string { return testCredentials[k] }
	for _, c := range []struct {
		args []string
		env  func(string) string
		want string
	}{
		{nil, env, "-broker is required"},
		{[]string{"-broker", "kafka"}, env, `-broker "kafka": want nats, redis or amqp`},
		{[]string{"-broker", "nats"}, env, "-broker nats needs -stream"},
		{[]string{"-broker", "redis", "-stream", "s", "-queue", "q"}, env, "only used with -broker amqp"},
		{[]string{"-broker", "amqp"}, env, "-broker amqp needs -queue"},
		{[]string{"-broker", "amqp", "-queue", "q", "-stream", "s"}, env, "-stream and -group are only used with -broker nats or redis"},
		{[]string{"-broker", "amqp", "-queue", "q", "-exchange", "x"}, env, "-exchange and -routing-key need -declare"},
		{[]string{"-broker", "amqp", "-queue", "q", "-declare", "-exchange-type", "direct"}, env, "-routing-key and -exchange-type need -exchange"},
		{[]string{"-broker", "amqp", "-queue", "q", "-declare", "-exchange", "x", "-exchange-type", "queue"}, env, `-exchange-type "queue": want direct, fanout, topic or headers`},
		{[]string{"-broker", "nats", "-stream", "S", "-consumer", "c"}, env, "-consumer is only used with -broker redis"},
		{[]string{"-broker", "redis", "-stream", "s", "-subject", "a.b"}, env, "-subject is only used with -broker nats"},
		{[]string{"-broker", "nats", "-stream", "S", "-payload", "json"}, env, `-payload "json": want event or body`},
		{[]string{"-broker", "nats", "-stream", "S", "-endpoint", "127.0.0.1:9090"}, env, "-endpoint is not an http:// or https:// URL"},
		{[]string{"-broker", "nats", "-stream", "S", "-retry", "0s"}, env, "-retry and -claim-idle must be positive"},
		{[]string{"-broker", "redis", "-stream", "s", "-url", "redis://:" + secret + "@[::1"}, env, "-url is not a URL such as redis://127.0.0.1:6379/0"},
		{[]string{"-broker", "nats", "-stream", "S"}, func(string) string { return "" }, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set"},
		{[]string{"-broker", "nats", "-stream", "S", "extra"}, env, `unexpected argument "extra"`},
	} {
		err := runEnv(context.Background(), c.args, c.env, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, new(usageError)) {
			t.Errorf("%q: %v, want a usage error with %q", c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%q: the error %q holds the password", c.args, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://guest:guest@127.0.0.1:5672/": "amqp://xxxxx@127.0.0.1:5672/",
		"nats://s3cret-token@127.0.0.1:4222": "nats://xxxxx@127.0.0.1:4222",
		"redis://127.0.0.1:6379/0":           "redis://127.0.0.1:6379/0",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
