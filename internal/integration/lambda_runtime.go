package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Invoker invokes a Lambda function with a JSON payload and returns its
// result. A function that ran and failed comes back as a *FunctionError;
// any other error means the function could not be invoked or did not
// answer. Implementations are safe for concurrent use.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// FunctionError is a Lambda function error: the function threw, returned an
// error or exited during an invocation. Message and Type are the
// errorMessage and errorType of Lambda's error payload.
type FunctionError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return "function error: " + e.Message
	}
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// parseFunctionError reads Lambda's error payload; a payload that is not
// one keeps its text as the message.
func parseFunctionError(body []byte, typ string) *FunctionError {
	fe := &FunctionError{}
	if json.Unmarshal(body, fe) != nil || fe.Message == "" && fe.Type == "" {
		fe = &FunctionError{Message: truncate(bytes.TrimSpace(body), 256)}
	}
	if fe.Type == "" {
		fe.Type = typ
	}
	return fe
}

// ErrRuntimeClosed is returned by LocalRuntime.Invoke after Close.
var ErrRuntimeClosed = errors.New("lambda runtime closed")

// RuntimeConfig describes a local Lambda function: a program built with a
// Lambda runtime client, such as aws-lambda-go's lambda.Start.
type RuntimeConfig struct {
	// Command is the program; a name without a slash is looked up in PATH.
	Command string
	Args    []string
	// Environ holds environment variables ("KEY=value") applied after the
	// ones a Lambda execution environment defines and before Env: what the
	// gateway gives every local function, such as credentials.
	Environ []string
	// Env holds extra environment variables, applied last so that they
	// override the AWS_* variables the runtime sets and Environ.
	Env map[string]string
	// Concurrency is the number of processes, each handling one invocation
	// at a time. Zero means 1.
	Concurrency int
	// FunctionName names the function in AWS_LAMBDA_FUNCTION_NAME and the
	// invoked ARN. Default: the command's base name.
	FunctionName string
	// Region is AWS_REGION's default and the ARN's region. Default
	// "us-east-1".
	Region string
	// Timeout is the deadline of an invocation whose context has none.
	// Default 29s, the longest integration timeout of API Gateway.
	Timeout time.Duration
	// FunctionTimeout is the function's own timeout, counted from when a
	// process takes the invocation: past it, the invocation fails with a
	// Sandbox.Timedout function error, as Lambda's does, and the process is
	// killed and restarted. Zero means none.
	FunctionTimeout time.Duration
	// MemorySize is AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB. Default 128.
	MemorySize int
	Logger     *slog.Logger
}

// LocalRuntime runs a Lambda function locally: it serves the Lambda Runtime
// API (2018-06-01) on loopback and keeps Concurrency copies of the program
// running with AWS_LAMBDA_RUNTIME_API pointing at it. Each process handles
// one invocation at a time, as a Lambda execution environment does. A
// process that exits is restarted with backoff, and the invocation it was
// handling fails with a Runtime.ExitError function error; an invocation that
// runs past its deadline, or past FunctionTimeout (a Sandbox.Timedout
// function error), fails and its process is killed and restarted, as Lambda
// resets a timed-out environment.
//
// NewLocalRuntime only resolves the command; Start starts the processes and
// Close stops them. Each process gets a listener of its own so the runtime
// knows which process an API call comes from.
type LocalRuntime struct {
	cfg     RuntimeConfig
	path    string
	arn     string
	log     *slog.Logger
	queue   chan *invocation
	done    chan struct{}
	workers []*worker
	wg      sync.WaitGroup

	stateMu sync.Mutex
	started bool
	closed  bool
}

var _ Invoker = (*LocalRuntime)(nil)

// invocation is one queued or running invocation. result is buffered so
// that the runtime never blocks on a caller that gave up.
type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	result   chan invokeResult
	once     sync.Once
	// started is closed when a process takes the invocation, at
	// startedAt; next sets both.
	started   chan struct{}
	startedAt time.Time
}

type invokeResult struct {
	body []byte
	err  error
}

func (inv *invocation) finish(body []byte, err error) {
	inv.once.Do(func() { inv.result <- invokeResult{body, err} })
}

