//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/wsproto"
)

func TestCentrifugoCommands(t *testing.T) {
	connect := appendCentrifugoConnect(nil, `a"b`)
	if string(connect) != `{"id":1,"connect":{"token":"a\"b"}}` {
		t.Errorf("connect %s", connect)
	}
	payload := echoPayload(nil, "x", 7, 64)
	rpc := appendCentrifugoRPC(nil, 9, "x", payload)
	var cmd struct {
		ID  int `json:"id"`
		RPC struct {
			Method string          `json:"method"`
			Data   json.RawMessage `json:"data"`
		} `json:"rpc"`
	}
	if err := json.Unmarshal(rpc, &cmd); err != nil || cmd.ID != 9 || cmd.RPC.Method != "x" || !bytes.Equal(cmd.RPC.Data, payload) {
		t.Errorf("rpc %s: %+v, %v", rpc, cmd, err)
	}
	if got := appendCentrifugoRPCReply(nil, 9, payload); string(got) != `{"id":9,"rpc":{"data":`+string(payload)+`}}` {
		t.Errorf("reply with data %s", got)
	}
	if got := appendCentrifugoRPCReply(nil, 9, nil); string(got) != `{"id":9,"rpc":{}}` {
		t.Errorf("reply without data %s", got)
	}
	o := &echoOptions{peer: peerCentrifugo, backend: backendMock, action: "x"}
	req, reply := o.centrifugoMessage(nil, nil, 5, payload)
	if !bytes.Equal(req, appendCentrifugoRPC(nil, 7, "x", payload)) || string(reply) != `{"id":7,"rpc":{}}` {
		t.Errorf("mock: %s, %s", req, reply)
	}
	o.backend = backendHTTP
	if _, reply := o.centrifugoMessage(nil, nil, 5, payload); !bytes.Contains(reply, payload) {
		t.Errorf("http: reply %s does not carry the payload", reply)
	}
}

func TestCheckCentrifugoReply(t *testing.T) {
	tests := []struct {
		msg     string
		id      uint32
		connect bool
		wantErr string
	}{
		{`{"id":1,"connect":{"client":"c","version":"6.9.1"}}`, 1, true, ""},
		{`{"id":4,"rpc":{}}`, 4, false, ""},
		{`{"id":1,"rpc":{}}`, 1, true, "no connect result"},
		{`{"id":3,"rpc":{}}`, 4, false, "id 3, want 4"},
		{`{"id":1,"error":{"code":109,"message":"token expired"}}`, 1, true, `error 109 "token expired"`},
		{`{"id":1,"disconnect":{"code":3501,"reason":"bad request"}}`, 1, true, `disconnect 3501 "bad request"`},
		{`not json`, 1, false, "invalid character"},
	}
	for _, tt := range tests {
		err := checkCentrifugoReply([]byte(tt.msg), tt.id, tt.connect)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.msg, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tt.msg, err, tt.wantErr)
		}
	}
}

