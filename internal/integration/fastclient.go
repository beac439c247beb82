package integration

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// FastClient is the HTTP/1.1 client of the http integration, the Lambda
// Invoke API and the REQUEST authorizer (for http:// and https:// URLs; an
// http integration with http2: true uses NewHTTP2Client instead). It is
// built on fasthttp's connection pools: a call writes the request and reads
// the response on the calling goroutine, with no reader and writer
// goroutines per connection and no hand-offs between them, and request and
// response objects come from pools. That halves the gateway's CPU per call
// against net/http's client (BENCHMARKS.md, "HTTP integration path:
// own-goroutine client").
//
// What it keeps of NewClient's behaviour: no proxy from the environment, no
// redirects followed, keep-alive connections to each backend with no cap
// (a connection is kept for as long as it is used: as many as there were
// calls in flight at once), most recently used first, an idle connection
// closed after IdleConnTimeout, response bodies over MaxResponseBytes
// refused. Response headers over MaxResponseHeaderBytes are refused too
// (net/http's client allows 10 MB). The caller's deadline bounds the dial,
// the write and the read, as connection deadlines, and canceling its
// context ends the call (no goroutine per call either way). A request that
// finds its pooled connection closed by the backend (a keep-alive that
// timed out on the backend's side: the connection ends before any byte of
// the answer) is sent once more on another connection, as net/http does
// for a connection it sees closing while idle.
//
// A FastClient is safe for concurrent use. The owner calls
// CloseIdleConnections when done; fasthttp's per-backend cleaner goroutine
// ends by itself once the connections are gone, within IdleConnTimeout.
type FastClient struct {
	// hostsMu guards hosts.
	hostsMu sync.Mutex
	// hosts are the connection pools, by "http" or "https" and the URL's
	// host.
	hosts map[[2]string]*fasthttp.HostClient
	// tls is the TLS configuration https:// backends are reached with,
	// ServerName aside; nil means the system's roots.
	tls *tls.Config
}

// NewFastClient returns a FastClient with the behaviour described there.
func NewFastClient() *FastClient {
	return &FastClient{hosts: make(map[[2]string]*fasthttp.HostClient)}
}

// host returns the pool of the backend uri names.
func (f *FastClient) host(uri *fasthttp.URI) (*fasthttp.HostClient, error) {
	var isTLS bool
	switch string(uri.Scheme()) {
	case "http":
	case "https":
		isTLS = true
	default:
		return nil, fmt.Errorf("unsupported URL scheme %q", uri.Scheme())
	}
	key := [2]string{"http", string(uri.Host())}
	if isTLS {
		key[0] = "https"
	}
	f.hostsMu.Lock()
	defer f.hostsMu.Unlock()
	hc := f.hosts[key]
	if hc == nil {
		hc = &fasthttp.HostClient{
			Addr:                   fasthttp.AddMissingPort(key[1], isTLS),
			IsTLS:                  isTLS,
			DialTimeout:            dialer(isTLS, f.tls),
			MaxConns:               1 << 30, // no bound, as net/http's client
			MaxIdleConnDuration:    IdleConnTimeout,
			DisablePathNormalizing: true, // the configured URL as it is
			ConnPoolStrategy:       fasthttp.LIFO,
			ReadBufferSize:         MaxResponseHeaderBytes,
		}
		f.hosts[key] = hc
	}
	return hc, nil
}

// CloseIdleConnections closes the connections not in use.
func (f *FastClient) CloseIdleConnections() {
	f.hostsMu.Lock()
	defer f.hostsMu.Unlock()
	for _, hc := range f.hosts {
		hc.CloseIdleConnections()
	}
}

var defaultFastClient = NewFastClient()

// PoolCleaner is the function of the goroutine fasthttp runs per backend
// pool of a FastClient while it holds connections. It ends by itself within
// IdleConnTimeout once they are closed, not at once: the goroutine-leak
// checks of tests that call HTTP backends leave it alone by this name.
const PoolCleaner = "github.com/valyala/fasthttp.(*HostClient).connsCleaner"

// MaxResponseHeaderBytes bounds the status line and headers of an answer
// read by a FastClient (its read buffer; the buffers are pooled per call,
// not held by idle connections). An answer with larger headers fails the
// call.
const MaxResponseHeaderBytes = 16 << 10

// dialer is the dial function of a backend: net.Dialer's, with the TLS
// handshake for https:// under the same timeout (fasthttp's own dialer
// keeps a DNS cache whose cleaner goroutine never ends, and does not bound
// the handshake by the call's deadline). A zero timeout is none.
func dialer(isTLS bool, base *tls.Config) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		ctx := context.Background()
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil || !isTLS {
			return conn, err
		}
		cfg := &tls.Config{ClientSessionCache: tlsSessions}
		if base != nil {
			cfg = base.Clone()
		}
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

// tlsSessions lets connections to an https:// backend resume TLS sessions.
var tlsSessions = tls.NewLRUClientSessionCache(0)

// FastResponse is a backend's answer to FastClient.Post. Its methods are
// valid until Release.
type FastResponse struct {
	r fasthttp.Response
}

var fastResponses = sync.Pool{New: func() any { return new(FastResponse) }}

