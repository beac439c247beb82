//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/wsproto"
)

// The slow kind's messages: slowMessages of slowMessageBytes each, in
// frames of at most slowFrameBytes (the gateway's default max_frame_bytes;
// the messages are under its max_message_bytes, 131072).
const (
	slowMessages     = 64
	slowMessageBytes = 100 * 1024
	slowFrameBytes   = 32768
)

// slowBackend is the http integration of the soak gateway's slow route and
// of $disconnect. It answers a MESSAGE event after a random wait and a
// $disconnect at once, and checks, per connection, that $disconnect comes
// after every MESSAGE has been answered and that no MESSAGE follows it.
type slowBackend struct {
	url      string
	srv      *http.Server
	min, max time.Duration

	messages    atomic.Int64
	disconnects atomic.Int64
	violations  atomic.Int64

	// mu guards the fields below.
	mu       sync.Mutex
	inflight map[string]int           // MESSAGE events being answered, by connection id
	gone     map[string]struct{}      // connections whose $disconnect has come
	keys     map[string]string        // the ?k= of each connection's upgrade, by connection id
	waiters  map[string]chan struct{} // closed at the $disconnect of the connection with that ?k=
	example  string                   // the first violation
}

func startSlowBackend(min, max time.Duration) (*slowBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &slowBackend{url: "http://" + ln.Addr().String(), min: min, max: max,
		inflight: map[string]int{}, gone: map[string]struct{}{}, keys: map[string]string{}, waiters: map[string]chan struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connect", b.connect)
	mux.HandleFunc("POST /slow", b.slow)
	mux.HandleFunc("POST /disconnect", b.disconnect)
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

func (b *slowBackend) close() { _ = b.srv.Close() }

// backendEvent is what the backend reads of an event.
type backendEvent struct {
	QueryStringParameters map[string]string `json:"queryStringParameters"`
	RequestContext        struct {
		ConnectionID string `json:"connectionId"`
		EventType    string `json:"eventType"`
	} `json:"requestContext"`
}

func (b *slowBackend) event(w http.ResponseWriter, r *http.Request) (backendEvent, string, bool) {
	var ev backendEvent
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ev); err != nil || ev.RequestContext.ConnectionID == "" {
		b.violation("an event without a connection id")
		http.Error(w, "wsbench: no connectionId", http.StatusBadRequest)
		return ev, "", false
	}
	return ev, ev.RequestContext.ConnectionID, true
}

// connect records the ?k= of a slow client's connection, so that the
// client can wait for its $disconnect.
func (b *slowBackend) connect(w http.ResponseWriter, r *http.Request) {
	ev, id, ok := b.event(w, r)
	if !ok {
		return
	}
	if k := ev.QueryStringParameters["k"]; k != "" {
		b.mu.Lock()
		b.keys[id] = k
		b.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"statusCode":200}`)
}

// waitFor returns a channel closed at the $disconnect of the connection
// opened with ?k=key; forget drops it.
func (b *slowBackend) waitFor(key string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	b.mu.Lock()
	b.waiters[key] = ch
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.waiters, key)
		b.mu.Unlock()
	}
}

func (b *slowBackend) violation(what string) {
	b.violations.Add(1)
	b.mu.Lock()
	if b.example == "" {
		b.example = what
	}
	b.mu.Unlock()
}

func (b *slowBackend) violationExample() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.example == "" {
		return ""
	}
	return fmt.Sprintf(" (the first: %s)", b.example)
}

func (b *slowBackend) slow(w http.ResponseWriter, r *http.Request) {
	_, id, ok := b.event(w, r)
	if !ok {
		return
	}
	b.mu.Lock()
	_, gone := b.gone[id]
	b.inflight[id]++
	b.mu.Unlock()
	if gone {
		b.violation("a MESSAGE of connection " + id + " after its $disconnect")
	}
	wait := b.min
	if b.max > b.min {
		wait += rand.N(b.max - b.min)
	}
	select {
	case <-time.After(wait):
	case <-r.Context().Done():
	}
	b.mu.Lock()
	if b.inflight[id]--; b.inflight[id] == 0 {
		delete(b.inflight, id)
	}
	b.mu.Unlock()
	b.messages.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"statusCode":200}`)
}