// worker is one process slot. Its Runtime API server answers only its own
// listener, so every request on it comes from the worker's process.
type worker struct {
	rt   *LocalRuntime
	ln   net.Listener
	addr string
	srv  *fasthttp.Server

	mu      sync.Mutex
	gen     int // incremented on each process start
	alive   bool
	proc    *os.Process
	current *invocation
	// exit is closed when the process of generation gen exits.
	exit chan struct{}
	// conns holds the open Runtime API connections; nil once closed.
	conns map[*genConn]struct{}
}

// genConn is a Runtime API connection, tagged at accept time with the
// worker's process generation, so that a call from a process that has since
// been replaced is recognised, and with the channel closed when that
// process exits, which ends a long-polling next: the server does not watch
// a connection for a close while its handler runs.
type genConn struct {
	net.Conn
	gen  int
	exit <-chan struct{}
}

// serve accepts the worker's Runtime API connections until the listener
// closes, serving each on a goroutine of its own: there are as many as
// the function has processes, so fasthttp's worker pool (and its cleaner
// goroutine, which outlives the server) is not needed.
func (w *worker) serve() {
	for {
		c, err := w.ln.Accept()
		if err != nil {
			return
		}
		w.mu.Lock()
		if w.conns == nil {
			w.mu.Unlock()
			_ = c.Close()
			return
		}
		gc := &genConn{Conn: c, gen: w.gen, exit: w.exit}
		w.conns[gc] = struct{}{}
		w.mu.Unlock()
		w.rt.wg.Add(1)
		go func() {
			defer w.rt.wg.Done()
			_ = w.srv.ServeConn(gc)
			w.mu.Lock()
			delete(w.conns, gc)
			w.mu.Unlock()
		}()
	}
}

// closeConns closes the listener and every open connection; no new
// connection is served after it.
func (w *worker) closeConns() {
	_ = w.ln.Close()
	w.mu.Lock()
	conns := w.conns
	w.conns = nil
	w.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// NewLocalRuntime resolves cfg.Command and prepares the runtime without
// starting anything.
func NewLocalRuntime(cfg RuntimeConfig) (*LocalRuntime, error) {
	path, err := exec.LookPath(cfg.Command)
	if err != nil {
		return nil, fmt.Errorf("lambda command: %w", err)
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.FunctionName == "" {
		cfg.FunctionName = filepath.Base(cfg.Command)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 29 * time.Second
	}
	if cfg.MemorySize <= 0 {
		cfg.MemorySize = 128
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rt := &LocalRuntime{
		cfg:   cfg,
		path:  path,
		arn:   "arn:aws:lambda:" + cfg.Region + ":000000000000:function:" + cfg.FunctionName,
		log:   cfg.Logger.With("component", "lambda", "function", cfg.FunctionName),
		queue: make(chan *invocation),
		done:  make(chan struct{}),
	}
	return rt, nil
}

// Start listens and starts the processes. It fails when a listener cannot
// be bound or the program cannot be started at all.
func (rt *LocalRuntime) Start() error {
	rt.stateMu.Lock()
	defer rt.stateMu.Unlock()
	if rt.closed {
		return ErrRuntimeClosed
	}
	if rt.started {
		return nil
	}
	rt.started = true
	for range rt.cfg.Concurrency {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			rt.closeListeners()
			return fmt.Errorf("lambda runtime API: %w", err)
		}
		w := &worker{rt: rt, ln: ln, addr: ln.Addr().String(), conns: map[*genConn]struct{}{}}
		w.srv = rt.newServer(w)
		rt.workers = append(rt.workers, w)
	}
	for _, w := range rt.workers {
		rt.wg.Add(1)
		go func() {
			defer rt.wg.Done()
			w.serve()
		}()
	}
	var errs []error
	for _, w := range rt.workers {
		cmd, err := w.start()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rt.wg.Add(1)
		go func() {
			defer rt.wg.Done()
			w.run(cmd)
		}()
	}
	if len(errs) > 0 {
		rt.stateMu.Unlock()
		rt.Close()
		rt.stateMu.Lock()
		return errors.Join(errs...)
	}
	return nil
}

func (rt *LocalRuntime) closeListeners() {
	for _, w := range rt.workers {
		_ = w.ln.Close()
	}
}

// environ is the process environment: wsgate's own without
// AWS_SESSION_TOKEN (a token of wsgate's credentials would pair with none of
// the function's), the variables a Lambda execution environment defines,
// cfg.Environ, then cfg.Env.
func (w *worker) environ() []string {
	c := w.rt.cfg
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "AWS_SESSION_TOKEN" && k != "AWS_SECURITY_TOKEN" {
			env = append(env, kv)
		}
	}
	env = append(env,
		"AWS_LAMBDA_RUNTIME_API="+w.addr,
		"AWS_LAMBDA_FUNCTION_NAME="+c.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(c.MemorySize),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+c.FunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=wsgate",
		"AWS_REGION="+c.Region,
		"AWS_DEFAULT_REGION="+c.Region,
		"AWS_EXECUTION_ENV=wsgate",
	)
	env = append(env, c.Environ...)
	for k, v := range c.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// outputDelay is how long the wait for a function process that has exited
// waits for the rest of its output (see exec.Cmd.WaitDelay).
const outputDelay = 100 * time.Millisecond

func (w *worker) start() (*exec.Cmd, error) {
	cmd := exec.Command(w.rt.path, w.rt.cfg.Args...)
	cmd.Env = w.environ()
	out := &lineLogger{log: w.rt.log}
	cmd.Stdout, cmd.Stderr = out, out
	// A child the program forked may hold its output open after the
	// program exits: Wait does not wait for it past outputDelay, so that
	// the exit fails the invocation and restarts the program at once, and
	// the child is killed with the program's process group.
	cmd.WaitDelay = outputDelay
	ownGroup(cmd)
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.rt.done:
		return nil, ErrRuntimeClosed
	default:
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", w.rt.cfg.Command, err)
	}
	w.gen++
	w.alive = true
	w.proc = cmd.Process
	w.exit = make(chan struct{})
	return cmd, nil
}

// run waits for the process and restarts it until the runtime closes. The
// backoff doubles from 100ms to 5s while processes keep dying young.
func (w *worker) run(cmd *exec.Cmd) {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		started := time.Now()
		err := cmd.Wait()
		killGroup(cmd.Process.Pid)
		w.exited(err)
		select {
		case <-w.rt.done:
			return
		default:
		}
		w.rt.log.Warn("lambda process exited; restarting", "pid", cmd.Process.Pid, "err", err, "after", backoff)
		if time.Since(started) > 10*time.Second {
			backoff = minBackoff
		}
		for {
			t := time.NewTimer(backoff)
			select {
			case <-w.rt.done:
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, maxBackoff)
			var serr error
			cmd, serr = w.start()
			if serr == nil {
				break
			}
			if errors.Is(serr, ErrRuntimeClosed) {
				return
			}
			w.rt.log.Error("lambda process did not start", "err", serr)
		}
	}
}

