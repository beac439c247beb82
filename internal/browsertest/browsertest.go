// Package browsertest starts a headless Chromium for tests and drives it with
// chromedp (github.com/chromedp/chromedp), which talks to the browser over the
// Chrome DevTools Protocol on a pipe. Tests need nothing but Debian's chromium
// package.
//
// A Browser is started once per test (Start) and shared by its subtests. Eval
// loads a page and runs JavaScript in it; NewTab gives a test or subtest a
// chromedp context of its own to run any chromedp action in; Screenshot and
// FullScreenshot save PNGs of a tab. Every Eval and every tab runs in a fresh
// browser context, with its own cookie jar and storage, so they do not see
// each other's cookies. Tabs show Width×Height pixels.
//
// Start's cleanup closes the browser, ends every Chromium process it started
// and removes its profile directory; no goroutine of the package outlives it.
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// RequireEnv names the environment variable that turns a missing Chromium
// from a skip into a failure. CI sets it to 1.
const RequireEnv = "WSGATE_REQUIRE_SERVICES"

// Width and Height are the size in CSS pixels of the viewport of every tab,
// and so of a viewport screenshot (at a device scale factor of 1).
const (
	Width  = 1280
	Height = 800
)

// flags are the switches every Chromium here runs with: headless, as root,
// and without reaching for the network on its own (this machine's network is
// closed, and background requests only slow the start down). chromedp adds
// --remote-debugging-pipe, --user-data-dir with a fresh directory, and
// about:blank.
var flags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("headless", true),
	chromedp.Flag("no-sandbox", true),
	chromedp.Flag("disable-gpu", true),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("no-first-run", true),
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("window-size", fmt.Sprintf("%d,%d", Width, Height)),
}

const (
	startTimeout = 30 * time.Second
	openTimeout  = 30 * time.Second
	evalTimeout  = 30 * time.Second
	closeTimeout = 10 * time.Second
)

// Browser is a running headless Chromium. Its methods are safe for
// concurrent use. The processes and the profile directory are removed by the
// cleanup Start registers.
type Browser struct {
	// ctx is the chromedp context of the browser's first tab: it owns the
	// process. Tabs are its children.
	ctx    context.Context
	cancel context.CancelFunc // cancels ctx and waits for the browser to stop
	stop   context.CancelFunc // kills the browser without waiting
	// allocCancel cancels the allocator and waits for its goroutines.
	allocCancel context.CancelFunc

	output *tailBuffer
	// dir is the profile directory chromedp made (--user-data-dir).
	dir string

	// logMu guards logf, which is nil once the browser is closed, so that
	// nothing logs to a finished test.
	logMu sync.Mutex
	logf  func(format string, args ...any)
}

// Start launches Chromium with a fresh profile and connects to it. opts add
// to or override the switches it starts with, for example
// chromedp.Flag("ignore-certificate-errors-spki-list", hash) to trust a test
// certificate; they leave the profile directory (user-data-dir) and the
// DevTools pipe to Start. When no chromium executable is found the test is
// skipped, or fails when WSGATE_REQUIRE_SERVICES=1.
func Start(t testing.TB, opts ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	path, err := Executable()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("browser test needs Chromium: %v (%s=1)", err, RequireEnv)
		}
		t.Skipf("browser test skipped: %v; install Debian's chromium package (apt-get install chromium); with %s=1 this is a failure", err, RequireEnv)
	}
	b := &Browser{output: &tailBuffer{max: 16 << 10}, logf: t.Logf}
	all := append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(path)}, flags...)
	all = append(all,
		chromedp.CombinedOutput(b.output),
		chromedp.ModifyCmdFunc(b.prepare))
	all = append(all, opts...)

	root, stop := context.WithCancel(context.Background())
	allocCtx, allocCancel := chromedp.NewExecAllocator(root, all...)
	ctx, cancel := chromedp.NewContext(allocCtx,
		chromedp.WithBrowserOption(chromedp.WithBrowserLogf(b.log)))
	b.ctx, b.cancel, b.stop, b.allocCancel = ctx, cancel, stop, allocCancel
	t.Cleanup(func() {
		if err := b.close(); err != nil {
			t.Errorf("browser cleanup: %v", err)
		}
	})

	// The first Run starts the browser and ties it to ctx, which has no
	// deadline; a start that hangs is ended by stop.
	timer := time.AfterFunc(startTimeout, stop)
	v, err := chromedp.Run(ctx, func(ctx context.Context, _ *chromedp.Target) (browser.GetVersionResult, error) {
		return cdp.Call(ctx, chromedp.FromContext(ctx).Browser, browser.GetVersion, cdp.Empty{})
	})
	if !timer.Stop() {
		err = fmt.Errorf("not started after %v", startTimeout)
	}
	if err != nil {
		msg := err.Error()
		if out := b.output.String(); !strings.Contains(msg, out) {
			msg += "\nchromium output:\n" + out
		}
		t.Fatalf("start chromium: %s", msg)
	}
	t.Logf("browser: %s", v.Product)
	return b
}

// debianChromium is where Debian's chromium package installs the browser.
var debianChromium = "/usr/bin/chromium"

