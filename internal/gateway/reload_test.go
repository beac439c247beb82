package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// reloadConfig routes text that is not JSON to a mock answering mock, and
// action web to the backend's path web, whose answer is the path and the
// message's n.
func reloadConfig(b *gt.Backend, mock, web string) string {
	return fmt.Sprintf(`
stage: prod
routes:
  $default: {integration: {type: mock, body: %q}, route_response: true}
  web: {integration: {type: http, url: %q}, route_response: true}
management: {auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}}
`, mock, b.URLFor(web))
}

// answerWithPath makes the backend answer path with "path:body".
func answerWithPath(b *gt.Backend, path string) {
	b.On(path, func(e gt.Event) gt.Reply {
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: path + ":" + e.Body}}
	})
}

// TestReloadUnderLoad reloads, while 1,000 connections send messages, a
// configuration whose mock answers B instead of A and whose http route
// goes to another URL. Every message sent gets exactly one answer; those
// answered before the reload began were answered by the old configuration,
// those sent after it returned by the new one; no connection is closed;
// and the replaced configuration is closed once its messages are done.
func TestReloadUnderLoad(t *testing.T) {
	const (
		conns   = 1000
		workers = 50
	)
	b := gt.NewBackend(t)
	answerWithPath(b, "/one")
	answerWithPath(b, "/two")
	g := gt.Start(t, reloadConfig(b, "A", "/one"))

	clients := make([]*websocket.Conn, conns)
	var dialWG sync.WaitGroup
	dialErr := make(chan error, conns)
	for w := range 20 {
		dialWG.Add(1)
		go func() {
			defer dialWG.Done()
			for i := w; i < conns; i += 20 {
				c, _, err := gt.TryDial(g.URL, nil)
				if err != nil {
					dialErr <- err
					return
				}
				clients[i] = c
			}
		}()
	}
	dialWG.Wait()
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				_ = c.CloseNow()
			}
		}
	})
	select {
	case err := <-dialErr:
		t.Fatalf("dial: %v", err)
	default:
	}
	gt.Eventually(t, func() bool { return g.EdgeStats().Connections == conns }, "%d connections open (%d)", conns, g.EdgeStats().Connections)

	// began is set just before Reload is called, applied once it has
	// returned.
	var began, applied, stop atomic.Bool
	var sent, oldAnswers, newAnswers atomic.Int64
	// rounds counts, per worker, the rounds over all its clients begun
	// after the reload was applied.
	var afterRounds sync.WaitGroup
	afterRounds.Add(workers)
	errs := make(chan error, workers)
	var load sync.WaitGroup
	for w := range workers {
		load.Add(1)
		go func() {
			defer load.Done()
			roundsAfter := 0
			for n := 0; ; n++ {
				after := applied.Load()
				for i := w; i < conns; i += workers {
					if stop.Load() {
						return
					}
					after := applied.Load()
					msg, wantOld, wantNew := "plain", "A", "B"
					if (n+i)%2 == 0 {
						msg = fmt.Sprintf(`{"action":"web","n":%d}`, n*conns+i)
						wantOld, wantNew = "/one:"+msg, "/two:"+msg
					}
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					err := clients[i].Write(ctx, websocket.MessageText, []byte(msg))
					var got []byte
					if err == nil {
						sent.Add(1)
						_, got, err = clients[i].Read(ctx)
					}
					cancel()
					if err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
						return
					}
					// Answered before the reload began.
					before := !began.Load()
					switch {
					case string(got) == wantOld && !after:
						oldAnswers.Add(1)
					case string(got) == wantNew && !before:
						newAnswers.Add(1)
					default:
						errs <- fmt.Errorf("client %d: %q answered %q (sent before the reload: %v, after it: %v)", i, msg, got, before, after)
						return
					}
				}
				if after {
					if roundsAfter++; roundsAfter == 1 {
						afterRounds.Done()
					}
				}
			}
		}()
	}
	failed := func() error {
		select {
		case err := <-errs:
			return err
		default:
			return nil
		}
	}
	gt.Eventually(t, func() bool { return failed() != nil || oldAnswers.Load() >= 2*conns }, "answers before the reload")
	if err := failed(); err != nil {
		stop.Store(true)
		load.Wait()
		t.Fatal(err)
	}

	g.SetYAML(reloadConfig(b, "B", "/two"))
	began.Store(true)
	if err := g.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	applied.Store(true)

	roundsDone := make(chan struct{})
	go func() {
		afterRounds.Wait()
		close(roundsDone)
	}()
	select {
	case <-roundsDone:
	case err := <-errs:
		stop.Store(true)
		load.Wait()
		t.Fatal(err)
	}
	stop.Store(true)
	load.Wait()
	if err := failed(); err != nil {
		t.Fatal(err)
	}
	if got := oldAnswers.Load() + newAnswers.Load(); got != sent.Load() {
		t.Fatalf("%d messages sent, %d answered", sent.Load(), got)
	}
	if newAnswers.Load() < conns {
		t.Fatalf("%d answers by the new configuration, want at least one per connection", newAnswers.Load())
	}
	// Nothing more arrives: each connection's next answer is to its next
	// message.
	for i, c := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := c.Write(ctx, websocket.MessageText, []byte("last"))
		var got []byte
		if err == nil {
			_, got, err = c.Read(ctx)
		}
		cancel()
		if err != nil || string(got) != "B" {
			t.Fatalf("client %d: last answer %q, %v", i, got, err)
		}
	}
	if n := g.EdgeStats().Connections; n != conns {
		t.Fatalf("%d connections open after the reload, want %d", n, conns)
	}
	gt.Eventually(t, func() bool { return g.Retiring() == 0 }, "the replaced configuration to be closed")
	t.Logf("%d messages: %d answered by the old configuration, %d by the new", sent.Load(), oldAnswers.Load(), newAnswers.Load())
}

