package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

var _ Integration = (*HTTP)(nil)

// MaxResponseBytes bounds the response body read from an HTTP backend; it is
// the payload limit of a synchronous Lambda invocation.
const MaxResponseBytes = 6 << 20

// HTTP posts the event JSON to URL and reads the proxy response.
//
// The response is interpreted as AWS interprets an integration result: a JSON
// object with a numeric "statusCode" is a proxy response ({statusCode, headers,
// body, isBase64Encoded}); any other body is passed through with the HTTP
// status as statusCode and the HTTP headers as headers, as an HTTP_PROXY
// integration does. A transport error, a timeout, an HTTP status of 500 or
// more without a proxy response, a body over MaxResponseBytes and a malformed
// proxy response are failures.
//
// With Payload PayloadBody the request body is the client's message itself
// (decoded from base64 when it was binary), as AWS's HTTP_PROXY integrations
// send it, and empty for $connect and $disconnect, which carry no message.
// The connection's identity travels in the headers Wsgate-Connection-Id,
// Wsgate-Route-Key, Wsgate-Event-Type, Wsgate-Request-Id and, when an
// authorizer ran, Wsgate-Principal-Id and Wsgate-Authorizer (its context as
// JSON). The response passes through unchanged: its body is the reply,
// even when it looks like a proxy response.
type HTTP struct {
	URL     string
	Timeout time.Duration     // zero means no timeout beyond ctx
	Headers map[string]string // extra request headers
	Client  *http.Client      // when set, calls go through it (NewHTTP2Client for HTTP/2); nil means Fast
	Fast    *FastClient       // nil means a process-wide FastClient
	Payload Payload           // what the request body holds; default PayloadEvent
}

// MaxIdleConnsPerHost is how many idle connections the client of NewClient
// keeps to one backend: as many as the gateway can have calls in flight to
// it, so that once warm no call opens a connection. The in-flight budget
// (limits.inflight_budget_messages, default 16384) bounds the message calls;
// an idle connection exists only because that many calls ran at once, and
// closes after IdleConnTimeout.
const MaxIdleConnsPerHost = 1 << 14

// IdleConnTimeout is how long a backend connection stays open unused.
const IdleConnTimeout = 90 * time.Second

// NewClient returns a net/http client for the calls that need one (the AWS
// SDK's sqs, sns and eventbridge calls, and callers that set HTTP.Client or
// InvokeAPI.Client; the http integration, the Invoke API and the REQUEST
// authorizer use a FastClient otherwise): no proxy from the environment, no
// redirects followed, connections kept alive to each backend with no small
// cap on the idle ones (see MaxIdleConnsPerHost): a capped pool under more
// concurrent calls than the cap closes a connection after each call and
// opens another, leaving a TIME-WAIT socket per message. HTTP/1.1 for
// http:// URLs, HTTP/2 or HTTP/1.1 as TLS negotiates for https://. The
// owner calls CloseIdleConnections on shutdown.
func NewClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        0, // no limit over all backends
			MaxIdleConnsPerHost: MaxIdleConnsPerHost,
			IdleConnTimeout:     IdleConnTimeout,
		},
		CheckRedirect: noRedirects,
	}
}

// NewHTTP2Client returns a client like NewClient's that speaks only HTTP/2:
// cleartext with prior knowledge (h2c, no Upgrade round trip) to http://
// URLs, and TLS with ALPN h2 to https:// URLs. Calls share a connection per
// backend, as many at once as the backend's SETTINGS_MAX_CONCURRENT_STREAMS
// allows, and open another past that. A backend that does not speak HTTP/2
// fails every call with a transport error.
func NewHTTP2Client() *http.Client {
	var p http.Protocols
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			Protocols:           &p,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: MaxIdleConnsPerHost,
			IdleConnTimeout:     IdleConnTimeout,
		},
		CheckRedirect: noRedirects,
	}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

var defaultClient = NewClient()

// Invoke implements Integration.
func (h *HTTP) Invoke(ctx context.Context, ev *Event) (*Response, error) {
	payload, err := h.Payload.payload(ev)
	if err != nil {
		return nil, err
	}
	if h.Client != nil {
		return h.invokeStd(ctx, ev, payload)
	}
	fast := h.Fast
	if fast == nil {
		fast = defaultFastClient
	}
	resp, err := fast.Post(ctx, h.URL, h.Timeout, h.contentType(ev, payload), payload, func(set func(k, v string)) {
		if h.Payload == PayloadBody {
			for _, f := range identity(ev) {
				set(natsHeaders[f.name], f.value)
			}
		}
		for k, v := range h.Headers {
			set(k, v)
		}
	})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return nil, failf("no response within %v", h.Timeout)
	case errors.Is(err, errBodyTooLarge):
		return nil, failf("response body larger than %d bytes", MaxResponseBytes)
	case err != nil:
		return nil, failf("%v", err)
	}
	defer resp.Release()
	return h.answer(resp.StatusCode(), resp.Body(), resp.Headers)
}

