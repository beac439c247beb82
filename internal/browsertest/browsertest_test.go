package browsertest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testPage = `<!doctype html><meta charset="utf-8"><title>browsertest</title>
<script>window.answer = 41;</script>`

func TestBrowserEval(t *testing.T) {
	b := Start(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(testPage))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "seen", Value: "yes", Path: "/"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
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
			{"unreachable", closedPort, `1`, "navigate: net::ERR_CONNECTION_REFUSED"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), evalTimeout)
			v, err := b.eval(ctx, tc.url, tc.js)
			cancel()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: eval = %s, %v; want an error containing %q", tc.name, v, err, tc.want)
			}
		}
	})
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