// TestReloadInFlightFinishesOnOldIntegration: a message whose integration
// call is in progress when the configuration changes is answered by that
// integration; messages sent after the reload go to the new one; the old
// configuration is closed only once the message is done.
func TestReloadInFlightFinishesOnOldIntegration(t *testing.T) {
	b := gt.NewBackend(t)
	gate := gt.NewGate()
	b.On("/one", func(e gt.Event) gt.Reply {
		gate.Wait()
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: "/one:" + e.Body}}
	})
	answerWithPath(b, "/two")
	g := gt.Start(t, reloadConfig(b, "A", "/one"))
	t.Cleanup(gate.Open)
	slow := gt.Dial(t, g.URL, nil)
	other := gt.Dial(t, g.URL, nil)

	slow.Send(`{"action":"web","n":1}`)
	b.WaitEvent(t, "/one", nil)
	g.SetYAML(reloadConfig(b, "B", "/two"))
	if err := g.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	other.Send(`{"action":"web","n":2}`)
	if got := other.NextText(); got != `/two:{"action":"web","n":2}` {
		t.Fatalf("after the reload: %q", got)
	}
	if n := g.Retiring(); n != 1 {
		t.Fatalf("%d replaced configurations waiting, want the one with the message in flight", n)
	}
	gate.Open()
	if got := slow.NextText(); got != `/one:{"action":"web","n":1}` {
		t.Fatalf("in-flight message: %q", got)
	}
	gt.Eventually(t, func() bool { return g.Retiring() == 0 }, "the replaced configuration to be closed")
	slow.Send("x")
	if got := slow.NextText(); got != "B" {
		t.Fatalf("next message of the same connection: %q", got)
	}
}

