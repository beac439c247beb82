// Package browsertest starts a headless Chromium for tests and drives it over
// the Chrome DevTools Protocol (CDP): load a page, run JavaScript in it and
// read back the result. It speaks CDP directly over a WebSocket, so tests
// need nothing but Debian's chromium package.
//
// A Browser is started once per test (Start) and shared by its subtests.
// Every Eval runs in a fresh browser context, with its own cookie jar and
// storage, so evaluations do not see each other's cookies.
package browsertest

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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// RequireEnv names the environment variable that turns a missing Chromium
// from a skip into a failure. CI sets it to 1.
const RequireEnv = "WSGATE_REQUIRE_SERVICES"

// flags are the switches every Chromium here runs with: headless, as root,
// and without reaching for the network on its own (this machine's network is
// closed, and background requests only slow the start down).
var flags = []string{
	"--headless",
	"--no-sandbox",
	"--disable-gpu",
	"--disable-background-networking",
	"--no-first-run",
	"--disable-quic",
	"--disable-component-update",
	"--disable-sync",
	"--remote-debugging-port=0",
}

const (
	startTimeout = 30 * time.Second
	evalTimeout  = 30 * time.Second
)

// Browser is a running headless Chromium with one CDP connection to it. Its
// methods are safe for concurrent use. The process, the connection and the
// profile directory are removed by the cleanup Start registers.
type Browser struct {
	cmd    *exec.Cmd
	dir    string
	output *tailBuffer
	exited chan struct{} // closed when the process has been waited for

	conn   *websocket.Conn
	nextID atomic.Int64
	done   chan struct{} // closed when the reader has returned

	// pendingMu guards the waiters for command responses and session events.
	pendingMu sync.Mutex
	calls     map[int64]chan message
	sessions  map[string]chan message
	readErr   error
}

// Start launches Chromium with a fresh profile and connects to it. When no
// chromium executable is found the test is skipped, or fails when
// WSGATE_REQUIRE_SERVICES=1.
func Start(t testing.TB) *Browser {
	t.Helper()
	return StartWith(t)
}

// StartWith is Start with extra command-line switches, such as
// --ignore-certificate-errors-spki-list=HASH to trust a test certificate.
func StartWith(t testing.TB, extra ...string) *Browser {
	t.Helper()
	path, err := Executable()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("browser test needs Chromium: %v (%s=1)", err, RequireEnv)
		}
		t.Skipf("browser test skipped: %v; install Debian's chromium package (apt-get install chromium); with %s=1 this is a failure", err, RequireEnv)
	}
	b, err := launch(path, extra)
	if b != nil {
		t.Cleanup(func() {
			if err := b.close(); err != nil {
				t.Errorf("browser cleanup: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var v struct {
		Product string `json:"product"`
	}
	if err := b.call(ctx, "", "Browser.getVersion", nil, &v); err != nil {
		t.Fatalf("Browser.getVersion: %v", err)
	}
	t.Logf("browser: %s", v.Product)
	return b
}

// Executable returns the Chromium to run: chromium on PATH, else
// /usr/bin/chromium.
func Executable() (string, error) {
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	const debian = "/usr/bin/chromium"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return "", errors.New("no chromium on PATH or at /usr/bin/chromium")
}

// launch starts Chromium and connects to its browser endpoint. On error
// the returned Browser, when not nil, must still be closed.
func launch(path string, extra []string) (*Browser, error) {
	dir, err := os.MkdirTemp("", "wsgate-chromium-")
	if err != nil {
		return nil, err
	}
	b := &Browser{
		dir:      dir,
		output:   &tailBuffer{max: 16 << 10},
		exited:   make(chan struct{}),
		done:     make(chan struct{}),
		calls:    map[int64]chan message{},
		sessions: map[string]chan message{},
	}
	args := append(append(append([]string(nil), flags...), extra...), "--user-data-dir="+dir, "about:blank")
	b.cmd = exec.Command(path, args...)
	// Whatever Chromium keeps outside the profile stays in dir as well.
	b.cmd.Env = append(os.Environ(),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	b.cmd.Stdout = b.output
	b.cmd.Stderr = b.output
	// Chromium forks renderer and helper processes; a process group of
	// their own lets cleanup end all of them.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.cmd.WaitDelay = 2 * time.Second
	if err := b.cmd.Start(); err != nil {
		close(b.exited)
		close(b.done)
		return b, err
	}
	go func() {
		_ = b.cmd.Wait()
		close(b.exited)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	wsURL, err := b.devToolsURL(ctx)
	if err != nil {
		close(b.done)
		return b, fmt.Errorf("%w\nchromium output:\n%s", err, b.output)
	}
	conn, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		close(b.done)
		return b, fmt.Errorf("connect to DevTools at %s: %w", wsURL, err)
	}
	conn.SetReadLimit(64 << 20)
	b.conn = conn
	go b.read()
	return b, nil
}

// devToolsURL waits for Chromium to write DevToolsActivePort into its
// profile: the port on the first line, the browser target's path on the
// second.
func (b *Browser) devToolsURL(ctx context.Context) (string, error) {
	file := filepath.Join(b.dir, "DevToolsActivePort")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if data, err := os.ReadFile(file); err == nil {
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) == 2 && strings.HasPrefix(lines[1], "/devtools/browser/") {
				if port, err := strconv.Atoi(strings.TrimSpace(lines[0])); err == nil && port > 0 {
					return "ws://127.0.0.1:" + strconv.Itoa(port) + strings.TrimSpace(lines[1]), nil
				}
			}
		}
		select {
		case <-b.exited:
			return "", fmt.Errorf("chromium exited before opening DevTools (%v)", b.cmd.ProcessState)
		case <-ctx.Done():
			return "", fmt.Errorf("no DevToolsActivePort after %v", startTimeout)
		case <-tick.C:
		}
	}
}

// Eval loads pageURL in a new tab of a new browser context, waits for its
// load event, evaluates js there and returns the value it produced, as
// JSON. A promise is awaited. The test fails if the page cannot be loaded,
// js throws or the promise rejects, or the whole takes more than 30
// seconds. The tab and its context are gone when Eval returns.
func (b *Browser) Eval(t testing.TB, pageURL, js string) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), evalTimeout)
	defer cancel()
	v, err := b.eval(ctx, pageURL, js)
	if err != nil {
		t.Fatalf("eval on %s: %v", pageURL, err)
	}
	return v
}