// Executable returns the Chromium to run: /usr/bin/chromium, else chromium
// on PATH.
func Executable() (string, error) {
	if _, err := os.Stat(debianChromium); err == nil {
		return debianChromium, nil
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no chromium at %s or on PATH", debianChromium)
}

// prepare adjusts the Chromium command before it starts: what Chromium
// keeps outside the profile (its XDG configuration and cache) goes into the
// profile directory too, so that cleanup removes it, and the kernel kills
// the browser if the test binary dies first.
func (b *Browser) prepare(cmd *exec.Cmd) {
	for _, arg := range cmd.Args {
		if dir, ok := strings.CutPrefix(arg, "--user-data-dir="); ok {
			b.dir = dir
		}
	}
	if b.dir != "" {
		cmd.Env = append(cmd.Env,
			"XDG_CONFIG_HOME="+filepath.Join(b.dir, "xdg-config"),
			"XDG_CACHE_HOME="+filepath.Join(b.dir, "xdg-cache"))
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// log passes chromedp's messages to the test that started the browser, until
// the browser is closed.
func (b *Browser) log(format string, args ...any) {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	if b.logf != nil {
		b.logf("chromedp: "+format, args...)
	}
}

// close asks Chromium to exit, kills it when it has not within closeTimeout,
// and waits until chromedp has ended every process of the browser, removed
// the profile directory and stopped its goroutines.
func (b *Browser) close() error {
	cctx, cancel := context.WithTimeout(b.ctx, closeTimeout)
	err := chromedp.Cancel(cctx)
	cancel()
	b.stop()
	b.cancel()
	b.allocCancel()
	b.logMu.Lock()
	b.logf = nil
	b.logMu.Unlock()
	if errors.Is(err, context.Canceled) {
		// The browser was already gone: a failed start has been reported.
		err = nil
	}
	return err
}

// NewTab opens a new tab in a new browser context, with its own cookies and
// storage, and returns its chromedp context: run actions in it with
// chromedp.Run or chromedp.Do. Its viewport is Width×Height. The tab is
// closed when the test ends. A deadline for some actions goes on a context
// derived from the tab's, which leaves the tab open when it passes; a tab
// that shares this one's cookies is chromedp.NewContext of it.
func (b *Browser) NewTab(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(func() {
		if err := chromedp.Cancel(ctx); err != nil {
			t.Errorf("close tab: %v", err)
		}
		cancel()
	})
	// The first Run ties the tab to ctx, so it runs without a deadline; an
	// open that hangs is ended by cancel.
	timer := time.AfterFunc(openTimeout, cancel)
	err := chromedp.Do(ctx, chromedp.EmulateViewport(Width, Height))
	if !timer.Stop() {
		err = fmt.Errorf("not open after %v", openTimeout)
	}
	if err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

// Eval loads pageURL in a new tab of a new browser context, waits for its
// load event, evaluates js there and returns the value it produced, as
// JSON; undefined is null. A promise is awaited. The test fails if the page
// cannot be loaded, js throws or the promise rejects, or the whole takes
// more than 30 seconds. The tab and its context are gone when Eval returns.
func (b *Browser) Eval(t testing.TB, pageURL, js string) json.RawMessage {
	t.Helper()
	v, err := b.eval(pageURL, js)
	if err != nil {
		t.Fatalf("eval on %s: %v", pageURL, err)
	}
	return v
}

func (b *Browser) eval(pageURL, js string) (_ json.RawMessage, err error) {
	tab, closeTab := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	defer func() {
		// Closing the tab disposes of its browser context too.
		if cerr := chromedp.Cancel(tab); cerr != nil && err == nil {
			err = fmt.Errorf("close tab: %w", cerr)
		}
		closeTab()
	}()
	ctx, cancel := context.WithTimeout(tab, evalTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		return nil, fmt.Errorf("navigate: %w", err)
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("javascript: %w", err)
	}
	if len(v) == 0 {
		// undefined, or a value returnByValue cannot carry.
		return json.RawMessage("null"), nil
	}
	return v, nil
}

// Screenshot saves a PNG of the viewport of the tab ctx (one NewTab
// returned), Width×Height pixels, as name.png in the test's artifact
// directory (t.ArtifactDir; go test -artifacts keeps it), logs and returns
// the file's path. name is a plain file name: not empty, without a
// directory, not starting with a dot; the test fails on any other.
func Screenshot(ctx context.Context, t testing.TB, name string) string {
	t.Helper()
	return saveScreenshot(ctx, t, name, false)
}

// FullScreenshot is Screenshot of the whole page: as wide and as tall as
// the document, at least Width×Height.
func FullScreenshot(ctx context.Context, t testing.TB, name string) string {
	t.Helper()
	return saveScreenshot(ctx, t, name, true)
}

func saveScreenshot(ctx context.Context, t testing.TB, name string, full bool) string {
	t.Helper()
	if name == "" || filepath.Base(name) != name || strings.HasPrefix(name, ".") {
		t.Fatalf("screenshot name %q: want a plain file name", name)
	}
	png, err := chromedp.Run(ctx, capture(full))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// capture takes a PNG of the viewport, or of the whole document when full.
func capture(full bool) chromedp.Action[[]byte] {
	return func(ctx context.Context, tab *chromedp.Target) ([]byte, error) {
		fromSurface := true
		params := page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng, FromSurface: &fromSurface}
		if full {
			m, err := cdp.Call(ctx, tab, page.GetLayoutMetrics, cdp.Empty{})
			if err != nil {
				return nil, err
			}
			if m.CSSContentSize == nil {
				return nil, errors.New("no content size in the layout metrics")
			}
			beyond := true
			params.CaptureBeyondViewport = &beyond
			params.Clip = &page.Viewport{
				Width:  max(Width, math.Ceil(m.CSSContentSize.Width)),
				Height: max(Height, math.Ceil(m.CSSContentSize.Height)),
				Scale:  1,
			}
		}
		r, err := cdp.Call(ctx, tab, page.CaptureScreenshot, params)
		if err != nil {
			return nil, err
		}
		return r.Data, nil
	}
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
