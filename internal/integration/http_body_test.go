package integration

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHTTPPayloadBody checks what an http integration with payload body
// sends and how it reads the answer, against a real HTTP server.
func TestHTTPPayloadBody(t *testing.T) {
	type seen struct {
		body, contentType, connID, routeKey, eventType, principal string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{string(b), r.Header.Get("Content-Type"), r.Header.Get("Wsgate-Connection-Id"),
			r.Header.Get("Wsgate-Route-Key"), r.Header.Get("Wsgate-Event-Type"), r.Header.Get("Wsgate-Principal-Id")}
		// A body shaped like a proxy response still passes through as is.
		w.WriteHeader(202)
		io.WriteString(w, `{"statusCode":500,"body":"x"}`)
	}))
	defer srv.Close()
	h := &HTTP{URL: srv.URL, Payload: PayloadBody}

	tests := []struct {
		name string
		ev   func(*Event)
		want seen
	}{
		{"json message", func(ev *Event) {
			ev.Body = `{"action":"chat","text":"hi"}`
			ev.RequestContext.RouteKey, ev.RequestContext.EventType = "chat", "MESSAGE"
			ev.RequestContext.Authorizer = map[string]any{"principalId": "alice"}
		}, seen{`{"action":"chat","text":"hi"}`, "application/json", "c1", "chat", "MESSAGE", "alice"}},
		{"text message", func(ev *Event) {
			ev.Body = "hello"
			ev.RequestContext.RouteKey, ev.RequestContext.EventType = "$default", "MESSAGE"
		}, seen{"hello", "text/plain; charset=utf-8", "c1", "$default", "MESSAGE", ""}},
		{"binary message", func(ev *Event) {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0x01}), true
			ev.RequestContext.RouteKey, ev.RequestContext.EventType = "$default", "MESSAGE"
		}, seen{"\xff\x00\x01", "application/octet-stream", "c1", "$default", "MESSAGE", ""}},
		{"$connect sends no body", func(ev *Event) {
			ev.RequestContext.RouteKey, ev.RequestContext.EventType = "$connect", "CONNECT"
		}, seen{"", "", "c1", "$connect", "CONNECT", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &Event{}
			ev.RequestContext.ConnectionID = "c1"
			tc.ev(ev)
			resp, err := h.Invoke(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if s := <-got; s != tc.want {
				t.Errorf("backend saw %+v, want %+v", s, tc.want)
			}
			if resp.StatusCode != 202 || resp.Body != `{"statusCode":500,"body":"x"}` {
				t.Errorf("response %d %q, want the backend's 202 and body unchanged", resp.StatusCode, resp.Body)
			}
		})
	}
}

func TestHTTPPayloadBodyServerError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
	}))
	defer srv.Close()
	_, err := (&HTTP{URL: srv.URL, Payload: PayloadBody}).Invoke(context.Background(), &Event{Body: "x"})
	if err == nil {
		t.Fatal("a 502 from the backend must fail the integration")
	}
}