func (b *slowBackend) disconnect(w http.ResponseWriter, r *http.Request) {
	_, id, ok := b.event(w, r)
	if !ok {
		return
	}
	b.mu.Lock()
	n := b.inflight[id]
	_, again := b.gone[id]
	b.gone[id] = struct{}{}
	if k, ok := b.keys[id]; ok {
		delete(b.keys, id)
		if ch, ok := b.waiters[k]; ok {
			close(ch)
			delete(b.waiters, k)
		}
	}
	b.mu.Unlock()
	if n > 0 {
		b.violation(fmt.Sprintf("the $disconnect of connection %s while %d of its MESSAGE events were unanswered", id, n))
	}
	if again {
		b.violation("a second $disconnect of connection " + id)
	}
	b.disconnects.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"statusCode":200}`)
}

// slowMessage is message k of the slow kind: {"action":"slow","k":K,"pad":"xxx…"}
// of slowMessageBytes.
func slowMessage(k int) []byte {
	head := fmt.Sprintf(`{"action":"slow","k":%d,"pad":"`, k)
	msg := make([]byte, 0, slowMessageBytes)
	msg = append(msg, head...)
	for len(msg) < slowMessageBytes-2 {
		msg = append(msg, 'x')
	}
	return append(msg, `"}`...)
}

// fragmented returns msg as masked client frames of at most frameBytes of
// payload each: a text frame and continuation frames, the last with FIN.
func fragmented(msg []byte, frameBytes int) []byte {
	var out []byte
	op := wsproto.OpText
	for off := 0; off < len(msg); off += frameBytes {
		end := min(off+frameBytes, len(msg))
		var key [4]byte
		binaryPutRandom(key[:])
		out = wsproto.AppendClientFrame(out, op, end == len(msg), msg[off:end], key)
		op = wsproto.OpContinuation
	}
	return out
}

func binaryPutRandom(b []byte) {
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
}

// soakDial opens a WebSocket connection to the soak gateway. Its failure is
// an outcome: while the in-flight budget is full the gateway reads no
// upgrade request either, so a timeout is expected; a refused connection
// is not.
func (r *soakRun) soakDial(ctx context.Context, k kind, query string) (*net.TCPConn, []byte, bool) {
	t, _ := parseTarget("ws://" + r.wsAddr + "/" + query)
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, rest, err := dialWS(ctx, d, t)
	if err != nil {
		if !ended(ctx) {
			cause := classify(err)
			r.outc[k].add("connect failed: "+cause, cause != causeTimeout, err.Error())
			r.ops[k].Add(1)
		}
		return nil, nil, false
	}
	return c, rest, true
}

// slowDisconnectWait bounds a slow client's wait for the $disconnect of
// its last connection: its messages that the gateway took, one after the
// other at up to -slow-max each, and a margin.
const slowDisconnectWait = slowMessages*soakIntegrationTimeout/4 + 30*time.Second