func (b *Browser) eval(ctx context.Context, pageURL, js string) (_ json.RawMessage, err error) {
	var bc struct {
		ID string `json:"browserContextId"`
	}
	if err := b.call(ctx, "", "Target.createBrowserContext", map[string]any{"disposeOnDetach": true}, &bc); err != nil {
		return nil, err
	}
	defer func() {
		// Disposing of the context closes its tab too.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if cerr := b.call(cctx, "", "Target.disposeBrowserContext", map[string]any{"browserContextId": bc.ID}, nil); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var target struct {
		ID string `json:"targetId"`
	}
	err = b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.ID}, &target)
	if err != nil {
		return nil, err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	err = b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.ID, "flatten": true}, &attached)
	if err != nil {
		return nil, err
	}
	session := attached.SessionID
	events := b.subscribe(session)
	defer b.unsubscribe(session)

	if err := b.call(ctx, session, "Page.enable", nil, nil); err != nil {
		return nil, err
	}
	if err := b.call(ctx, session, "Page.setLifecycleEventsEnabled", map[string]any{"enabled": true}, nil); err != nil {
		return nil, err
	}
	var nav struct {
		LoaderID  string `json:"loaderId"`
		ErrorText string `json:"errorText"`
	}
	if err := b.call(ctx, session, "Page.navigate", map[string]any{"url": pageURL}, &nav); err != nil {
		return nil, err
	}
	if nav.ErrorText != "" {
		return nil, fmt.Errorf("navigate: %s", nav.ErrorText)
	}
	if err := b.awaitLoad(ctx, events, nav.LoaderID); err != nil {
		return nil, err
	}

	var res struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception *struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err = b.call(ctx, session, "Runtime.evaluate", map[string]any{
		"expression":    js,
		"awaitPromise":  true,
		"returnByValue": true,
	}, &res)
	if err != nil {
		return nil, err
	}
	if d := res.ExceptionDetails; d != nil {
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg = d.Exception.Description
		}
		return nil, fmt.Errorf("javascript: %s", msg)
	}
	if len(res.Result.Value) == 0 {
		// undefined, or a value returnByValue cannot carry.
		return json.RawMessage("null"), nil
	}
	return res.Result.Value, nil
}