// exited fails the invocation the dead process was handling.
func (w *worker) exited(err error) {
	w.mu.Lock()
	inv := w.current
	w.current = nil
	w.alive = false
	w.proc = nil
	if w.exit != nil {
		close(w.exit) // start makes the next process's
	}
	w.mu.Unlock()
	if inv != nil {
		inv.finish(nil, exitError(inv.id, err))
	}
}

func exitError(id string, err error) *FunctionError {
	msg := "Runtime exited without providing a reason"
	if err != nil {
		msg = "Runtime exited with error: " + err.Error()
	}
	return &FunctionError{Type: "Runtime.ExitError", Message: "RequestId: " + id + " Error: " + msg}
}

// signal sends sig to the worker's process, if it runs.
func (w *worker) signal(sig os.Signal) {
	w.mu.Lock()
	p := w.proc
	w.mu.Unlock()
	if p != nil {
		_ = p.Signal(sig)
	}
}

// killIfRunning kills the process when it is still handling inv.
func (w *worker) killIfRunning(inv *invocation) {
	w.mu.Lock()
	p := w.proc
	running := w.current == inv
	w.mu.Unlock()
	if running && p != nil {
		_ = p.Kill()
	}
}

// Invoke implements Invoker. The invocation waits for a free process.
func (rt *LocalRuntime) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	rt.stateMu.Lock()
	started, closed := rt.started, rt.closed
	rt.stateMu.Unlock()
	if closed {
		return nil, ErrRuntimeClosed
	}
	if !started {
		return nil, errors.New("lambda runtime not started")
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(rt.cfg.Timeout)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	inv := &invocation{id: newRequestID(), payload: payload, deadline: deadline,
		result: make(chan invokeResult, 1), started: make(chan struct{})}
	select {
	case rt.queue <- inv:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-rt.done:
		return nil, ErrRuntimeClosed
	}
	taken := inv.started
	if rt.cfg.FunctionTimeout <= 0 {
		taken = nil
	}
	var timedOut <-chan time.Time
	for {
		select {
		case r := <-inv.result:
			return r.body, r.err
		case <-taken:
			taken = nil
			t := time.NewTimer(time.Until(inv.startedAt.Add(rt.cfg.FunctionTimeout)))
			defer t.Stop()
			timedOut = t.C
		case <-timedOut:
			rt.kill(inv)
			return nil, rt.timeoutError(inv)
		case <-ctx.Done():
			rt.kill(inv)
			return nil, ctx.Err()
		case <-rt.done:
			return nil, ErrRuntimeClosed
		}
	}
}