// slowClient repeats the slow kind until ctx ends: connect, send
// slowMessages large messages to the slow route, send a close frame and
// close the socket without waiting for anything; then wait for the
// connection's $disconnect, which comes once the gateway has delivered
// every message it took, before starting again. So each client keeps at
// most one connection's messages in the gateway, and the kind is a steady
// load of -clients connections draining, which fills the in-flight budget
// when they send more than it holds.
func (r *soakRun) slowClient(ctx context.Context, id int) {
	var msgs []byte
	for k := range slowMessages {
		msgs = append(msgs, fragmented(slowMessage(id*1000+k), slowFrameBytes)...)
	}
	msgs = append(msgs, closeFrame()...)
	for seq := 0; !ended(ctx); seq++ {
		key := fmt.Sprintf("%d-%d", id, seq)
		gone, forget := r.backend.waitFor(key)
		c, _, ok := r.soakDial(ctx, kindSlow, "?k="+key)
		if !ok {
			forget()
			continue
		}
		_ = c.SetWriteDeadline(soakDeadline(ctx, 10*time.Second))
		_, err := c.Write(msgs)
		_ = c.Close()
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			select {
			case <-gone:
			case <-ctx.Done():
			case <-time.After(slowDisconnectWait):
				r.outc[kindSlow].add(fmt.Sprintf("no $disconnect within %s of closing", slowDisconnectWait), true, "")
			}
		}
		forget()
		switch {
		case err == nil:
			r.outc[kindSlow].add("64 messages and a close frame sent, socket closed", false, "")
		case ended(ctx):
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The gateway stopped reading: its in-flight budget is full.
			r.outc[kindSlow].add("sending stalled for 10s (the gateway stopped reading), socket closed", false, "")
		default:
			r.outc[kindSlow].add("sending failed: "+classify(err), true, err.Error())
		}
		r.ops[kindSlow].Add(1)
	}
}

// wsReader reads the gateway's frames on a client connection, answering
// pings.
type wsReader struct {
	c   *net.TCPConn
	buf []byte
}

// next returns the next data message, or the close frame's code as an
// error.
func (w *wsReader) next(deadline time.Time) ([]byte, error) {
	_ = w.c.SetReadDeadline(deadline)
	for {
		f, n, err := parseServerFrame(w.buf)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			payload := append([]byte(nil), f.payload...)
			w.buf = w.buf[n:]
			switch f.op {
			case wsproto.OpText, wsproto.OpBinary:
				if !f.fin {
					return nil, errors.New("fragmented server message")
				}
				return payload, nil
			case wsproto.OpPing:
				_ = w.c.SetWriteDeadline(deadline)
				if _, err := w.c.Write(clientFrame(nil, wsproto.OpPong, payload)); err != nil {
					return nil, err
				}
			case wsproto.OpClose:
				return nil, fmt.Errorf("%w with code %d", errClosedByGateway, closeCode(payload))
			}
			continue
		}
		var tmp [4096]byte
		m, err := w.c.Read(tmp[:])
		w.buf = append(w.buf, tmp[:m]...)
		if err != nil && m == 0 {
			return nil, err
		}
	}
}

// subscribeMessage is an in-band subscription to topic.
func subscribeMessage(topic string) []byte {
	b, _ := json.Marshal(struct {
		Action string `json:"action"`
		Topic  string `json:"topic"`
	}{"subscribe", topic})
	return b
}

// subReply classifies the gateway's answer to an in-band subscription.
func subReply(msg []byte) string {
	var m struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if json.Unmarshal(msg, &m) != nil {
		return "other"
	}
	switch {
	case m.Status == "subscribed":
		return "subscribed"
	case m.Message == "Subscription limit exceeded":
		return "limit"
	case m.Message == "Forbidden":
		return "forbidden"
	}
	return "other"
}

var subSeq atomic.Int64

// subClient repeats the sub kind until ctx ends: connect, subscribe to new
// topics soak/N one at a time until the gateway refuses one, then try a
// topic too long and one with a control character, and close.
func (r *soakRun) subClient(ctx context.Context, id int) {
	for !ended(ctx) {
		c, rest, ok := r.soakDial(ctx, kindSub, "")
		if !ok {
			continue
		}
		outcome, unexpected, example := r.subscribeAll(ctx, &wsReader{c: c, buf: rest})
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(closeFrame())
		_ = c.Close()
		if outcome == "" {
			return // cut short by the end of the run
		}
		r.outc[kindSub].add(outcome, unexpected, example)
		r.ops[kindSub].Add(1)
	}
}

// subWindow is how many subscriptions a sub client sends before reading
// their answers: under max_inflight_messages (64), and small enough that
// one read of the gateway takes them all, so the kind makes progress
// while the in-flight budget lets reads through only now and then.
const subWindow = 32

