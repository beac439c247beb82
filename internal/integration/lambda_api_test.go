package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRuntimeAPIExchange plays the function's side of the Runtime API by
// hand against a runtime whose process never calls it, and checks what a
// runtime client sees: the next invocation's headers and body, the status
// codes of response, error and unknown requests, and the outcomes of the
// invocations.
func TestRuntimeAPIExchange(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	rt, err := NewLocalRuntime(RuntimeConfig{Command: sleep, Args: []string{"600"}, FunctionName: "fn", Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	base := "http://" + rt.workers[0].addr + "/2018-06-01/runtime/"
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)

	type result struct {
		body []byte
		err  error
	}
	invoke := func(payload string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			b, err := rt.Invoke(context.Background(), []byte(payload))
			ch <- result{b, err}
		}()
		return ch
	}
	next := func() (string, *http.Response, []byte) {
		t.Helper()
		resp, err := client.Get(base + "invocation/next")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("next: %d %s", resp.StatusCode, body)
		}
		return resp.Header.Get("Lambda-Runtime-Aws-Request-Id"), resp, body
	}
	post := func(path, body string, hdr http.Header) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// a response
	res := invoke(`{"n":1}`)
	before := time.Now()
	id, resp, body := next()
	if string(body) != `{"n":1}` {
		t.Errorf("next body %q", body)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("request id %q", id)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("content type %q", got)
	}
	if got := resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"); got != "arn:aws:lambda:eu-west-1:000000000000:function:fn" {
		t.Errorf("arn %q", got)
	}
	ms, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
	if d := time.UnixMilli(ms).Sub(before); err != nil || d < 28*time.Second || d > 30*time.Second {
		t.Errorf("deadline %q: %v, %v from now", resp.Header.Get("Lambda-Runtime-Deadline-Ms"), err, d)
	}
	if got := resp.Header.Get("Lambda-Runtime-Trace-Id"); !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`).MatchString(got) {
		t.Errorf("trace id %q", got)
	}
	if code, b := post("invocation/"+id+"-x/response", "{}", nil); code != http.StatusBadRequest || !strings.Contains(b, "InvalidRequestID") {
		t.Errorf("response for another id: %d %s", code, b)
	}
	if code, b := post("invocation/"+id+"/response", `{"ok":true}`, nil); code != http.StatusAccepted {
		t.Errorf("response: %d %s", code, b)
	}
	if r := <-res; r.err != nil || string(r.body) != `{"ok":true}` {
		t.Errorf("invoke: %q %v", r.body, r.err)
	}
	if code, _ := post("invocation/"+id+"/response", `{}`, nil); code != http.StatusBadRequest {
		t.Errorf("second response: %d", code)
	}

	// an error
	res = invoke(`{}`)
	id, _, _ = next()
	if code, b := post("invocation/"+id+"/error", `{"errorMessage":"boom","errorType":"Oops"}`,
		http.Header{"Lambda-Runtime-Function-Error-Type": {"Unhandled"}}); code != http.StatusAccepted {
		t.Errorf("error: %d %s", code, b)
	}
	var fe *FunctionError
	if r := <-res; !errors.As(r.err, &fe) || fe.Message != "boom" || fe.Type != "Oops" {
		t.Errorf("invoke after error: %v", r.err)
	}

	// a response over the limit
	res = invoke(`{}`)
	id, _, _ = next()
	// the server answers 413 and closes the connection as soon as it has
	// read the Content-Length, so the client may see its write fail first
	big := bytes.Repeat([]byte("a"), MaxResponseBytes+1)
	if resp, err := client.Post(base+"invocation/"+id+"/response", "application/json", bytes.NewReader(big)); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("big response: %d", resp.StatusCode)
		}
	}
	if r := <-res; !errors.As(r.err, &fe) || fe.Type != "Function.ResponseSizeTooLarge" {
		t.Errorf("invoke after big response: %v", r.err)
	}

	// init error, unknown paths and methods
	if code, _ := post("init/error", `{"errorMessage":"x","errorType":"Y"}`, nil); code != http.StatusAccepted {
		t.Errorf("init error: %d", code)
	}
	if code, _ := post("invocation/next", "", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("POST next: %d", code)
	}
	if code, _ := post("nope", "", nil); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
}