// TestReloadRefused: an invalid configuration, and one that changes what
// only a restart changes, are refused with every problem at its line, the
// problems logged and the running configuration kept; POST /reload
// answers 400 with them.
func TestReloadRefused(t *testing.T) {
	b := gt.NewBackend(t)
	answerWithPath(b, "/one")
	g := gt.Start(t, reloadConfig(b, "A", "/one"))
	c := gt.Dial(t, g.URL, nil)

	g.SetYAML(`
stage: prod
routes:
  $default: {integration: {type: http, url: "not a url"}}
limits: {max_frame_bytes: -1}
management: {auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}}
`)
	err := g.Reload(context.Background())
	var re *gateway.ReloadError
	if !errors.As(err, &re) {
		t.Fatalf("reload of an invalid config: %v, want a *ReloadError", err)
	}
	probs := strings.Join(re.Problems(), "\n")
	for _, want := range []string{"test.yaml:4: routes.$default.integration.url: ", "test.yaml:5: limits.max_frame_bytes: "} {
		if !strings.Contains(probs, want) {
			t.Errorf("problems do not include %q:\n%s", want, probs)
		}
		if !strings.Contains(g.Logs.String(), want) {
			t.Errorf("log does not include %q", want)
		}
	}

	g.SetYAML(`
stage: beta
routes:
  $default: {integration: {type: mock, body: "B"}, route_response: true}
registry: {type: redis, redis: {url: "redis://127.0.0.1:1"}}
management: {auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}}
`)
	code, _, body := g.MgmtDo(t, "POST", "/reload", nil, map[string][]string{"Authorization": {"Bearer " + gt.TestToken}})
	if code != 400 || !strings.Contains(body, `test.yaml:2: stage: cannot change while wsgate runs`) ||
		!strings.Contains(body, `test.yaml:5: registry: cannot change while wsgate runs`) {
		t.Fatalf("POST /reload changing the stage and the registry: %d %s", code, body)
	}
	if code, _, body := g.MgmtDo(t, "POST", "/reload", nil, nil); code != 403 {
		t.Fatalf("POST /reload without the token: %d %s", code, body)
	}
	c.Send("x")
	if got := c.NextText(); got != "A" {
		t.Fatalf("after refused reloads: %q", got)
	}
	if n := g.Retiring(); n != 0 {
		t.Fatalf("%d configurations retiring after refusals", n)
	}
	_, _, metrics := g.MgmtDo(t, "GET", "/metrics", nil, map[string][]string{"Authorization": {"Bearer " + gt.TestToken}})
	for _, want := range []string{`wsgate_config_reloads_total{outcome="refused"} 2`, `wsgate_config_reloads_total{outcome="applied"} 0`} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestReloadAppliesLimitsAndAuth: a reload changes the authorizer for new
// connections (those open stay), the management token, the stage
// variables of new events, and limits: max_connections for handshakes,
// messages_per_second for open connections too.
func TestReloadAppliesLimitsAndAuth(t *testing.T) {
	b := gt.NewBackend(t)
	keys := filepath.Join(t.TempDir(), "keys")
	cfg := func(key, token, v string, maxConns int, rate string) string {
		if err := os.WriteFile(keys, []byte(key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf(`
stage: prod
stage_variables: {v: %q}
authorizer:
  type: apikey
  identity_sources: ["route.request.header.x-api-key"]
  apikey: {keys_file: %q}
routes:
  $connect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock, body: "ok"}, route_response: true}
limits: {max_connections: %d, messages_per_second: %s}
management: {auth: {bearer_tokens_env: %s}}
`, v, keys, b.URLFor("/connect"), maxConns, rate, token)
	}
	g := gt.Start(t, cfg("key-one", "WSGATE_TEST_TOKEN", "first", 100, "{rate: 1000, burst: 1000}"))
	withKey := func(k string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: map[string][]string{"X-Api-Key": {k}}}
	}
	old := gt.Dial(t, g.URL, withKey("key-one"))
	if ev := b.WaitEvent(t, "/connect", nil); ev.StageVariables["v"] != "first" {
		t.Fatalf("stage variables %v", ev.StageVariables)
	}

	old.Send("x")
	if got := old.NextText(); got != "ok" {
		t.Fatalf("before the reload: %q", got)
	}
	next := cfg("key-two", "WSGATE_TEST_JWT_SECRET", "second", 2, "{rate: 0.001, burst: 1}")
	g.SetYAML(next)
	if err := g.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, resp, err := gt.TryDial(g.URL, withKey("key-one")); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("old key after the reload: %v %v", resp, err)
	}
	gt.Dial(t, g.URL, withKey("key-two"))
	if ev := b.WaitEvent(t, "/connect", func(e gt.Event) bool { return e.StageVariables["v"] == "second" }); ev.StageVariables["v"] != "second" {
		t.Fatalf("stage variables %v", ev.StageVariables)
	}
	// max_connections 2: the connection from before and the new one.
	if _, resp, err := gt.TryDial(g.URL, withKey("key-two")); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("third connection over the new max_connections: %v %v", resp, err)
	}
	old.Send("x")
	if got := old.NextText(); got != "ok" {
		t.Fatalf("connection from before the reload: %q", got)
	}
	// The new messages_per_second applies to it: its burst is 1.
	old.Send("x")
	if got := old.NextText(); !strings.Contains(got, `"Limit Exceeded"`) {
		t.Fatalf("second message over the new rate: %q", got)
	}
	auth := func(tok string) map[string][]string { return map[string][]string{"Authorization": {"Bearer " + tok}} }
	if code, _, _ := g.MgmtDo(t, "GET", "/@topics/x", nil, auth(gt.TestToken)); code != 403 {
		t.Fatalf("old management token after the reload: %d", code)
	}
	if code, _, _ := g.MgmtDo(t, "GET", "/@topics/x", nil, auth(gt.TestJWTSecret)); code != 200 {
		t.Fatalf("new management token after the reload: %d", code)
	}
}