// subscribeAll runs one sub connection and returns its outcome: it
// subscribes to new topics soak/tN, subWindow at a time, until the gateway
// refuses them, then tries a topic too long and one with a control
// character. Exactly soakMaxSubscriptions must be accepted, every later one
// refused with "Subscription limit exceeded", the bad topics Forbidden. An
// empty outcome means the run ended meanwhile.
func (r *soakRun) subscribeAll(ctx context.Context, w *wsReader) (outcome string, unexpected bool, example string) {
	// ask sends topics and returns the gateway's answers, in order.
	ask := func(topics []string) ([]string, error) {
		deadline := soakDeadline(ctx, 15*time.Second)
		var frames []byte
		for _, t := range topics {
			frames = append(frames, clientFrame(nil, wsproto.OpText, subscribeMessage(t))...)
		}
		_ = w.c.SetWriteDeadline(deadline)
		if _, err := w.c.Write(frames); err != nil {
			return nil, err
		}
		answers := make([]string, 0, len(topics))
		for range topics {
			msg, err := w.next(deadline)
			if err != nil {
				return answers, err
			}
			k := subReply(msg)
			if k == "other" {
				return answers, fmt.Errorf("unexpected answer %.200q", msg)
			}
			answers = append(answers, k)
		}
		return answers, nil
	}
	failed := func(at string, err error) (string, bool, string) {
		if ended(ctx) {
			return "", false, ""
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Reads of every client wait while the in-flight budget is full.
			return "no answer within 15s " + at, false, ""
		}
		return "connection failed " + at + ": " + classify(err), true, err.Error()
	}
	accepted, refused := 0, 0
	for refused == 0 {
		topics := make([]string, subWindow)
		for i := range topics {
			topics[i] = fmt.Sprintf("soak/t%d", subSeq.Add(1))
		}
		answers, err := ask(topics)
		if err != nil {
			return failed(fmt.Sprintf("after %d subscriptions", accepted), err)
		}
		for i, k := range answers {
			switch {
			case k == "subscribed" && refused == 0:
				accepted++
			case k == "limit":
				refused++
			default:
				return fmt.Sprintf("%s after %d subscribed and %d refused", k, accepted, refused), true, topics[i]
			}
		}
	}
	if accepted != soakMaxSubscriptions {
		return fmt.Sprintf("%d subscriptions accepted, want exactly the cap of %d", accepted, soakMaxSubscriptions), true, ""
	}
	for _, bad := range []struct{ what, topic string }{
		{"too long", "soak/" + strings.Repeat("x", 300)},
		{"control character", "soak/a\x01b"},
	} {
		answers, err := ask([]string{bad.topic})
		if err != nil {
			return failed("at the "+bad.what+" topic", err)
		}
		if answers[0] != "forbidden" {
			return fmt.Sprintf("%s topic answered %s", bad.what, answers[0]), true, bad.topic
		}
	}
	return fmt.Sprintf("%d subscribed, the next refused (Subscription limit exceeded); too-long and control-character topics Forbidden", soakMaxSubscriptions), false, ""
}

// mgmtCall is one raw management call: the request head, how much of the
// declared body to send, and how long to wait for the answer.
type mgmtCall struct {
	name string
	head string
	body int // bytes of the body sent; the rest of the declared length never is
	// unread is set for a call that declares a body it does not send and
	// must be refused without it: the gateway must close its connection.
	unread bool
	wait   time.Duration
}

// sigv4Header returns an Authorization and X-Amz-Date header pair that is
// well formed, signs host and x-amz-date, and carries a signature of
// zeros, for key keyID at time at.
func sigv4Header(keyID string, at time.Time) string {
	day := at.UTC().Format("20060102")
	return "Authorization: AWS4-HMAC-SHA256 Credential=" + keyID + "/" + day + "/" + soakRegion +
		"/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64) +
		"\r\nX-Amz-Date: " + at.UTC().Format("20060102T150405Z") + "\r\n"
}