func TestCentrifugoAnswer(t *testing.T) {
	out, err := centrifugoAnswer([]byte(`{"client":"c","transport":"websocket","protocol":"json","encoding":"json","user":"wsbench","method":"x","data":{"action":"x","seq":"0000000001"}}`))
	if err != nil || string(out) != `{"result":{"data":{"action":"x","seq":"0000000001"}}}` {
		t.Errorf("answer %s, %v", out, err)
	}
	out, err = centrifugoAnswer([]byte(`{"method":"x","encoding":"binary","b64data":"AAE="}`))
	if err != nil || string(out) != `{"result":{"b64data":"AAE="}}` {
		t.Errorf("binary answer %s, %v", out, err)
	}
	if _, err := centrifugoAnswer([]byte(`{"data":`)); err == nil {
		t.Error("answered a request that is not JSON")
	}
	// The backend answers the proxy on its path and events elsewhere.
	srv := httptest.NewServer(backendHandler())
	defer srv.Close()
	for path, want := range map[string]string{
		centrifugoRPCPath: `{"result":{"data":{"a":1}}}`,
		"/x":              `{"statusCode":200,"body":"b"}`,
	} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(`{"data":{"a":1},"body":"b"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("%s: %d %s, want %s", path, resp.StatusCode, b, want)
		}
	}
}

func TestCentrifugoConfig(t *testing.T) {
	for _, rpcURL := range []string{"http://127.0.0.1:4567" + centrifugoRPCPath, ""} {
		b, err := centrifugoConfig(18000, "warn", "x", rpcURL)
		if err != nil {
			t.Fatal(err)
		}
		var c fakeCentrifugoConfig
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		if c.HTTPServer.Address != "127.0.0.1" || c.HTTPServer.Port != 18000 || c.Log.Level != "warn" || !c.UsageStats.Disabled {
			t.Errorf("config %s", b)
		}
		if rpcURL != "" && (c.RPC.Proxy.Endpoint != rpcURL || !c.RPC.WithoutNamespace.ProxyEnabled || c.RPC.Ping.Enabled) {
			t.Errorf("proxy config %s", b)
		}
		if rpcURL == "" && (!c.RPC.Ping.Enabled || c.RPC.Ping.Method != "x" || c.RPC.Proxy.Endpoint != "") {
			t.Errorf("built-in config %s", b)
		}
		if bytes.Contains(b, []byte("hmac")) {
			t.Errorf("config holds a secret: %s", b)
		}
	}
}

// TestReadCentrifugo answers the server's pings, alone or in the frame of
// a reply, and returns the reply alone.
func TestReadCentrifugo(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	// A guard against hanging when pongs are missing, not a timing check.
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	_ = server.SetDeadline(time.Now().Add(10 * time.Second))
	e := &echoConn{c: client, br: bufio.NewReaderSize(client, 4096)}
	go func() {
		for _, m := range []string{"{}", "{}\n{\"id\":2,\"rpc\":{}}", "{\"id\":3,\"rpc\":{}}\n{}"} {
			if _, err := server.Write(wsproto.AppendFrame(nil, wsproto.OpText, true, []byte(m))); err != nil {
				return
			}
		}
	}()
	pongs := make(chan int, 1)
	go func() {
		// Each pong is a masked text frame with {} (2 + 4 + 2 bytes).
		n := 0
		buf := make([]byte, 8)
		for n < 3 {
			if _, err := io.ReadFull(server, buf); err != nil || buf[0] != 0x81 || buf[1] != 0x82 {
				break
			}
			n++
		}
		pongs <- n
	}()
	for _, want := range []string{`{"id":2,"rpc":{}}`, `{"id":3,"rpc":{}}`} {
		got, err := e.readCentrifugo(nil)
		if err != nil || string(got) != want {
			t.Fatalf("readCentrifugo = %q, %v; want %q", got, err, want)
		}
	}
	if n := <-pongs; n != 3 {
		t.Errorf("%d pongs, want 3", n)
	}
}

func TestEchoOptionsPeer(t *testing.T) {
	t.Setenv("WSBENCH_TEST_SECRET", "s3cret")
	tests := []struct {
		args    string
		wantErr string
	}{
		{"-peer centrifugo -peer-binary ./c -jwt-secret-env WSBENCH_TEST_SECRET", ""},
		{"-peer centrifugo -peer-binary ./c -jwt-secret-env WSBENCH_TEST_SECRET -backend http -port 18000", ""},
		{"-peer centrifugo -jwt-secret-env WSBENCH_TEST_SECRET", "needs -peer-binary"},
		{"-peer nginx -peer-binary ./c -jwt-secret-env WSBENCH_TEST_SECRET", `-peer "nginx"`},
		{"-peer-binary ./c -jwt-secret-env WSBENCH_TEST_SECRET", `-peer ""`},
		{"-peer centrifugo -peer-binary ./c", "needs -jwt-secret-env"},
		{"-peer centrifugo -peer-binary ./c -jwt-secret-env WSBENCH_TEST_SECRET -backend lambda", "-backend lambda with -peer"},
		{"-peer centrifugo -peer-binary ./c -jwt-secret-env WSBENCH_TEST_SECRET -gateway ./wsgate", "-gateway does not apply"},
		{"-peer centrifugo -peer-binary ./c -jwt-secret-env WSBENCH_TEST_SECRET -rate 100", "-rate does not apply"},
		{"-peer centrifugo -peer-binary ./c -jwt-secret-env WSBENCH_TEST_SECRET -url ws://127.0.0.1:1/", "-url cannot be used"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			o, err := parseEchoOptions(strings.Fields(tt.args), io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseEchoOptions(%q): %v", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parseEchoOptions(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
			case err != nil:
				return
			}
			// The token goes in the connect command, not the URL.
			if o.token == "" || len(o.targets) != 1 || strings.Contains(o.targets[0].URL, "access_token") ||
				!strings.HasSuffix(o.targets[0].URL, centrifugoPath) {
				t.Errorf("token %q, targets %+v", o.token, o.targets)
			}
		})
	}
}

// fakeCentrifugoEnv, set to 1, makes the test binary run as a stand-in for
// Centrifugo (fakeCentrifugo), so that the -peer path runs without it.
const fakeCentrifugoEnv = "WSBENCH_FAKE_CENTRIFUGO"

// fakeCentrifugoConfig is the part of Centrifugo's config wsbench writes.
type fakeCentrifugoConfig struct {
	HTTPServer struct {
		Address string `json:"address"`
		Port    int    `json:"port"`
	} `json:"http_server"`
	Log        struct{ Level string }            `json:"log"`
	UsageStats struct{ Disabled bool }           `json:"usage_stats"`
	Client     struct{ AllowedOrigins []string } `json:"client"`
	RPC        struct {
		Proxy struct {
			Endpoint string `json:"endpoint"`
		} `json:"proxy"`
		WithoutNamespace struct {
			ProxyEnabled bool `json:"proxy_enabled"`
		} `json:"without_namespace"`
		Ping struct {
			Enabled bool   `json:"enabled"`
			Method  string `json:"method"`
		} `json:"ping"`
	} `json:"rpc"`
}

// fakeCentrifugo serves the part of Centrifugo v6's JSON protocol wsbench
// uses, as the real one does: connect with an HS256 token checked against
// the secret in centrifugoSecretEnv, rpc through the RPC proxy or the
// built-in ping, and server pings ({}), each of which must be answered
// before the next is sent (else it closes the connection): one after the
// connect reply in a frame of its own, then one in the frame of every third
// reply. It runs until SIGTERM.
func fakeCentrifugo(args []string) int {
	if len(args) != 2 || args[0] != "--config" {
		fmt.Fprintf(os.Stderr, "fake centrifugo: args %q\n", args)
		return 2
	}
	b, err := os.ReadFile(args[1])
	var cfg fakeCentrifugoConfig
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	secret := os.Getenv(centrifugoSecretEnv)
	if err == nil && secret == "" {
		err = errors.New("no secret in " + centrifugoSecretEnv)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake centrifugo:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	mux := http.NewServeMux()
	mux.HandleFunc(centrifugoPath, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if err := fakeCentrifugoConn(r.Context(), c, &cfg, secret); err != nil {
			fmt.Fprintln(os.Stderr, "fake centrifugo:", err)
			_ = c.Close(websocket.StatusCode(3501), "bad request")
		}
	})
	srv := &http.Server{Addr: net.JoinHostPort(cfg.HTTPServer.Address, strconv.Itoa(cfg.HTTPServer.Port)), Handler: mux}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "fake centrifugo:", err)
		return 1
	}
	return 0
}

// proxyClient keeps a connection to the RPC proxy per connection in
// flight, as Centrifugo's does (255 idle per host).
var proxyClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 255}}

func fakeCentrifugoConn(ctx context.Context, c *websocket.Conn, cfg *fakeCentrifugoConfig, secret string) error {
	var cmd struct {
		ID      uint32 `json:"id"`
		Connect *struct {
			Token string `json:"token"`
		} `json:"connect"`
		RPC *struct {
			Method string          `json:"method"`
			Data   json.RawMessage `json:"data"`
		} `json:"rpc"`
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(msg, &cmd); err != nil || cmd.Connect == nil {
		return fmt.Errorf("first command %q is not connect", msg)
	}
	var claims jwt.RegisteredClaims
	if _, err := jwt.ParseWithClaims(cmd.Connect.Token, &claims, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	reply := fmt.Sprintf(`{"id":%d,"connect":{"client":"fake","version":"6.9.1","ping":25,"pong":true}}`, cmd.ID)
	if err := c.Write(ctx, websocket.MessageText, []byte(reply)); err != nil {
		return err
	}
	// A ping right away, in a frame of its own.
	if err := c.Write(ctx, websocket.MessageText, []byte("{}")); err != nil {
		return err
	}
	awaitPong := true
	for n := 0; ; n++ {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return nil // the client left
		}
		if string(msg) == "{}" {
			awaitPong = false
			continue
		}
		cmd.RPC = nil
		if err := json.Unmarshal(msg, &cmd); err != nil || cmd.RPC == nil {
			return fmt.Errorf("command %q is not rpc", msg)
		}
		var out []byte
		switch {
		case cfg.RPC.Ping.Enabled && cmd.RPC.Method == cfg.RPC.Ping.Method:
			out = fmt.Appendf(nil, `{"id":%d,"rpc":{}}`, cmd.ID)
		case cfg.RPC.WithoutNamespace.ProxyEnabled:
			req, _ := json.Marshal(map[string]any{"client": "fake", "transport": "websocket", "protocol": "json",
				"encoding": "json", "user": claims.Subject, "method": cmd.RPC.Method, "data": cmd.RPC.Data})
			resp, err := proxyClient.Post(cfg.RPC.Proxy.Endpoint, "application/json", bytes.NewReader(req))
			if err != nil {
				return err
			}
			var res struct {
				Result struct {
					Data json.RawMessage `json:"data"`
				} `json:"result"`
			}
			// Read to the end, so that the connection is reused.
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				err = json.Unmarshal(body, &res)
			}
			if err != nil {
				return fmt.Errorf("proxy answer: %w", err)
			}
			out = fmt.Appendf(nil, `{"id":%d,"rpc":{"data":%s}}`, cmd.ID, res.Result.Data)
		default:
			out = fmt.Appendf(nil, `{"id":%d,"error":{"code":104,"message":"method not found"}}`, cmd.ID)
		}
		if n%3 == 2 {
			if awaitPong {
				return errors.New("the previous ping was not answered")
			}
			out = append([]byte("{}\n"), out...)
			awaitPong = true
		}
		if err := c.Write(ctx, websocket.MessageText, out); err != nil {
			return err
		}
	}
}

// fakeCentrifugoBinary writes a script that runs this test binary as
// fakeCentrifugo, for -peer-binary.
func fakeCentrifugoBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "centrifugo")
	script := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", fakeCentrifugoEnv, exe)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEchoPeerShort runs wsbench echo -peer centrifugo, with both
// backends, against the stand-in (fakeCentrifugo), and against Centrifugo
// itself when WSBENCH_CENTRIFUGO names its binary (it is not installed in
// CI).
func TestEchoPeerShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the peer and the backend as processes")
	}
	t.Setenv("WSBENCH_TEST_SECRET", "a-test-secret-of-some-length")
	bins := map[string]string{"fake": fakeCentrifugoBinary(t)}
	if real := os.Getenv("WSBENCH_CENTRIFUGO"); real != "" {
		bins["centrifugo"] = real
	} else {
		t.Log("WSBENCH_CENTRIFUGO not set: runs against the stand-in only (set it to a Centrifugo v6 binary, e.g. from go install github.com/centrifugal/centrifugo/v6@v6.9.1)")
	}
	summary := regexp.MustCompile(`(?m)^summary \(cpu\): backend=(\S+) gateway_cpu_per_msg=\S+ backend_cpu_per_msg=\S+ wsbench_cpu_per_msg=\S+ time_wait_before=([0-9]+) time_wait_after=([0-9]+) load=\S+ server=centrifugo$`)
	for name, bin := range bins {
		for _, kind := range []string{backendMock, backendHTTP} {
			t.Run(name+"/"+kind, func(t *testing.T) {
				dir := t.TempDir()
				args := "-peer centrifugo -peer-binary " + bin + " -jwt-secret-env WSBENCH_TEST_SECRET -workdir " + dir +
					" -n 8 -messages 400 -warmup 40 -backend " + kind + " -port " + strconv.Itoa(freePort(t))
				text := runEchoShort(t, args)
				if !strings.Contains(text, "connect: 8 of 8 established; failures: none") ||
					!strings.Contains(text, "440 sent, 440 echoed, 0 echoes differed") {
					t.Errorf("not every connection or reply as expected:\n%s", text)
				}
				m := summary.FindStringSubmatch(text)
				if m == nil || m[1] != kind {
					t.Fatalf("no summary (cpu) line for %s in:\n%s", kind, text)
				}
				if kind == backendHTTP && m[3] != "0" {
					t.Errorf("TIME-WAIT sockets to the backend after the run: %s, want 0", m[3])
				}
			})
		}
	}
}

// TestEchoPeerRefused checks that a token the peer refuses fails the
// connections with the reason, not the run's messages.
func TestEchoPeerRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the peer as a process")
	}
	bin := fakeCentrifugoBinary(t)
	t.Setenv("WSBENCH_TEST_SECRET", "the-secret-wsbench-signs-with")
	o, err := parseEchoOptions(strings.Fields("-peer centrifugo -peer-binary "+bin+" -jwt-secret-env WSBENCH_TEST_SECRET -workdir "+
		t.TempDir()+" -n 2 -messages 10 -port "+strconv.Itoa(freePort(t))), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The token is signed; the peer is started with another secret, so it
	// refuses the token.
	t.Setenv("WSBENCH_TEST_SECRET", "another-secret")
	p, err := o.startPeer(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer stopGateways([]*gatewayProc{p}, 10*time.Second)
	conns, fails := dialEcho(ctx, o)
	conns, refused := centrifugoConnect(conns, o.token, 5*time.Second)
	fails.merge(refused)
	if len(conns) != 0 || fails.total() != 2 || !strings.Contains(fails.String(), "3501") {
		t.Errorf("%d connections accepted; failures %s", len(conns), fails.String())
	}
}
