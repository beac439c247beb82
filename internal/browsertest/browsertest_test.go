package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testPage = `<!doctype html><meta charset="utf-8"><title>browsertest</title>
<script>window.answer = 41;</script>
<input id="name"><button id="greet" onclick="document.getElementById('out').textContent = 'hello ' + document.getElementById('name').value">greet</button>
<p id="out"></p>`

// tallPage is red for its first 1000 pixels and blue for the 1500 below,
// with no margins: 2500 pixels tall at any width.
const tallPage = `<!doctype html><meta charset="utf-8"><title>tall</title>
<style>html, body { margin: 0; padding: 0 } div { width: 100%; }</style>
<div style="height: 1000px; background: #ff0000"></div><div style="height: 1500px; background: #0000ff"></div>`

// startSite serves testPage at /page, tallPage at /tall, and POST /login,
// which sets the cookie seen=yes.
func startSite(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	html := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(body))
		}
	}
	mux.HandleFunc("GET /page", html(testPage))
	mux.HandleFunc("GET /tall", html(tallPage))
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "seen", Value: "yes", Path: "/"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestBrowserEval(t *testing.T) {
	b := Start(t)
	srv := startSite(t)
	page := srv.URL + "/page"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := "http://" + ln.Addr().String() + "/"
	_ = ln.Close()

	t.Run("Value", func(t *testing.T) {
		got := b.Eval(t, page, `({answer: window.answer + 1, title: document.title, path: location.pathname})`)
		want := `{"answer":42,"path":"/page","title":"browsertest"}`
		if compact(t, got) != want {
			t.Fatalf("eval = %s, want %s", got, want)
		}
	})

	t.Run("AwaitsPromise", func(t *testing.T) {
		got := b.Eval(t, page, `new Promise(r => setTimeout(() => r("later"), 20))`)
		if string(got) != `"later"` {
			t.Fatalf("eval = %s, want \"later\"", got)
		}
	})

	t.Run("Undefined", func(t *testing.T) {
		if got := b.Eval(t, page, `undefined`); string(got) != "null" {
			t.Fatalf("eval = %s, want null", got)
		}
	})

	t.Run("ContextsAreIsolated", func(t *testing.T) {
		got := b.Eval(t, page, `fetch("/login", {method: "POST"}).then(() => document.cookie)`)
		if string(got) != `"seen=yes"` {
			t.Fatalf("cookie after login = %s", got)
		}
		if got := b.Eval(t, page, `document.cookie`); string(got) != `""` {
			t.Fatalf("a new Eval sees cookie %s set by an earlier one", got)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, url, js, want string
		}{
			{"throw", page, `(() => { throw new Error("boom") })()`, "boom"},
			{"reject", page, `Promise.reject(new Error("nope"))`, "nope"},
			{"syntax", page, `(`, "javascript: "},
			{"unreachable", closedPort, `1`, "navigate: page load error net::ERR_CONNECTION_REFUSED"},
		} {
			v, err := b.eval(tc.url, tc.js)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: eval = %s, %v; want an error containing %q", tc.name, v, err, tc.want)
			}
		}
	})
}