// TestReloadLeavesNoGoroutines reloads a configuration with a NATS
// integration, an http integration and a JWT authorizer ten times: once
// the replaced configurations are closed, the goroutine count is back
// where it was after the first reload.
func TestReloadLeavesNoGoroutines(t *testing.T) {
	nats := servicetest.NATS(t)
	b := gt.NewBackend(t)
	text := func(n int) string {
		return fmt.Sprintf(`
stage: prod
authorizer:
  type: jwt
  identity_sources: ["route.request.querystring.access_token"]
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256]}
routes:
  $default: {integration: {type: mock, body: "%d"}, route_response: true}
  web: {integration: {type: http, url: %q}, route_response: true}
  pub: {integration: {type: nats, url: %q, subject: "events.%d"}}
`, n, b.URLFor("/one"), nats.URL(), n)
	}
	g := gt.Start(t, text(0))
	tok := mint(t, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()})
	c := gt.Dial(t, g.URL+"?access_token="+tok, nil)
	exercise := func(n int) {
		t.Helper()
		c.Send(`{"action":"web"}`)
		if got := c.NextText(); got != `{"action":"web"}` {
			t.Fatalf("web: %q", got)
		}
		c.Send(`{"action":"pub"}`)
		c.Send("x")
		if got := c.NextText(); got != fmt.Sprint(n) {
			t.Fatalf("after reload %d: %q", n, got)
		}
	}
	reload := func(n int) {
		t.Helper()
		g.SetYAML(text(n))
		if err := g.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		exercise(n)
		gt.Eventually(t, func() bool { return g.Retiring() == 0 }, "reload %d: the replaced configuration to be closed", n)
	}
	reload(1)
	base := runtime.NumGoroutine()
	for n := 2; n <= 11; n++ {
		reload(n)
	}
	gt.Eventually(t, func() bool { return runtime.NumGoroutine() <= base }, "goroutines back to %d (%d)", base, runtime.NumGoroutine())
}

// TestReloadRestartsLocalFunctions: a reload starts the local functions of
// the new configuration, which answer from then on, and stops those of the
// old one.
func TestReloadRestartsLocalFunctions(t *testing.T) {
	fn := buildLambda(t, "echofn")
	text := fmt.Sprintf(`
routes:
  $default:
    integration: {type: lambda, lambda: {command: %q}}
    route_response: true
`, fn)
	g := gt.Start(t, text)
	c := gt.Dial(t, g.URL, nil)
	c.Send("pid")
	before, err := strconv.Atoi(c.NextText())
	if err != nil {
		t.Fatal(err)
	}
	g.SetYAML(text)
	if err := g.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Send("pid")
	after, err := strconv.Atoi(c.NextText())
	if err != nil || after == before {
		t.Fatalf("function process %d after the reload (%v), %d before", after, err, before)
	}
	gt.Eventually(t, func() bool { return syscall.Kill(before, 0) != nil }, "the old function process %d to exit", before)
	if err := syscall.Kill(after, 0); err != nil {
		t.Fatalf("the new function process: %v", err)
	}
}