// kill kills the process handling inv, if one still does.
func (rt *LocalRuntime) kill(inv *invocation) {
	for _, w := range rt.workers {
		w.killIfRunning(inv)
	}
}

// timeoutError is the error of an invocation that ran past the function's
// timeout, as the Lambda Invoke API reports it.
func (rt *LocalRuntime) timeoutError(inv *invocation) *FunctionError {
	return &FunctionError{Type: "Sandbox.Timedout",
		Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, rt.cfg.FunctionTimeout.Seconds())}
}

// Close stops the processes (SIGTERM, then SIGKILL after two seconds) and
// the Runtime API, and waits for its goroutines. It is idempotent.
func (rt *LocalRuntime) Close() error {
	rt.stateMu.Lock()
	if rt.closed {
		rt.stateMu.Unlock()
		return nil
	}
	rt.closed = true
	started := rt.started
	rt.stateMu.Unlock()
	close(rt.done)
	if !started {
		return nil
	}
	for _, w := range rt.workers {
		w.signal(syscall.SIGTERM)
	}
	exited := make(chan struct{})
	go func() {
		rt.wg.Wait()
		close(exited)
	}()
	for _, w := range rt.workers {
		w.closeConns()
	}
	select {
	case <-exited:
		return nil
	case <-time.After(2 * time.Second):
	}
	for _, w := range rt.workers {
		w.signal(os.Kill)
	}
	<-exited
	return nil
}

// The Runtime API is served with fasthttp rather than net/http: each
// invocation is two exchanges with the function process (next, then
// response), and net/http's per-request header maps, context, mux
// matching and background read on the connection were most of the
// gateway's CPU per invocation on this path.
const runtimeAPIPrefix = "/2018-06-01/runtime/"

// DateClock is the function of the goroutine fasthttp starts once per
// process, at the first response a fasthttp server writes, to keep its
// Date header current; it runs for the life of the process. The
// goroutine-leak checks of tests that run a local runtime leave it alone
// by this name.
const DateClock = "github.com/valyala/fasthttp.updateServerDate.func1"

// newServer returns the Runtime API server of w. A response over
// MaxResponseBytes fails in the server before the handler runs, so its
// error handler fails the invocation as the handler would.
func (rt *LocalRuntime) newServer(w *worker) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                      func(ctx *fasthttp.RequestCtx) { rt.serve(w, ctx) },
		ErrorHandler:                 func(ctx *fasthttp.RequestCtx, err error) { rt.serveError(w, ctx, err) },
		Name:                         "wsgate",
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		MaxRequestBodySize:           MaxResponseBytes,
		Logger:                       slog.NewLogLogger(rt.log.Handler(), slog.LevelDebug),
		DisablePreParseMultipartForm: true,
	}
}

// caller returns the process generation and exit channel of the
// connection a request came on.
func caller(ctx *fasthttp.RequestCtx) (gen int, exit <-chan struct{}, ok bool) {
	gc, ok := ctx.Conn().(*genConn)
	if !ok {
		return 0, nil, false
	}
	return gc.gen, gc.exit, true
}

