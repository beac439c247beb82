package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/awsevent"
)

// echoBackend answers every event with {"statusCode":200,"body":<its body>}.
func echoBackend(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Body string `json:"body"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, _ := json.Marshal(map[string]any{"statusCode": 200, "body": ev.Body})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

func benchMessageEvent() *Event {
	c := &awsevent.Conn{ID: "R1kmxc2VNjMCFIA=", ConnectedAt: time.Now(), SourceIP: "127.0.0.2", UserAgent: "wsbench", DomainName: "127.0.0.1:8080"}
	return awsevent.Message(awsevent.API{}, c, "x", []byte(`{"action":"x","seq":"0000000042","pad":"xxxxxxxxxxxxxxxxxxxxxxxx"}`), false, time.Now())
}

// BenchmarkHTTPInvoke is one message's round trip through the http
// integration to a local backend: the event JSON, the request, the
// response and its proxy response. The backend's work is in the figure.
func BenchmarkHTTPInvoke(b *testing.B) {
	srv := echoBackend(b)
	client := NewFastClient()
	defer client.CloseIdleConnections()
	h := &HTTP{URL: srv.URL + "/x", Timeout: 29 * time.Second, Fast: client}
	ev := benchMessageEvent()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.Invoke(context.Background(), ev)
		if err != nil || resp.Body != ev.Body {
			b.Fatal(resp, err)
		}
	}
}

// BenchmarkLambdaInvokeAPI is the same round trip through a lambda
// integration calling the Invoke API (unsigned, as the Runtime Interface
// Emulator takes it).
func BenchmarkLambdaInvokeAPI(b *testing.B) {
	srv := echoBackend(b)
	client := NewFastClient()
	defer client.CloseIdleConnections()
	l := &Lambda{Invoker: &InvokeAPI{Endpoint: srv.URL, FunctionName: "f", Fast: client}, Timeout: 29 * time.Second}
	ev := benchMessageEvent()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := l.Invoke(context.Background(), ev)
		if err != nil || resp.Body != ev.Body {
			b.Fatal(resp, err)
		}
	}
}
