//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// Backends of wsbench echo -backend: what route x's integration is.
const (
	backendMock   = "mock"   // the gateway answers by itself
	backendHTTP   = "http"   // http integration, HTTP/1.1 keep-alive
	backendH2C    = "h2c"    // http integration with http2: true
	backendLambda = "lambda" // lambda integration through the Invoke API
	backendLocal  = "local"  // lambda integration, a local function process (aws-lambda-go)
)

var backendKinds = []string{backendMock, backendHTTP, backendH2C, backendLambda, backendLocal}

// lambdaFunctionName is the function name of the lambda backend.
const lambdaFunctionName = "wsbench"

// echoEvent is what the trivial backend reads from an event.
type echoEvent struct {
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`
}

// echoAnswer is the proxy response the trivial backend returns: the
// event's body, unchanged, so that the client gets its message back.
type echoAnswer struct {
	StatusCode      int    `json:"statusCode"`
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded,omitempty"`
}

// answerEvent is the trivial backend: it decodes the event JSON and
// returns {"statusCode":200,"body":<the event's body>}.
func answerEvent(event []byte) ([]byte, error) {
	var ev echoEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, err
	}
	return json.Marshal(echoAnswer{StatusCode: 200, Body: ev.Body, IsBase64Encoded: ev.IsBase64Encoded})
}

// backendHandler answers every POST, on any path (an http integration's
// URL or the Lambda Invoke API's), with answerEvent of its body; on
// centrifugoRPCPath, with centrifugoAnswer (Centrifugo's RPC proxy).
func backendHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, 6<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		answer, what := answerEvent, "an event"
		if r.URL.Path == centrifugoRPCPath {
			answer, what = centrifugoAnswer, "a Centrifugo RPC proxy request"
		}
		out, err := answer(b)
		if err != nil {
			http.Error(w, "not "+what+": "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		_, _ = w.Write(out)
	})
}

// runBackend is wsbench backend: the trivial HTTP backend, HTTP/1.1 and
// h2c on one listener, until ctx ends. It prints "listening ADDR" once it
// accepts.
func runBackend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wsbench backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback `address` to listen on")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: wsbench backend [-listen ADDR]

Serves the trivial backend of wsbench echo -backend: every POST, on any path,
gets {"statusCode":200,"body":<the event's body>}, over HTTP/1.1 or h2c
(HTTP/2 with prior knowledge). An http integration's URL and the Lambda
Invoke API's path both work. POSTs to /centrifugo/rpc (Centrifugo's RPC
proxy, wsbench echo -peer centrifugo) get {"result":{"data":<the request's
data>}}. Prints "listening ADDR" once it accepts; stops
on SIGTERM or SIGINT.

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return usageError{fmt.Errorf("-listen %q: a loopback address and port", *listen)}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: backendHandler(), Protocols: &p, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-done
	return err
}

// runLambdaFunction is wsbench lambda-function: the trivial backend as a
// Lambda function on aws-lambda-go's runtime client, which the gateway
// starts (a lambda integration's command) with AWS_LAMBDA_RUNTIME_API set.
func runLambdaFunction(args []string, stderr io.Writer) error {
	if len(args) > 0 {
		return usageError{errors.New("lambda-function takes no arguments")}
	}
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		fmt.Fprintln(stderr, "wsbench lambda-function is started by a gateway's lambda integration (command:), which sets AWS_LAMBDA_RUNTIME_API")
		return errUsagePrinted
	}
	lambda.Start(func(event json.RawMessage) (json.RawMessage, error) {
		return answerEvent(event)
	})
	return nil
}

// backendProc is the wsbench backend child process of an echo run.
type backendProc struct {
	cmd  *exec.Cmd
	addr string // host:port it listens on
	port int
	done chan struct{}
}

// selfCommand returns the command that runs this program with args. Under
// go test it is the test binary, which runs main when asMainEnv is set.
func selfCommand(args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	return cmd, nil
}