func (rt *LocalRuntime) serve(w *worker, ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	rest, ok := strings.CutPrefix(path, runtimeAPIPrefix)
	if !ok {
		plainError(ctx, fasthttp.StatusNotFound, "404 page not found")
		return
	}
	want := fasthttp.MethodPost
	var handle func(*worker, *fasthttp.RequestCtx, string)
	var id string
	switch {
	case rest == "invocation/next":
		want, handle = fasthttp.MethodGet, rt.next
	case rest == "init/error":
		handle = rt.initError
	case strings.HasPrefix(rest, "invocation/"):
		seg := rest[len("invocation/"):]
		if i := strings.IndexByte(seg, '/'); i > 0 {
			id = seg[:i]
			switch seg[i+1:] {
			case "response":
				handle = rt.response
			case "error":
				handle = rt.invocationError
			}
		}
	}
	if handle == nil {
		plainError(ctx, fasthttp.StatusNotFound, "404 page not found")
		return
	}
	if string(ctx.Method()) != want && !(want == fasthttp.MethodGet && ctx.IsHead()) {
		plainError(ctx, fasthttp.StatusMethodNotAllowed, "Method Not Allowed")
		ctx.Response.Header.Set("Allow", want)
		return
	}
	handle(w, ctx, id)
}

// next hands the process the next invocation, waiting for one.
func (rt *LocalRuntime) next(w *worker, ctx *fasthttp.RequestCtx, _ string) {
	gen, exit, ok := caller(ctx)
	if !ok {
		plainError(ctx, fasthttp.StatusForbidden, "unknown caller")
		return
	}
	var inv *invocation
	select {
	case inv = <-rt.queue:
	case <-exit:
		ctx.SetConnectionClose()
		return
	case <-rt.done:
		plainError(ctx, fasthttp.StatusGone, "runtime shutting down")
		return
	}
	w.mu.Lock()
	stale := !w.alive || w.gen != gen
	if !stale {
		w.current = inv
	}
	w.mu.Unlock()
	if stale {
		inv.finish(nil, exitError(inv.id, errors.New("process gone")))
		ctx.SetConnectionClose()
		return
	}
	inv.startedAt = time.Now()
	deadline := inv.deadline
	if t := rt.cfg.FunctionTimeout; t > 0 && inv.startedAt.Add(t).Before(deadline) {
		deadline = inv.startedAt.Add(t)
	}
	close(inv.started)
	// the names are canonical already: SetCanonical skips normalising
	// them, and the values are built on the stack
	var buf [96]byte
	h := &ctx.Response.Header
	h.SetContentType("application/json")
	h.SetCanonical(hdrRequestID, append(buf[:0], inv.id...))
	h.SetCanonical(hdrDeadline, strconv.AppendInt(buf[:0], deadline.UnixMilli(), 10))
	h.SetCanonical(hdrFunctionArn, append(buf[:0], rt.arn...))
	h.SetCanonical(hdrTraceID, appendTraceID(buf[:0], inv.startedAt))
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.SetBodyRaw(inv.payload)
}

// take removes w's current invocation if its id is id and the request
// comes from the process running it.
func (rt *LocalRuntime) take(w *worker, ctx *fasthttp.RequestCtx, id string) *invocation {
	if _, _, ok := caller(ctx); !ok {
		plainError(ctx, fasthttp.StatusForbidden, "unknown caller")
		return nil
	}
	w.mu.Lock()
	inv := w.current
	if inv != nil && inv.id == id {
		w.current = nil
	} else {
		inv = nil
	}
	w.mu.Unlock()
	if inv == nil {
		writeRuntimeError(ctx, fasthttp.StatusBadRequest, "InvalidRequestID", "no invocation "+id+" in progress")
	}
	return inv
}

func (rt *LocalRuntime) response(w *worker, ctx *fasthttp.RequestCtx, id string) {
	inv := rt.take(w, ctx, id)
	if inv == nil {
		return
	}
	if typ := ctx.Request.Header.PeekTrailer("Lambda-Runtime-Function-Error-Type"); len(typ) > 0 {
		inv.finish(nil, &FunctionError{Type: string(typ), Message: string(ctx.Request.Header.PeekTrailer("Lambda-Runtime-Function-Error-Body"))})
	} else {
		inv.finish(bytes.Clone(ctx.Request.Body()), nil)
	}
	ctx.SetStatusCode(fasthttp.StatusAccepted)
}

