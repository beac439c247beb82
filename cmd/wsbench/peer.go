//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/wsproto"
)

// Peers of wsbench echo -peer: other servers measured with the same
// connections, messages and backend, for a side-by-side comparison.
const peerCentrifugo = "centrifugo"

// Centrifugo v6 specifics: the WebSocket endpoint of its JSON protocol, the
// path of the wsbench backend that answers its RPC proxy, and the
// environment variable it reads the HMAC secret of connection tokens from
// (so that the secret is never written to the config file).
const (
	centrifugoPath      = "/connection/websocket"
	centrifugoRPCPath   = "/centrifugo/rpc"
	centrifugoSecretEnv = "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY"
)

// centrifugoConnectID is the id of the connect command; the RPC of message
// k has id k+centrifugoFirstRPCID.
const (
	centrifugoConnectID  = 1
	centrifugoFirstRPCID = 2
)

// centrifugoConfig is the config wsbench writes for Centrifugo v6: the
// client endpoint on listen's port, log level logLevel, no usage statistics,
// and RPC method method answered either by the RPC proxy at rpcURL (the
// wsbench backend) or, with rpcURL empty, by the built-in RPC ping
// extension, which replies with an empty result without calling anything.
// The HMAC secret of connection tokens comes from centrifugoSecretEnv.
func centrifugoConfig(port int, logLevel, method, rpcURL string) ([]byte, error) {
	rpc := map[string]any{}
	if rpcURL != "" {
		rpc["proxy"] = map[string]any{"endpoint": rpcURL, "timeout": "10s"}
		rpc["without_namespace"] = map[string]any{"proxy_enabled": true}
	} else {
		rpc["ping"] = map[string]any{"enabled": true, "method": method}
	}
	return json.MarshalIndent(map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": logLevel},
		"usage_stats": map[string]any{"disabled": true},
		"client":      map[string]any{"allowed_origins": []string{"*"}},
		"rpc":         rpc,
	}, "", "  ")
}

// startPeer writes the peer's config to workdir and starts it as a child
// process like a gateway (log in the work directory, SIGTERM should
// wsbench die), with the HMAC secret in its environment, and waits until it
// accepts TCP connections on o.targets[0]. rpcURL is its RPC proxy's
// endpoint; empty for the built-in RPC.
func (o *echoOptions) startPeer(ctx context.Context, workdir, rpcURL string) (*gatewayProc, error) {
	bin, err := filepath.Abs(o.peerBinary)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("-peer-binary: %w", err)
	}
	g := &gatewayProc{addr: o.targets[0].Addr, done: make(chan struct{})}
	if err := checkPortFree(g.addr); err != nil {
		return nil, err
	}
	text, err := centrifugoConfig(o.port, o.logLevel, o.action, rpcURL)
	if err != nil {
		return nil, err
	}
	// Absolute: the process runs in workdir.
	workdir, err = filepath.Abs(workdir)
	if err != nil {
		return nil, err
	}
	g.config = filepath.Join(workdir, "centrifugo.json")
	if err := os.WriteFile(g.config, text, 0o644); err != nil {
		return nil, err
	}
	g.log = filepath.Join(workdir, "centrifugo.log")
	g.logFile, err = os.Create(g.log)
	if err != nil {
		return nil, err
	}
	g.cmd = exec.Command(bin, "--config", g.config)
	g.cmd.Dir = workdir
	g.cmd.Stdout, g.cmd.Stderr = g.logFile, g.logFile
	g.cmd.Env = append(os.Environ(), centrifugoSecretEnv+"="+os.Getenv(o.jwtEnv))
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := g.cmd.Start(); err != nil {
		_ = g.logFile.Close()
		return nil, fmt.Errorf("start %s: %w", o.peer, err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		g.exitedAt = time.Now()
		_ = g.logFile.Close()
		close(g.done)
	}()
	if err := g.waitListening(ctx, 15*time.Second); err != nil {
		stopGateways([]*gatewayProc{g}, 5*time.Second)
		return nil, err
	}
	return g, nil
}

// appendCentrifugoConnect appends the connect command of Centrifugo's JSON
// protocol with token.
func appendCentrifugoConnect(dst []byte, token string) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, centrifugoConnectID, 10)
	dst = append(dst, `,"connect":{"token":`...)
	dst = strconv.AppendQuote(dst, token)
	return append(dst, `}}`...)
}

// appendCentrifugoRPC appends the rpc command with id calling method with
// data, a JSON value sent as it is.
func appendCentrifugoRPC(dst []byte, id int, method string, data []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	dst = append(dst, `,"rpc":{"method":`...)
	dst = strconv.AppendQuote(dst, method)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, `}}`...)
}

// appendCentrifugoRPCReply appends the reply Centrifugo sends to the rpc
// command with id when the result carries data (the RPC proxy's echo) or,
// with data nil, none (the built-in ping).
func appendCentrifugoRPCReply(dst []byte, id int, data []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	if data == nil {
		return append(dst, `,"rpc":{}}`...)
	}
	dst = append(dst, `,"rpc":{"data":`...)
	dst = append(dst, data...)
	return append(dst, `}}`...)
}

