package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHTTPResponses(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantErr    bool
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{name: "proxy response", status: 200, body: `{"statusCode":201,"body":"hi","headers":{"Sec-WebSocket-Protocol":"chat"}}`,
			wantStatus: 201, wantBody: "hi", wantHeader: map[string]string{"Sec-WebSocket-Protocol": "chat"}},
		{name: "proxy response wins over HTTP status", status: 500, body: `{"statusCode":403,"body":"no"}`, wantStatus: 403, wantBody: "no"},
		{name: "multi-value headers", status: 200, body: `{"statusCode":200,"multiValueHeaders":{"Sec-WebSocket-Protocol":["a","b"]}}`,
			wantStatus: 200, wantHeader: map[string]string{"Sec-WebSocket-Protocol": "a"}},
		{name: "plain body passes through", status: 200, body: "hello", wantStatus: 200, wantBody: "hello"},
		{name: "JSON without statusCode passes through", status: 200, body: `{"a":1}`, wantStatus: 200, wantBody: `{"a":1}`},
		{name: "4xx passes through", status: 401, body: "denied", wantStatus: 401, wantBody: "denied",
			header: map[string]string{"Sec-WebSocket-Protocol": "x"}, wantHeader: map[string]string{"Sec-WebSocket-Protocol": "x"}},
		{name: "empty body", status: 204, wantStatus: 204},
		{name: "5xx without proxy response fails", status: 502, body: "bad gateway", wantErr: true},
		{name: "statusCode not a number", status: 200, body: `{"statusCode":"200"}`, wantErr: true},
		{name: "statusCode out of range", status: 200, body: `{"statusCode":99}`, wantErr: true},
		{name: "body not a string", status: 200, body: `{"statusCode":200,"body":{"x":1}}`, wantErr: true},
		{name: "redirect is not followed", status: 302, header: map[string]string{"Location": "http://127.0.0.1:1/"}, wantStatus: 302},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			resp, err := (&HTTP{URL: srv.URL}).Invoke(context.Background(), &Event{Body: "x"})
			if tt.wantErr {
				if !errors.Is(err, ErrFailed) {
					t.Fatalf("err = %v, want ErrFailed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || resp.Body != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Body, tt.wantStatus, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				got := ""
				for hk, hv := range resp.Headers {
					if strings.EqualFold(hk, k) {
						got = hv
					}
				}
				if got != v {
					t.Fatalf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHTTPPostsEventJSON(t *testing.T) {
	var gotCT string
	var got Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotCT = r.Header.Get("Content-Type")
		if r.Header.Get("X-Api-Key") != "k" || r.Method != http.MethodPost {
			w.WriteHeader(400)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		_, _ = io.WriteString(w, `{"statusCode":200}`)
	}))
	defer srv.Close()
	ev := &Event{Body: `{"action":"x"}`}
	ev.RequestContext.ConnectionID = "abc"
	h := &HTTP{URL: srv.URL, Headers: map[string]string{"X-Api-Key": "k"}}
	resp, err := h.Invoke(context.Background(), ev)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("Invoke = %v, %v", resp, err)
	}
	if gotCT != "application/json" || got.Body != ev.Body || got.RequestContext.ConnectionID != "abc" {
		t.Fatalf("backend got content-type %q event %+v", gotCT, got)
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	_, err := (&HTTP{URL: srv.URL, Timeout: 50 * time.Millisecond}).Invoke(context.Background(), &Event{})
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "no response within") {
		t.Fatalf("err = %v, want a timeout failure", err)
	}
}

func TestHTTPUnreachableHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1) + "/x?token=s3cret"
	srv.Close()
	_, err := (&HTTP{URL: u}).Invoke(context.Background(), &Event{})
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %q reveals the URL's secrets", err)
	}
}

func TestHTTPOversizedResponse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, MaxResponseBytes+1))
	}))
	defer srv.Close()
	if _, err := (&HTTP{URL: srv.URL}).Invoke(context.Background(), &Event{}); !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed", err)
	}
}

func TestMock(t *testing.T) {
	echo := &Mock{Echo: true}
	resp, err := echo.Invoke(context.Background(), &Event{Body: "hello"})
	if err != nil || resp.StatusCode != 200 || resp.Body != "hello" {
		t.Fatalf("echo mock = %+v, %v", resp, err)
	}
	fixed := &Mock{StatusCode: 403, Body: "no"}
	resp, err = fixed.Invoke(context.Background(), &Event{Body: "hello"})
	if err != nil || resp.StatusCode != 403 || resp.Body != "no" {
		t.Fatalf("fixed mock = %+v, %v", resp, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := echo.Invoke(ctx, &Event{}); err == nil {
		t.Fatal("mock ignored a canceled context")
	}
}