// TestConcurrentReloads: reloads called at once are applied one at a time,
// each replaced configuration is closed, and the gateway serves the last.
func TestConcurrentReloads(t *testing.T) {
	b := gt.NewBackend(t)
	answerWithPath(b, "/one")
	answerWithPath(b, "/two")
	g := gt.Start(t, reloadConfig(b, "A", "/one"))
	c := gt.Dial(t, g.URL, nil)
	g.SetYAML(reloadConfig(b, "B", "/two"))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if err := g.Reload(context.Background()); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	gt.Eventually(t, func() bool { return g.Retiring() == 0 }, "the 20 replaced configurations to be closed")
	c.Send(`{"action":"web","n":1}`)
	if got := c.NextText(); got != `/two:{"action":"web","n":1}` {
		t.Fatalf("after the reloads: %q", got)
	}
}

// TestReloadThrottlingAndTrustedProxies: a reload sets route throttling
// (messages over the new bucket get AWS's Too Many Requests frame) and
// trusted proxies (a new connection's sourceIp comes from the proxy's
// X-Forwarded-For); turning proxy_protocol on is refused.
func TestReloadThrottlingAndTrustedProxies(t *testing.T) {
	b := gt.NewBackend(t)
	text := func(extra string) string {
		return fmt.Sprintf(`
stage: prod
routes:
  $connect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock, body: "ok"}, route_response: true}
%s`, b.URLFor("/connect"), extra)
	}
	g := gt.Start(t, text(""))
	xff := &websocket.DialOptions{HTTPHeader: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}}}
	c := gt.Dial(t, g.URL, xff)
	if ev := b.WaitEvent(t, "/connect", nil); ev.RequestContext.Identity.SourceIP != "127.0.0.1" {
		t.Fatalf("sourceIp %q before trusting the proxy", ev.RequestContext.Identity.SourceIP)
	}
	for range 3 {
		c.Send("x")
		if got := c.NextText(); got != "ok" {
			t.Fatalf("before throttling: %q", got)
		}
	}

	g.SetYAML(text(`routes_unused: {}`))
	if err := g.Reload(context.Background()); err == nil {
		t.Fatal("a config with an unknown key was applied")
	}
	g.SetYAML(text(`throttling: {rate: 0.001, burst: 1}
trusted_proxies: ["127.0.0.1"]
`))
	if err := g.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Send("x")
	if got := c.NextText(); got != "ok" {
		t.Fatalf("first message after the reload: %q", got)
	}
	c.Send("x")
	if got := c.NextText(); !strings.Contains(got, `"Too Many Requests"`) {
		t.Fatalf("second message over the new bucket: %q", got)
	}
	// The $connect bucket of the stage default holds one handshake.
	gt.Dial(t, g.URL, xff)
	if ev := b.WaitEvent(t, "/connect", func(e gt.Event) bool { return e.RequestContext.Identity.SourceIP != "127.0.0.1" }); ev.RequestContext.Identity.SourceIP != "203.0.113.9" {
		t.Fatalf("sourceIp %q behind a trusted proxy", ev.RequestContext.Identity.SourceIP)
	}

	g.SetYAML(text(`trusted_proxies: ["127.0.0.1"]
proxy_protocol: true
`))
	err := g.Reload(context.Background())
	var re *gateway.ReloadError
	if !errors.As(err, &re) || !strings.Contains(strings.Join(re.Problems(), "\n"), "test.yaml:7: proxy_protocol: cannot change while wsgate runs") {
		t.Fatalf("turning proxy_protocol on: %v", err)
	}
}