// StatusCode returns the HTTP status.
func (r *FastResponse) StatusCode() int { return r.r.StatusCode() }

// Body returns the body; it is reused after Release.
func (r *FastResponse) Body() []byte { return r.r.Body() }

// Header returns the value of the header k, "" when absent.
func (r *FastResponse) Header(k string) string { return string(r.r.Header.Peek(k)) }

// Headers returns the response headers, names in canonical form (the last
// value of a repeated header).
func (r *FastResponse) Headers() map[string]string {
	out := make(map[string]string, r.r.Header.Len())
	for k, v := range r.r.Header.All() {
		out[string(k)] = string(v)
	}
	return out
}

// Release returns r to its pool.
func (r *FastResponse) Release() {
	r.r.Reset()
	fastResponses.Put(r)
}

// errTimeout is the error of a call that did not end by its deadline; it
// matches context.DeadlineExceeded.
var errTimeout = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string        { return "no response by the deadline" }
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }
func (timeoutError) Timeout() bool        { return true }

// errBodyTooLarge is the error of an answer whose body is over
// MaxResponseBytes.
var errBodyTooLarge = errors.New("response body larger than the limit")

// Post sends body to url with POST, the headers header sets (it may be nil)
// and Content-Type contentType when not empty, and reads the answer. The
// call ends by the earlier of ctx's deadline and now+timeout (timeout zero:
// ctx's deadline only); one that does not returns an error matching
// context.DeadlineExceeded. ctx being canceled ends the call with ctx's
// error. A body over MaxResponseBytes is errBodyTooLarge. Other errors are
// transport errors that never hold the URL. The caller releases the
// response.
func (f *FastClient) Post(ctx context.Context, url string, timeout time.Duration, contentType string, body []byte, header func(set func(k, v string))) (*FastResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline, hasDeadline := ctx.Deadline()
	if timeout > 0 {
		if d := time.Now().Add(timeout); !hasDeadline || d.Before(deadline) {
			deadline = d
		}
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetNoDefaultContentType(true)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(url)
	req.URI().DisablePathNormalizing = true
	hc, err := f.host(req.URI())
	if err != nil {
		return nil, err
	}
	req.Header.SetUserAgent("Go-http-client/1.1") // what backends saw from net/http's client
	if contentType != "" {
		req.Header.SetContentType(contentType)
	}
	if header != nil {
		header(req.Header.Set)
	}
	req.SetBodyRaw(body)
	resp := fastResponses.Get().(*FastResponse)
	for attempt := 0; ; attempt++ {
		resp.r.Reset()
		resp.r.Header.SetNoDefaultContentType(true)
		var retry bool
		retry, err = exchange(ctx, hc, req, &resp.r, deadline)
		if err == nil {
			return resp, nil
		}
		if !retry || attempt > 0 || ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			break
		}
	}
	resp.Release()
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, errTimeout) {
		return nil, cerr
	}
	return nil, err
}

// exchange writes req on a connection of hc and reads its answer into
// resp, both by deadline (none when zero) and until ctx is canceled. It
// reports retry when the connection ended before any byte of the answer,
// on a kept-alive connection, as one the backend has closed does.
func exchange(ctx context.Context, hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) (retry bool, err error) {
	var dialTimeout time.Duration
	if !deadline.IsZero() {
		if dialTimeout = time.Until(deadline); dialTimeout <= 0 {
			return false, errTimeout
		}
	}
	cc, err := hc.AcquireConn(dialTimeout, false)
	if err != nil {
		return false, fastError(err)
	}
	conn := cc.Conn()
	// Only a kept-alive connection may have been closed by the backend
	// before the call reached it; a new one that ends without an answer
	// ended after the backend read the call, which is not sent again.
	reused := !cc.LastUseTime().IsZero()
	if err := conn.SetDeadline(deadline); err != nil {
		hc.CloseConn(cc)
		return false, err
	}
	// A canceled ctx ends the exchange through the connection's deadline;
	// no goroutine waits for it.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	wrote := err == nil
	if wrote {
		br := hc.AcquireReader(conn)
		err = resp.ReadLimitBody(br, MaxResponseBytes)
		hc.ReleaseReader(br)
	}
	if !stop() {
		hc.CloseConn(cc)
		return false, ctx.Err()
	}
	if err != nil {
		hc.CloseConn(cc)
		retry = reused && ((wrote && errors.Is(err, io.EOF)) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
		return retry, fastError(err)
	}
	if resp.ConnectionClose() {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return false, nil
}

// fastError maps fasthttp's errors to the ones Post documents.
func fastError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return errBodyTooLarge
	}
	// fasthttp's header errors quote what the backend sent, which may hold
	// a cookie or a token: the whole header block after ", contents: ",
	// and within the reason the first line (a bad status line) or the
	// offending header line, quoted. The log line gets the reason alone.
	msg := err.Error()
	if i := strings.Index(msg, ", contents: "); i >= 0 {
		msg = msg[:i]
	}
	if strings.HasPrefix(msg, "error when reading response headers") {
		if i := strings.IndexByte(msg, '"'); i >= 0 {
			msg = strings.TrimRight(msg[:i], ": ")
		}
	}
	if msg != err.Error() {
		return errors.New(msg)
	}
	return err
}