// invokeStd is Invoke through the net/http client h.Client.
func (h *HTTP) invokeStd(ctx context.Context, ev *Event, payload []byte) (*Response, error) {
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if ct := h.contentType(ev, payload); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if h.Payload == PayloadBody {
		for _, f := range identity(ev) {
			req.Header.Set(natsHeaders[f.name], f.value)
		}
	}
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, failf("no response within %v", h.Timeout)
		}
		return nil, failf("%v", redactURL(err))
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, failf("read response: %v", redactURL(err))
	}
	if len(body) > MaxResponseBytes {
		return nil, failf("response body larger than %d bytes", MaxResponseBytes)
	}
	return h.answer(resp.StatusCode, body, func() map[string]string { return stdHeaders(resp.Header) })
}

// answer interprets the backend's answer: its status, body and, called only
// when the answer passes through, its headers.
func (h *HTTP) answer(status int, body []byte, headers func() map[string]string) (*Response, error) {
	if h.Payload == PayloadBody {
		if status >= 500 {
			return nil, &StatusError{Status: status}
		}
		return &Response{StatusCode: status, Body: string(body), Headers: headers()}, nil
	}
	if out, ok, err := parseProxyResponse(body); ok {
		if err != nil {
			return nil, failf("malformed proxy response: %v", err)
		}
		return out, nil
	}
	if status >= 500 {
		return nil, &StatusError{Status: status}
	}
	return &Response{StatusCode: status, Body: string(body), Headers: headers()}, nil
}

// readBody reads a response body of up to MaxResponseBytes, and one byte
// more when the body is longer. A declared Content-Length within the limit
// sizes the buffer in one allocation; a body that ends before it is an
// error.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= MaxResponseBytes {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
}

// stdHeaders are the headers of a net/http response, one value each.
func stdHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k := range h {
		out[k] = h.Get(k)
	}
	return out
}

// contentType is the Content-Type of the request: JSON for the event; for
// the message alone, JSON when it is valid JSON, text for other text and
// application/octet-stream for a binary message, none for no message.
func (h *HTTP) contentType(ev *Event, payload []byte) string {
	switch {
	case h.Payload == PayloadEvent || json.Valid(payload):
		return "application/json"
	case len(payload) == 0:
		return ""
	case ev.IsBase64Encoded:
		return "application/octet-stream"
	}
	return "text/plain; charset=utf-8"
}

// parseProxyResponse reports ok when body is a JSON object carrying a
// "statusCode" member, and then decodes it.
func parseProxyResponse(body []byte) (*Response, bool, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false, nil
	}
	if out, ok := quickProxyResponse(trimmed); ok {
		return out, true, nil
	}
	return decodeProxyResponse(trimmed)
}

// decodeProxyResponse is parseProxyResponse for any JSON object trimmed,
// with encoding/json.
func decodeProxyResponse(trimmed []byte) (*Response, bool, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return nil, false, nil
	}
	rawStatus, ok := probe["statusCode"]
	if !ok {
		return nil, false, nil
	}
	var pr struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Body              string              `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
	}
	if err := json.Unmarshal(rawStatus, &pr.StatusCode); err != nil {
		return nil, true, fmt.Errorf("statusCode is not an integer: %s", truncate(rawStatus, 40))
	}
	if pr.StatusCode < 100 || pr.StatusCode > 599 {
		return nil, true, fmt.Errorf("statusCode %d out of range", pr.StatusCode)
	}
	status := pr.StatusCode
	if err := json.Unmarshal(trimmed, &pr); err != nil {
		return nil, true, err
	}
	// encoding/json matches member names without regard to case: a
	// "StatusCode" after "statusCode" would replace the status checked
	// above. The status is the one of "statusCode" exactly.
	out := &Response{StatusCode: status, Body: pr.Body, IsBase64Encoded: pr.IsBase64Encoded, Headers: pr.Headers}
	if out.Headers == nil && len(pr.MultiValueHeaders) > 0 {
		out.Headers = make(map[string]string)
	}
	for k, vs := range pr.MultiValueHeaders {
		if _, set := out.Headers[k]; !set && len(vs) > 0 {
			out.Headers[k] = vs[0]
		}
	}
	return out, true, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// redactURL drops the URL from a *url.Error so that credentials or tokens in
// a configured URL never reach a log line.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