func TestNewTab(t *testing.T) {
	b := Start(t)
	srv := startSite(t)
	page := srv.URL + "/page"

	t.Run("Viewport", func(t *testing.T) {
		tab := b.NewTab(t)
		ctx := timeout(t, tab)
		if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[window.innerWidth, window.innerHeight, window.devicePixelRatio]`))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0] != Width || got[1] != Height || got[2] != 1 {
			t.Fatalf("innerWidth, innerHeight, devicePixelRatio = %v, want [%d %d 1]", got, Width, Height)
		}
	})

	t.Run("Interact", func(t *testing.T) {
		ctx := timeout(t, b.NewTab(t))
		err := chromedp.Do(ctx,
			chromedp.Navigate(page),
			chromedp.SendKeys(chromedp.ID("name"), "chromium"),
			chromedp.Click(chromedp.ID("greet")))
		if err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("out")))
		if err != nil {
			t.Fatal(err)
		}
		if got != "hello chromium" {
			t.Fatalf("#out reads %q after the click, want %q", got, "hello chromium")
		}
	})

	t.Run("CookiesPerTab", func(t *testing.T) {
		cookie := func(ctx context.Context, js string) string {
			t.Helper()
			if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
				t.Fatal(err)
			}
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		tab := b.NewTab(t)
		if got := cookie(timeout(t, tab), `fetch("/login", {method: "POST"}).then(() => document.cookie)`); got != "seen=yes" {
			t.Fatalf("cookie after login = %q", got)
		}
		if got := cookie(timeout(t, b.NewTab(t)), `document.cookie`); got != "" {
			t.Fatalf("a new tab sees cookie %q set in another", got)
		}
		same, cancel := chromedp.NewContext(tab)
		t.Cleanup(cancel)
		if got := cookie(timeout(t, same), `document.cookie`); got != "seen=yes" {
			t.Fatalf("a tab opened from the tab sees cookie %q, want its opener's seen=yes", got)
		}
	})

	t.Run("ClosedAtCleanup", func(t *testing.T) {
		var id string
		t.Run("Open", func(t *testing.T) {
			tab := b.NewTab(t)
			id = string(chromedp.FromContext(tab).Target.TargetID)
			if !listed(t, b, id) {
				t.Fatalf("open tab %s is not among the browser's targets", id)
			}
		})
		eventually(t, func() bool { return !listed(t, b, id) }, "tab %s closed after its test", id)
	})
}

// listed reports whether the browser has a target with this id.
func listed(t *testing.T, b *Browser, id string) bool {
	t.Helper()
	infos, err := chromedp.Targets(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if string(info.TargetID) == id {
			return true
		}
	}
	return false
}

func TestScreenshot(t *testing.T) {
	b := Start(t)
	srv := startSite(t)
	ctx := timeout(t, b.NewTab(t))
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/tall")); err != nil {
		t.Fatal(err)
	}
	red := color.RGBA{0xff, 0, 0, 0xff}
	blue := color.RGBA{0, 0, 0xff, 0xff}

	view := Screenshot(ctx, t, "viewport")
	if filepath.Dir(view) != t.ArtifactDir() || filepath.Base(view) != "viewport.png" {
		t.Errorf("viewport screenshot saved as %s, want viewport.png in %s", view, t.ArtifactDir())
	}
	img := decodePNG(t, view)
	requireSize(t, img, Width, Height)
	requireColor(t, img, Width/2, Height-1, red)

	full := FullScreenshot(ctx, t, "full")
	img = decodePNG(t, full)
	requireSize(t, img, Width, 2500)
	requireColor(t, img, Width/2, 999, red)
	requireColor(t, img, Width/2, 1000, blue)
	requireColor(t, img, 0, 2499, blue)

	// The full capture leaves the viewport as it was.
	requireSize(t, decodePNG(t, Screenshot(ctx, t, "viewport-again")), Width, Height)
}

func TestScreenshotName(t *testing.T) {
	for _, name := range []string{"", "a/b", "../up", ".hidden", "..", "/abs"} {
		ft := runFake(func(tb testing.TB) { Screenshot(context.Background(), tb, name) })
		if !ft.failed {
			t.Errorf("Screenshot accepted the name %q", name)
		}
	}
}

// TestStartFailure: a browser that exits at once fails the test with what
// it printed, and leaves no goroutine (TestMain checks).
func TestStartFailure(t *testing.T) {
	if _, err := Executable(); err != nil {
		t.Skip(err)
	}
	fake := filepath.Join(t.TempDir(), "chromium")
	script := "#!/bin/sh\necho 'cannot open display: none here' >&2\nexit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ft := runFake(func(tb testing.TB) { Start(tb, chromedp.ExecPath(fake)) })
	if !ft.failed || ft.skipped {
		t.Fatalf("Start of a browser that exits: failed %v, skipped %v; want a failure", ft.failed, ft.skipped)
	}
	if log := ft.log(); !strings.Contains(log, "start chromium: ") || !strings.Contains(log, "cannot open display: none here") {
		t.Errorf("failure reads %q; want the browser's output", log)
	}
}

// TestStartWithoutChromium: no Chromium skips the test, or fails it under
// WSGATE_REQUIRE_SERVICES=1.
func TestStartWithoutChromium(t *testing.T) {
	saved := debianChromium
	debianChromium = filepath.Join(t.TempDir(), "chromium")
	t.Cleanup(func() { debianChromium = saved })
	t.Setenv("PATH", t.TempDir())

	t.Setenv(RequireEnv, "")
	ft := runFake(func(tb testing.TB) { Start(tb) })
	if !ft.skipped || ft.failed || !strings.Contains(ft.log(), "apt-get install chromium") {
		t.Errorf("without Chromium: skipped %v, failed %v, %q; want a skip naming the package", ft.skipped, ft.failed, ft.log())
	}

	t.Setenv(RequireEnv, "1")
	ft = runFake(func(tb testing.TB) { Start(tb) })
	if ft.skipped || !ft.failed || !strings.Contains(ft.log(), RequireEnv+"=1") {
		t.Errorf("without Chromium under %s=1: skipped %v, failed %v, %q; want a failure", RequireEnv, ft.skipped, ft.failed, ft.log())
	}
}

// fakeTB is the part of testing.TB that Start and Screenshot use. Fatalf
// and Skipf end the goroutine that calls them, as testing.T's do; runFake
// runs the cleanups.
type fakeTB struct {
	testing.TB

	mu              sync.Mutex
	failed, skipped bool
	msgs            []string
	cleanups        []func()
}

// runFake runs f on a fakeTB in a goroutine of its own, then the cleanups
// it registered, last first.
func runFake(f func(testing.TB)) *fakeTB {
	ft := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ft)
	}()
	<-done
	for i := len(ft.cleanups) - 1; i >= 0; i-- {
		ft.cleanups[i]()
	}
	return ft
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) Logf(format string, args ...any) { f.record(false, false, format, args) }

func (f *fakeTB) Errorf(format string, args ...any) { f.record(true, false, format, args) }

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.record(true, false, format, args)
	runtime.Goexit()
}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.record(false, true, format, args)
	runtime.Goexit()
}

func (f *fakeTB) record(failed, skipped bool, format string, args []any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = f.failed || failed
	f.skipped = f.skipped || skipped
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n")
}

// TestShutdown: the cleanup Start registers ends every Chromium process of
// the browser and removes its profile directory and the directory of its
// singleton socket, which Chromium keeps outside the profile and removes
// only when it exits on request.
func TestShutdown(t *testing.T) {
	var dir, socketDir string
	t.Run("Browser", func(t *testing.T) {
		b := Start(t)
		// A page with a worker and a network request brings up more
		// processes than the browser alone.
		srv := startSite(t)
		b.Eval(t, srv.URL+"/page", `fetch("/login", {method: "POST"}).then((r) => r.status)`)
		tab := b.NewTab(t)
		if err := chromedp.Do(timeout(t, tab), chromedp.Navigate(srv.URL+"/tall")); err != nil {
			t.Fatal(err)
		}
		dir = b.dir
		if dir == "" {
			t.Fatal("no profile directory recorded")
		}
		if n := len(processesUsing(t, dir)); n < 2 {
			t.Fatalf("%d processes run with the profile %s; want the browser and its helpers", n, dir)
		}
		socket, err := os.Readlink(filepath.Join(dir, "SingletonSocket"))
		if err != nil {
			t.Fatal(err)
		}
		socketDir = filepath.Dir(socket)
		if _, err := os.Stat(socketDir); err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() || dir == "" {
		return
	}
	if pids := processesUsing(t, dir); len(pids) != 0 {
		t.Errorf("processes %v still run with the profile %s after cleanup", pids, dir)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("profile directory %s after cleanup: %v; want it removed", dir, err)
	}
	if _, err := os.Stat(socketDir); !os.IsNotExist(err) {
		t.Errorf("singleton socket directory %s after cleanup: %v; want it removed", socketDir, err)
	}
}

// processesUsing returns the running processes (not zombies) whose command
// line mentions dir.
func processesUsing(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ...; comm may hold spaces and parens.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// timeout returns ctx with a deadline of 30 seconds, canceled when the test
// ends.
func timeout(t *testing.T, ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: "+format, args...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func requireSize(t *testing.T, img image.Image, w, h int) {
	t.Helper()
	if got := img.Bounds().Size(); got != (image.Point{X: w, Y: h}) {
		t.Fatalf("screenshot is %dx%d, want %dx%d", got.X, got.Y, w, h)
	}
}

func requireColor(t *testing.T, img image.Image, x, y int, want color.RGBA) {
	t.Helper()
	if got := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA); got != want {
		t.Errorf("pixel (%d,%d) is %v, want %v", x, y, got, want)
	}
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("result %s: %v", raw, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