// server names the server an echo run measures: wsgate, or the -peer.
func (o *echoOptions) server() string {
	if o.peer != "" {
		return o.peer
	}
	return "gateway"
}

// centrifugoMessage appends to req the rpc command that carries message k,
// whose data is payload, and to reply the reply expected: the data echoed
// through the RPC proxy (-backend http), or an empty result from the
// built-in ping (mock).
func (o *echoOptions) centrifugoMessage(req, reply []byte, k int, payload []byte) ([]byte, []byte) {
	id := k + centrifugoFirstRPCID
	var data []byte
	if o.backend == backendHTTP {
		data = payload
	}
	return appendCentrifugoRPC(req, id, o.action, payload), appendCentrifugoRPCReply(reply, id, data)
}

// centrifugoReply is what wsbench reads from a reply it did not expect, to
// say what went wrong.
type centrifugoReply struct {
	ID      uint32          `json:"id"`
	Connect json.RawMessage `json:"connect"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Disconnect *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"disconnect"`
}

// errCentrifugoReply is a reply that refused a command.
var errCentrifugoReply = errors.New("centrifugo refused the command")

// checkCentrifugoReply returns nil when msg is a reply to id of the
// connect command (connect) or any command, and an error saying what it is
// otherwise.
func checkCentrifugoReply(msg []byte, id uint32, connect bool) error {
	var r centrifugoReply
	if err := json.Unmarshal(msg, &r); err != nil {
		return fmt.Errorf("reply %.200q: %w", msg, err)
	}
	switch {
	case r.Error != nil:
		return fmt.Errorf("%w: error %d %q", errCentrifugoReply, r.Error.Code, r.Error.Message)
	case r.Disconnect != nil:
		return fmt.Errorf("%w: disconnect %d %q", errCentrifugoReply, r.Disconnect.Code, r.Disconnect.Reason)
	case r.ID != id:
		return fmt.Errorf("reply %.200q: id %d, want %d", msg, r.ID, id)
	case connect && len(r.Connect) == 0:
		return fmt.Errorf("reply %.200q: no connect result", msg)
	}
	return nil
}

// isCentrifugoPing reports whether msg is the server's ping, an empty
// command ({}), which a client must answer with an empty one.
func isCentrifugoPing(msg []byte) bool {
	return bytes.Equal(bytes.TrimSpace(msg), []byte("{}"))
}

// readCentrifugo reads the next message that is not the server's ping,
// answering pings on the way. A connection has one command in flight, so
// one reply comes per message; a ping sent in the same frame as a reply
// (lines of one frame) is answered and taken out.
func (e *echoConn) readCentrifugo(buf []byte) ([]byte, error) {
	for {
		msg, err := e.readMessage(buf, false)
		if err != nil {
			return nil, err
		}
		out := msg[:0]
		for line := range bytes.Lines(msg) {
			if isCentrifugoPing(line) {
				if err := e.write(clientFrame(nil, wsproto.OpText, []byte("{}"))); err != nil {
					return nil, err
				}
				continue
			}
			if len(out) > 0 {
				out = append(out, '\n')
			}
			out = append(out, bytes.TrimSuffix(line, []byte("\n"))...)
		}
		if len(out) > 0 {
			return out, nil
		}
		buf = msg[:0]
	}
}

// centrifugoConnect sends the connect command with token on every
// connection, in parallel, and waits for the replies. It returns the
// connections Centrifugo accepted and the failures of the others, which it
// closes.
func centrifugoConnect(conns []*echoConn, token string, timeout time.Duration) ([]*echoConn, failures) {
	frame := clientFrame(nil, wsproto.OpText, appendCentrifugoConnect(nil, token))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, e := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = e.c.SetDeadline(time.Now().Add(timeout))
			defer func() { _ = e.c.SetDeadline(time.Time{}) }()
			if err := e.write(frame); err != nil {
				errs[i] = err
				return
			}
			msg, err := e.readCentrifugo(nil)
			if err == nil {
				err = checkCentrifugoReply(msg, centrifugoConnectID, true)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	var fails failures
	ok := conns[:0]
	for i, e := range conns {
		if errs[i] != nil {
			cause := classify(errs[i])
			if errors.Is(errs[i], errCentrifugoReply) {
				cause = "connect refused"
			}
			fails.addCause(cause, errs[i].Error(), 1)
			_ = e.c.Close()
			continue
		}
		ok = append(ok, e)
	}
	return ok, fails
}

// centrifugoAnswer is the wsbench backend's answer to Centrifugo's RPC
// proxy: the request's data, unchanged, as the result
// ({"result":{"data":<data>}}; b64data when the proxy sends binary).
func centrifugoAnswer(request []byte) ([]byte, error) {
	var req struct {
		Data    json.RawMessage `json:"data"`
		B64Data string          `json:"b64data"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, err
	}
	type result struct {
		Data    json.RawMessage `json:"data,omitempty"`
		B64Data string          `json:"b64data,omitempty"`
	}
	return json.Marshal(struct {
		Result result `json:"result"`
	}{result{req.Data, req.B64Data}})
}