// asMainEnv, set to 1, makes the wsbench test binary run as wsbench, so
// that tests can start its subcommands as processes.
const asMainEnv = "WSBENCH_AS_MAIN"

// startBackend starts wsbench backend on a free loopback port and waits
// until it accepts.
func startBackend(ctx context.Context, logPath string) (*backendProc, error) {
	cmd, err := selfCommand("backend", "-listen", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		_ = logFile.Close()
		return nil, err
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start backend: %w", err)
	}
	b := &backendProc{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		br := bufio.NewReader(out)
		line, err := br.ReadString('\n')
		if err == nil {
			lines <- strings.TrimSuffix(line, "\n")
		}
		close(lines)
		_, _ = io.Copy(logFile, br)
	}()
	go func() {
		// Wait closes the pipe: only once everything was read from it.
		<-copied
		_ = cmd.Wait()
		_ = logFile.Close()
		close(b.done)
	}()
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case line, ok := <-lines:
		addr, found := strings.CutPrefix(line, "listening ")
		_, port, err := net.SplitHostPort(addr)
		if !ok || !found || err != nil {
			b.stop()
			return nil, fmt.Errorf("backend did not start (see %s)", logPath)
		}
		b.addr = addr
		b.port, _ = strconv.Atoi(port)
		return b, nil
	case <-timer.C:
		b.stop()
		return nil, fmt.Errorf("backend not listening after 15s (see %s)", logPath)
	case <-ctx.Done():
		b.stop()
		return nil, ctx.Err()
	}
}

func (b *backendProc) pid() int { return b.cmd.Process.Pid }

// stop sends SIGTERM and waits for the exit, killing the process after
// 10 seconds.
func (b *backendProc) stop() {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// backendIntegration returns the YAML mapping of route x's integration for
// backend kind, under a route's "integration:" key, indented by six
// spaces. addr is the backend's address (http, h2c, lambda); self is the
// command of the local function (local).
func backendIntegration(kind, addr string, self []string, concurrency int) string {
	switch kind {
	case backendHTTP, backendH2C:
		return fmt.Sprintf("      type: http\n      url: %q\n      http2: %t\n", "http://"+addr+"/x", kind == backendH2C)
	case backendLambda:
		return fmt.Sprintf("      type: lambda\n      lambda:\n        function_name: %s\n        endpoint: %q\n", lambdaFunctionName, "http://"+addr)
	case backendLocal:
		var b strings.Builder
		fmt.Fprintf(&b, "      type: lambda\n      lambda:\n        command: %q\n        args: [", self[0])
		for i, a := range self[1:] {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", a)
		}
		fmt.Fprintf(&b, "]\n        env: {%s: \"1\"}\n        name: %s\n        concurrency: %d\n", asMainEnv, lambdaFunctionName, concurrency)
		return b.String()
	}
	return "      type: mock\n"
}

// timeWait counts the TCP sockets in TIME-WAIT whose local or remote port
// is port, from /proc/net/tcp and /proc/net/tcp6.
func timeWait(port int) (int, error) {
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return 0, err
		}
		n += countTimeWait(b, port)
	}
	return n, nil
}

// countTimeWait counts the lines of a /proc/net/tcp table in state 06
// (TIME_WAIT) with local or remote port port.
func countTimeWait(table []byte, port int) int {
	n := 0
	want := fmt.Sprintf(":%04X", port)
	for _, line := range bytes.Split(table, []byte{'\n'})[1:] {
		f := strings.Fields(string(line))
		if len(f) < 4 || f[3] != "06" {
			continue
		}
		if strings.HasSuffix(f[1], want) || strings.HasSuffix(f[2], want) {
			n++
		}
	}
	return n
}

// childPIDs returns the pids of the children of pid, from
// /proc/PID/task/*/children.
func childPIDs(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	seen := map[int]bool{}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}