// awaitLoad waits for the load lifecycle event of the navigation loaderID.
func (b *Browser) awaitLoad(ctx context.Context, events <-chan message, loaderID string) error {
	for {
		select {
		case m := <-events:
			if m.Method != "Page.lifecycleEvent" {
				continue
			}
			var ev struct {
				LoaderID string `json:"loaderId"`
				Name     string `json:"name"`
			}
			if json.Unmarshal(m.Params, &ev) == nil && ev.Name == "load" && (loaderID == "" || ev.LoaderID == loaderID) {
				return nil
			}
		case <-b.done:
			return b.brokenErr()
		case <-ctx.Done():
			return fmt.Errorf("page load: %w", ctx.Err())
		}
	}
}

// message is one CDP message in either direction: a command (ID, Method,
// Params), its response (ID, Result or Error) or an event (Method, Params).
// SessionID addresses a page target attached with flatten.
type message struct {
	ID        int64           `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    string `json:"data"`
	} `json:"error,omitempty"`
}

// call sends one command and waits for its response, decoding the result
// into result when it is not nil.
func (b *Browser) call(ctx context.Context, session, method string, params, result any) error {
	m := message{ID: b.nextID.Add(1), SessionID: session, Method: method}
	if params != nil {
		p, err := json.Marshal(params)
		if err != nil {
			return err
		}
		m.Params = p
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	reply := make(chan message, 1)
	b.pendingMu.Lock()
	if b.readErr != nil {
		b.pendingMu.Unlock()
		return b.brokenErr()
	}
	b.calls[m.ID] = reply
	b.pendingMu.Unlock()
	defer func() {
		b.pendingMu.Lock()
		delete(b.calls, m.ID)
		b.pendingMu.Unlock()
	}()
	if err := b.conn.Write(ctx, websocket.MessageText, data); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-reply:
		if r.Error != nil {
			return fmt.Errorf("%s: %s (%d) %s", method, r.Error.Message, r.Error.Code, r.Error.Data)
		}
		if result != nil {
			if err := json.Unmarshal(r.Result, result); err != nil {
				return fmt.Errorf("%s: decode result: %w", method, err)
			}
		}
		return nil
	case <-b.done:
		return fmt.Errorf("%s: %w", method, b.brokenErr())
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// subscribe returns the channel that receives the events of session. Events
// that arrive while it is full are dropped: the reader never blocks.
func (b *Browser) subscribe(session string) <-chan message {
	ch := make(chan message, 256)
	b.pendingMu.Lock()
	b.sessions[session] = ch
	b.pendingMu.Unlock()
	return ch
}

func (b *Browser) unsubscribe(session string) {
	b.pendingMu.Lock()
	delete(b.sessions, session)
	b.pendingMu.Unlock()
}

// read delivers responses to their callers and events to their sessions
// until the connection ends.
func (b *Browser) read() {
	defer close(b.done)
	for {
		_, data, err := b.conn.Read(context.Background())
		if err != nil {
			b.pendingMu.Lock()
			b.readErr = err
			b.pendingMu.Unlock()
			return
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			continue
		}
		b.pendingMu.Lock()
		if m.ID != 0 {
			if ch, ok := b.calls[m.ID]; ok {
				ch <- m // buffered for exactly this one response
			}
		} else if ch, ok := b.sessions[m.SessionID]; ok && m.SessionID != "" {
			select {
			case ch <- m:
			default:
			}
		}
		b.pendingMu.Unlock()
	}
}

func (b *Browser) brokenErr() error {
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	return fmt.Errorf("DevTools connection lost: %v\nchromium output:\n%s", b.readErr, b.output)
}

// close ends the CDP connection, kills Chromium's process group, waits for
// it and removes the profile directory.
func (b *Browser) close() error {
	if b.conn != nil {
		_ = b.conn.CloseNow()
	}
	<-b.done
	if b.cmd.Process != nil {
		pgid := b.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-b.exited
		// Crash handlers run in sessions of their own and normally leave
		// with the browser; whatever is still running is killed here.
		for i := 0; i < 250; i++ {
			pids := b.leftovers(pgid)
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	<-b.exited
	// Helpers that were still exiting may write into the profile for a
	// moment after the browser process is gone.
	var err error
	for i := 0; i < 50; i++ {
		if err = os.RemoveAll(b.dir); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove profile: %w", err)
}

// leftovers returns the processes of this browser that are still running
// (zombies are not): those in its process group and those whose command
// line names its profile directory.
func (b *Browser) leftovers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		if fields[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(b.dir)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if over := w.buf.Len() - w.max; over > 0 {
		w.buf.Next(over)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