// serveError answers a request the server could not read. A response body
// over MaxResponseBytes fails the invocation it answers.
func (rt *LocalRuntime) serveError(w *worker, ctx *fasthttp.RequestCtx, err error) {
	if !errors.Is(err, fasthttp.ErrBodyTooLarge) {
		plainError(ctx, fasthttp.StatusBadRequest, "400 Bad Request")
		ctx.SetConnectionClose()
		return
	}
	ctx.SetConnectionClose()
	rest, _ := strings.CutPrefix(string(ctx.Path()), runtimeAPIPrefix+"invocation/")
	post := bytes.Equal(ctx.Method(), []byte(fasthttp.MethodPost))
	if id, ok := strings.CutSuffix(rest, "/response"); ok && post {
		if inv := rt.take(w, ctx, id); inv != nil {
			inv.finish(nil, &FunctionError{Type: "Function.ResponseSizeTooLarge", Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxResponseBytes)})
			writeRuntimeError(ctx, fasthttp.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response too large")
		}
		return
	}
	if id, ok := strings.CutSuffix(rest, "/error"); ok && post {
		if inv := rt.take(w, ctx, id); inv != nil {
			typ := string(ctx.Request.Header.Peek("Lambda-Runtime-Function-Error-Type"))
			inv.finish(nil, &FunctionError{Type: typ, Message: fmt.Sprintf("error payload exceeded %d bytes", MaxResponseBytes)})
			ctx.SetStatusCode(fasthttp.StatusAccepted)
		}
		return
	}
	writeRuntimeError(ctx, fasthttp.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "request too large")
}

func (rt *LocalRuntime) invocationError(w *worker, ctx *fasthttp.RequestCtx, id string) {
	inv := rt.take(w, ctx, id)
	if inv == nil {
		return
	}
	inv.finish(nil, parseFunctionError(ctx.Request.Body(), string(ctx.Request.Header.Peek("Lambda-Runtime-Function-Error-Type"))))
	ctx.SetStatusCode(fasthttp.StatusAccepted)
}

// initError logs a failed initialisation; the process is expected to exit,
// which restarts it.
func (rt *LocalRuntime) initError(_ *worker, ctx *fasthttp.RequestCtx, _ string) {
	body := ctx.Request.Body()
	if len(body) > 64<<10 {
		body = body[:64<<10]
	}
	fe := parseFunctionError(body, string(ctx.Request.Header.Peek("Lambda-Runtime-Function-Error-Type")))
	rt.log.Error("lambda init error", "errorType", fe.Type, "errorMessage", fe.Message)
	ctx.SetStatusCode(fasthttp.StatusAccepted)
}

// plainError answers with a text error. It leaves the response's headers
// set up by the server as they are, unlike RequestCtx.Error.
func plainError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(status)
	ctx.SetBodyString(msg + "\n")
}

func writeRuntimeError(ctx *fasthttp.RequestCtx, status int, typ, msg string) {
	b, _ := json.Marshal(FunctionError{Message: msg, Type: typ})
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(append(b, '\n'))
}

// newRequestID returns a random (version 4) UUID, the form of a Lambda
// request id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var (
	hdrRequestID   = []byte("Lambda-Runtime-Aws-Request-Id")
	hdrDeadline    = []byte("Lambda-Runtime-Deadline-Ms")
	hdrFunctionArn = []byte("Lambda-Runtime-Invoked-Function-Arn")
	hdrTraceID     = []byte("Lambda-Runtime-Trace-Id")
)

// appendTraceID appends an X-Ray trace header: Root=1-{epoch, 8 hex
// digits}-{96 random bits};Parent={64 random bits};Sampled=0.
func appendTraceID(b []byte, now time.Time) []byte {
	var r [20]byte
	_, _ = rand.Read(r[:])
	var epoch [4]byte
	binary.BigEndian.PutUint32(epoch[:], uint32(now.Unix()))
	b = append(b, "Root=1-"...)
	b = hex.AppendEncode(b, epoch[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, r[:12])
	b = append(b, ";Parent="...)
	b = hex.AppendEncode(b, r[12:])
	return append(b, ";Sampled=0"...)
}

// lineLogger logs a process's output line by line. exec.Cmd writes to it
// from one goroutine when it is both Stdout and Stderr.
type lineLogger struct {
	log *slog.Logger
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.log.Info("lambda output", "line", string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 64<<10 {
		l.log.Info("lambda output", "line", string(l.buf))
		l.buf = l.buf[:0]
	}
	return len(p), nil
}