// TestReloadTLS: a reload serves the certificate files the new
// configuration names, and watches them from then on, to new handshakes
// while open connections stay; turning TLS off, or naming a file that does
// not exist, is refused at its line.
func TestReloadTLS(t *testing.T) {
	s := newTLSSetup(t)
	text := func(cert, key string) string {
		return fmt.Sprintf("stage: prod\ntls: {cert_file: %q, key_file: %q}\n", cert, key)
	}
	g := gt.Start(t, text(s.certFile, s.keyFile))
	pool := s.ca.Pool()
	open := gt.Dial(t, g.URL, s.dialOptions(0))

	other := s.ca.Server(t, "127.0.0.1")
	cert, key := other.WriteFiles(t, s.dir, "other")
	g.SetYAML(text(cert, key))
	if err := g.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := servedCertificate(t, g.Addr(), pool); got.SerialNumber.Cmp(other.Cert.SerialNumber) != 0 {
		t.Fatalf("after the reload the served certificate is serial %x; want the new files' %x", got.SerialNumber, other.Cert.SerialNumber)
	}
	open.Send("still open")
	if got := open.NextText(); got != "still open" {
		t.Fatalf("connection from before the reload: %q", got)
	}
	// The new files are watched.
	rotated := s.ca.Server(t, "127.0.0.1")
	rotated.Replace(t, cert, key)
	gt.Eventually(t, func() bool {
		return servedCertificate(t, g.Addr(), pool).SerialNumber.Cmp(rotated.Cert.SerialNumber) == 0
	}, "the rotated new files to be served")

	for _, tc := range []struct{ text, want string }{
		{"stage: prod\n", "test.yaml: tls: cannot change while wsgate runs (the client listener serves TLS or not)"},
		{text(filepath.Join(s.dir, "missing.pem"), key), "test.yaml:2: tls.cert_file: "},
	} {
		g.SetYAML(tc.text)
		err := g.Reload(context.Background())
		var re *gateway.ReloadError
		if !errors.As(err, &re) || !strings.Contains(strings.Join(re.Problems(), "\n"), tc.want) {
			t.Fatalf("reload of %q: %v, want a refusal with %q", tc.text, err, tc.want)
		}
	}
	if got := servedCertificate(t, g.Addr(), pool); got.SerialNumber.Cmp(rotated.Cert.SerialNumber) != 0 {
		t.Fatalf("after refused reloads the served certificate is serial %x", got.SerialNumber)
	}
}

// TestReloadAccessLog: a reload that names another access log file writes
// the lines of later events there, and closes the old file with every
// line of the events begun before; an output that cannot be opened is
// refused at its line.
func TestReloadAccessLog(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.log"), filepath.Join(dir, "second.log")
	text := func(output string) string {
		return fmt.Sprintf(`
stage: prod
access_log: {format: clf, output: %q}
routes:
  $default: {integration: {type: mock, body: "ok"}, route_response: true}
`, output)
	}
	g := gt.Start(t, text(first))
	c := gt.Dial(t, g.URL, nil)
	c.Send("before")
	if got := c.NextText(); got != "ok" {
		t.Fatal(got)
	}
	g.SetYAML(text(second))
	if err := g.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Send("after")
	if got := c.NextText(); got != "ok" {
		t.Fatal(got)
	}
	read := func(name string) string {
		b, _ := os.ReadFile(name)
		return string(b)
	}
	// The old log is closed, and so written out, with the replaced
	// configuration.
	gt.Eventually(t, func() bool { return g.Retiring() == 0 }, "the replaced configuration to be closed")
	if got := read(first); strings.Count(got, `"MESSAGE $default `) != 1 || !strings.Contains(got, `"CONNECT $connect `) {
		t.Fatalf("first log:\n%s", got)
	}
	gt.Eventually(t, func() bool { return strings.Count(read(second), `"MESSAGE $default `) == 1 }, "the message after the reload in the second log")

	g.SetYAML(text(filepath.Join(dir, "missing", "x.log")))
	err := g.Reload(context.Background())
	var re *gateway.ReloadError
	if !errors.As(err, &re) || !strings.Contains(strings.Join(re.Problems(), "\n"), "test.yaml:3: access_log.output: ") {
		t.Fatalf("an output that cannot be opened: %v", err)
	}
}