// refusedCalls are the management calls of the refused kind, each
// declaring a large body it does not send: they must be answered 403
// before the body is read.
func (r *soakRun) refusedCalls(now time.Time) []mgmtCall {
	const declared = "Content-Length: 10485760\r\n\r\n"
	post := "POST /@batch HTTP/1.1\r\nHost: " + r.mgmtAddr + "\r\n"
	return []mgmtCall{
		{name: "no credentials", head: post + declared, unread: true},
		{name: "wrong bearer token", head: post + "Authorization: Bearer wrong-" + randomHex(8) + "\r\n" + declared, unread: true},
		{name: "malformed SigV4", head: post + "Authorization: AWS4-HMAC-SHA256 Credential=garbage, Signature=zz\r\n" + declared, unread: true},
		{name: "SigV4 of an unknown key", head: post + sigv4Header("AKIAUNKNOWNSOAK00001", now) + declared, unread: true},
		{name: "SigV4 dated an hour ago", head: post + sigv4Header(soakKeyID, now.Add(-time.Hour)) + declared, unread: true},
		// Passes every check made before the body is read, so the body is
		// read and hashed before the signature fails.
		{name: "SigV4 with a wrong signature, 1 MiB body", head: post + sigv4Header(soakKeyID, now) + "Content-Length: 1048576\r\n\r\n", body: 1 << 20},
		{name: "pprof without credentials", head: "GET /debug/pprof/goroutine?debug=1 HTTP/1.1\r\nHost: " + r.mgmtAddr + "\r\n\r\n"},
	}
}

// mgmtRefused repeats the refused calls until ctx ends, each on a new
// connection.
func (r *soakRun) mgmtRefused(ctx context.Context, id int) {
	for i := id; !ended(ctx); i++ {
		calls := r.refusedCalls(time.Now())
		call := calls[i%len(calls)]
		call.wait = 15 * time.Second
		status, closed, err := r.doMgmt(ctx, call)
		if ended(ctx) {
			return
		}
		switch {
		case err != nil:
			r.outc[kindMgmt].add(call.name+": "+classify(err), true, err.Error())
		case status == http.StatusForbidden && (closed || !call.unread):
			r.outc[kindMgmt].add(call.name+": 403", false, "")
		default:
			r.outc[kindMgmt].add(fmt.Sprintf("%s: %d (connection closed %v)", call.name, status, closed), true, "")
		}
		r.ops[kindMgmt].Add(1)
	}
}

// mgmtIdle repeats until ctx ends: a call refused without a body (403, the
// connection kept alive), then nothing, until the gateway closes the idle
// connection.
func (r *soakRun) mgmtIdle(ctx context.Context) {
	for !ended(ctx) {
		c, err := net.DialTimeout("tcp", r.mgmtAddr, 5*time.Second)
		if err != nil {
			if !ended(ctx) {
				r.outc[kindMgmt].add("idle: connect failed: "+classify(err), true, err.Error())
				r.ops[kindMgmt].Add(1)
			}
			return
		}
		outcome, unexpected, example := r.idleOnce(ctx, c)
		_ = c.Close()
		if ended(ctx) {
			return
		}
		r.outc[kindMgmt].add(outcome, unexpected, example)
		r.ops[kindMgmt].Add(1)
	}
}

func (r *soakRun) idleOnce(ctx context.Context, c net.Conn) (string, bool, string) {
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, "GET /@connections/AAAAAAAAAAAAAAA%3D HTTP/1.1\r\nHost: "+r.mgmtAddr+"\r\nAuthorization: Bearer wrong\r\n\r\n"); err != nil {
		return "idle: " + classify(err), true, err.Error()
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "idle: no answer: " + classify(err), true, err.Error()
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		return fmt.Sprintf("idle: the call answered %d", resp.StatusCode), true, ""
	}
	// Now idle: the gateway must close the connection after
	// management.idle_timeout.
	start := time.Now()
	_ = c.SetDeadline(start.Add(soakIdleTimeout + 10*time.Second))
	_, err = io.Copy(io.Discard, br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if ended(ctx) {
			return "", false, ""
		}
		return fmt.Sprintf("idle: still open %s after the 403", fmtDur(time.Since(start).Round(time.Second))), true, ""
	}
	return fmt.Sprintf("idle: 403, then closed by the gateway after idling (idle_timeout %s)", soakIdleTimeout), false, ""
}

// stalledCalls are the calls of the stalled kind: headers cut short, and
// a body that passes every check made before it is read (the right key,
// region and date; the signature cannot be checked without the body) and
// stops after its first 64 KiB.
func (r *soakRun) stalledCalls(now time.Time) []mgmtCall {
	return []mgmtCall{
		{name: "stalled headers", head: "POST /@batch HTTP/1.1\r\nHost: " + r.mgmtAddr + "\r\nContent-Le"},
		{name: "stalled 10 MB body", head: "POST /@batch HTTP/1.1\r\nHost: " + r.mgmtAddr + "\r\n" + sigv4Header(soakKeyID, now) +
			"Content-Length: 10485760\r\n\r\n", body: 64 << 10},
	}
}

// mgmtStalled repeats the stalled calls until ctx ends. The gateway must
// close a stalled call's connection after management.read_timeout (a
// stalled body may first get 400 for its unread body), or refuse the body
// with 429 when the body budget is taken by other stalled bodies.
func (r *soakRun) mgmtStalled(ctx context.Context, id int) {
	for i := id; !ended(ctx); i++ {
		calls := r.stalledCalls(time.Now())
		call := calls[i%len(calls)]
		call.wait = soakReadTimeout + 10*time.Second
		start := time.Now()
		status, _, err := r.doMgmt(ctx, call)
		if ended(ctx) {
			return
		}
		took := time.Since(start)
		switch {
		case status == http.StatusTooManyRequests:
			r.outc[kindMgmt].add(call.name+": 429 (body budget taken)", false, "")
		case (status == http.StatusBadRequest || (err != nil && classify(err) == causeEOF) || errors.Is(err, syscall.ECONNRESET)) &&
			took >= soakReadTimeout-time.Second:
			what := "closed"
			if status != 0 {
				what = strconv.Itoa(status) + ", closed"
			}
			r.outc[kindMgmt].add(fmt.Sprintf("%s: %s after read_timeout", call.name, what), false, "")
		case err != nil:
			r.outc[kindMgmt].add(fmt.Sprintf("%s: %s after %s", call.name, classify(err), fmtDur(took.Round(time.Millisecond))), true, err.Error())
		default:
			r.outc[kindMgmt].add(fmt.Sprintf("%s: %d after %s", call.name, status, fmtDur(took.Round(time.Millisecond))), true, "")
		}
		r.ops[kindMgmt].Add(1)
	}
}

// doMgmt makes one raw call on a new connection and returns the status (0
// without an answer) and whether the gateway closed the connection after
// it; err is set when there was no answer, or when the connection did not
// end within call.wait after it.
func (r *soakRun) doMgmt(ctx context.Context, call mgmtCall) (status int, closed bool, err error) {
	c, err := net.DialTimeout("tcp", r.mgmtAddr, 5*time.Second)
	if err != nil {
		return 0, false, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(call.wait))
	if _, err := io.WriteString(c, call.head); err != nil {
		return 0, false, err
	}
	if call.body > 0 {
		// The gateway may refuse before reading the body; a failed write
		// shows as the answer or its absence below.
		_, _ = c.Write(make([]byte, call.body))
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, false, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if !resp.Close {
		return resp.StatusCode, false, nil
	}
	// The gateway said it closes the connection: it must.
	if _, err := io.Copy(io.Discard, br); errors.Is(err, os.ErrDeadlineExceeded) {
		return resp.StatusCode, false, fmt.Errorf("status %d with Connection: close, but the connection stayed open: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, true, nil
}

// ended reports whether the run of ctx is over: its context is done or its
// deadline has passed (the context notices a little later, and a dial or
// read that fails meanwhile is no outcome).
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
