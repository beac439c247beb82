//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/wsproto"
)

// Push modes and their targets on the measuring machine.
const (
	pushPost  = "post"
	pushBatch = "batch"
	pushTopic = "topic"

	targetPost       = 30_000    // deliveries/s through POST /@connections/{id}
	targetBatch      = 200_000   // deliveries/s through POST /@batch
	targetTopic      = 1_000_000 // deliveries/s through POST /@topics/{topic}
	targetTopicP99   = 20 * time.Millisecond
	targetCross      = 100_000 // deliveries/s across nodes (post and batch)
	targetCrossP99   = 5 * time.Millisecond
	pushTopicName    = "wsbench"
	pushPayloadLabel = "wsbench t="
	tsDigits         = 19
)

// pushOptions are the flags of wsbench push.
type pushOptions struct {
	commonOptions
	mode     string
	n        int
	messages int
	posters  int
	batch    int
	size     int
	rate     float64 // topic: publishes/s; post and batch: deliveries/s offered, 0 for as fast as -posters allow
	duration time.Duration

	httpClient string
	enginePID  int // the registry's server process, whose CPU is reported apart
	readLoops  int // epoll loops reading the clients' sockets; 0 for a goroutine per connection
}

func parsePushOptions(args []string, stderr io.Writer) (*pushOptions, error) {
	o := &pushOptions{}
	fs := flag.NewFlagSet("wsbench push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: wsbench push -mode post|batch|topic -gateway WSGATE [flags]

Measures messages pushed through the management API and delivered to -n
connected clients, counted where the clients read them:
  post   -posters concurrent keep-alive HTTP clients POST /@connections/{id},
         round robin over the connections, -messages in total (target 30k/s)
  batch  the same with POST /@batch of -batch items each, -messages
         deliveries in total (target 200k/s)
  topic  every connection is subscribed with PUT /@connections/{id}/topics/T;
         POST /@topics/T at -rate publishes/s for -duration (target 1M
         deliveries/s, p99 publish-to-receive under 20ms)
With -rate R, post and batch offer R deliveries/s on a fixed schedule
(batch: R/-batch requests/s), at most -posters requests in flight, so that
latency can be measured below saturation; -messages then defaults to
R × -duration.

Cross-node: with -gateways N (N ≥ 2) and -registry redis://… or nats://…,
the gateways form one cluster, the clients connect only to gateways 1..N-1
and every management call goes to gateway 0's management port, so every
delivery crosses nodes through the registry's engine.

Connection ids are learned through the gateway's $connect, an http
integration to a server inside wsbench. Each payload carries the time it was
posted; latency is from just before the HTTP request to the read that
completed the frame (reported for every mode). Topic mode also reports, per
publication, the latency until its last subscriber had it ("last delivery",
last_p50/last_p99 in the summary: a fan-out is done when the slowest client
has it) and the time each POST /@topics took to answer as the publisher
sees it ("publish answer", answer_p50/answer_p99).

`)
		fs.PrintDefaults()
	}
	o.register(fs)
	fs.StringVar(&o.mode, "mode", pushPost, "post, batch or topic")
	fs.IntVar(&o.n, "n", 0, "connections, 1 to 19000 (default 1000; 10000 with -mode topic)")
	fs.IntVar(&o.messages, "messages", 0, "deliveries in total with post and batch, 1 to 20000000 (default 200000; 2000000 with batch)")
	fs.IntVar(&o.posters, "posters", 16, "concurrent HTTP requests, 1 to 256")
	fs.IntVar(&o.batch, "batch", 250, "items per POST /@batch, 1 to 1000 (the gateway's limit)")
	fs.IntVar(&o.size, "size", 64, "payload bytes, 40 to 32768")
	fs.Float64Var(&o.rate, "rate", 0, "topic: publishes per second, 0.1 to 100000 (default 100); post and batch: deliveries per second offered on a fixed schedule, 1 to 10000000 (default 0: as fast as -posters allow)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long -mode topic publishes; with post or batch and -rate, -messages defaults to -rate × -duration")
	fs.IntVar(&o.enginePID, "registry-pid", 0, "`PID` of the redis-server or nats-server behind -registry; its CPU time is reported apart from the other processes'")
	fs.IntVar(&o.readLoops, "read-loops", 1, "epoll loops that read the clients' sockets, 0 to 64 (one is the cheapest on 2 CPUs); 0 reads each connection on a goroutine of its own, with two reads per delivery, as wsbench did before")
	fs.StringVar(&o.httpClient, "http-client", "raw", "management API client: raw (keep-alive connections written and read directly, cheap) or std (net/http's Client, as before)")
	if err := o.parseValidated(fs, args, o.validate); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *pushOptions) validate() error {
	var errs []error
	switch o.mode {
	case pushPost, pushBatch, pushTopic:
	default:
		errs = append(errs, fmt.Errorf("-mode %q: one of post, batch, topic", o.mode))
	}
	if o.n == 0 {
		o.n = 1000
		if o.mode == pushTopic {
			o.n = 10_000
		}
	}
	if o.mode == pushTopic {
		if o.rate == 0 && !o.set["rate"] {
			o.rate = 100
		}
		if o.rate < 0.1 || o.rate > 100_000 {
			errs = append(errs, fmt.Errorf("-rate %g: publishes/s with -mode topic, 0.1 to 100000", o.rate))
		}
	} else if o.rate != 0 && (o.rate < 1 || o.rate > 10_000_000) {
		errs = append(errs, fmt.Errorf("-rate %g: deliveries/s offered with post and batch, 0 (as fast as -posters allow) or 1 to 10000000", o.rate))
	}
	if o.messages == 0 {
		switch {
		case o.mode != pushTopic && o.rate > 0:
			o.messages = max(int(o.rate*o.duration.Seconds()), 1)
		case o.mode == pushBatch:
			o.messages = 2_000_000
		default:
			o.messages = 200_000
		}
	}
	if o.n < 1 || o.n > maxPerProcess {
		errs = append(errs, fmt.Errorf("-n %d: must be 1 to %d (push runs in one process)", o.n, maxPerProcess))
	}
	if o.messages < 1 || o.messages > 20_000_000 {
		errs = append(errs, fmt.Errorf("-messages %d: must be 1 to 20000000", o.messages))
	}
	if err := outOfRange("read-loops", o.readLoops, 0, 64); err != nil {
		errs = append(errs, err)
	}
	if o.httpClient != "raw" && o.httpClient != "std" {
		errs = append(errs, fmt.Errorf("-http-client %q: raw or std", o.httpClient))
	}
	if o.posters < 1 || o.posters > 256 {
		errs = append(errs, fmt.Errorf("-posters %d: must be 1 to 256", o.posters))
	}
	if o.batch < 1 || o.batch > 1000 {
		errs = append(errs, fmt.Errorf("-batch %d: must be 1 to 1000", o.batch))
	}
	if o.size < 40 || o.size > 32768 {
		errs = append(errs, fmt.Errorf("-size %d: must be 40 to 32768", o.size))
	}
	if o.duration <= 0 || o.duration >= o.timeout {
		errs = append(errs, fmt.Errorf("-duration %s: must be more than 0 and less than -timeout %s", o.duration, o.timeout))
	}
	if o.mode == pushTopic && o.n*o.publishes() > 100_000_000 {
		errs = append(errs, fmt.Errorf("-n %d × %d publishes: more than 100000000 deliveries", o.n, o.publishes()))
	}
	if o.gateway == "" || o.config != "" {
		errs = append(errs, errors.New("push needs -gateway and no -config: the configs wsbench writes route $connect to wsbench"))
	}
	if o.enginePID != 0 {
		if o.registry == "" {
			errs = append(errs, errors.New("-registry-pid needs -registry"))
		} else if o.enginePID < 1 {
			errs = append(errs, fmt.Errorf("-registry-pid %d: not a process id", o.enginePID))
		} else if _, err := os.Stat(fmt.Sprintf("/proc/%d", o.enginePID)); err != nil {
			errs = append(errs, fmt.Errorf("-registry-pid %d: no such process", o.enginePID))
		}
	}
	if o.gateways > 1 && o.registry == "" {
		errs = append(errs, fmt.Errorf("-gateways %d: cross-node push needs -registry redis://… or nats://…, so that the processes form one cluster", o.gateways))
	}
	errs = append(errs, o.commonOptions.validate(max(o.n, 1), 1)...)
	return errors.Join(errs...)
}

// crossNode reports whether the clients connect to other gateways than the
// one whose management API is called.
func (o *pushOptions) crossNode() bool { return o.gateways > 1 }

// receivers are the gateways the clients connect to: all but gateway 0 when
// cross-node, else the one gateway.
func (o *pushOptions) receivers() []target {
	if o.crossNode() {
		return o.targets[1:]
	}
	return o.targets
}

// requests is the number of management API calls a post or batch run
// makes.
func (o *pushOptions) requests() int {
	if o.mode == pushBatch {
		return ceilDiv(o.messages, o.batch)
	}
	return o.messages
}

// registryName is the kind of registry the gateways share.
func (o *pushOptions) registryName() string {
	if o.registry == "" {
		return "memory"
	}
	if u, err := url.Parse(o.registry); err == nil {
		return u.Scheme
	}
	return o.registry
}

// publishes is the number of POST /@topics of a topic run.
func (o *pushOptions) publishes() int {
	return max(int(o.rate*o.duration.Seconds()), 1)
}

// expected is the number of deliveries the run expects.
func (o *pushOptions) expected(conns int) int64 {
	if o.mode == pushTopic {
		return int64(o.publishes()) * int64(conns)
	}
	return int64(o.messages)
}

// target is the delivery rate the mode aims for.
func (o *pushOptions) target() float64 {
	switch o.mode {
	case pushBatch:
		return targetBatch
	case pushTopic:
		return targetTopic
	}
	return targetPost
}

// pushPayload appends "wsbench t=NANOS " and padding to size bytes to dst.
// NANOS is ts as 19 zero-padded digits. Plain text needs no escaping inside
// a JSON string.
func pushPayload(dst []byte, ts int64, size int) []byte {
	start := len(dst)
	dst = append(dst, pushPayloadLabel...)
	var num [tsDigits]byte
	for i, v := tsDigits-1, ts; i >= 0; i, v = i-1, v/10 {
		num[i] = byte('0' + v%10)
	}
	dst = append(dst, num[:]...)
	dst = append(dst, ' ')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

// parsePushTS returns the timestamp of a payload made by pushPayload.
func parsePushTS(b []byte) (int64, bool) {
	if len(b) < len(pushPayloadLabel)+tsDigits || !bytes.HasPrefix(b, []byte(pushPayloadLabel)) {
		return 0, false
	}
	var v int64
	for _, c := range b[len(pushPayloadLabel) : len(pushPayloadLabel)+tsDigits] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// batchBody appends {"items":[{"connectionId":ID,"data":PAYLOAD},...]} to
// dst. ids and payload must not need JSON escaping (base64url-like ids,
// pushPayload's text).
func batchBody(dst []byte, ids []string, payload []byte) []byte {
	dst = append(dst, `{"items":[`...)
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"connectionId":"`...)
		dst = append(dst, id...)
		dst = append(dst, `","data":"`...)
		dst = append(dst, payload...)
		dst = append(dst, `"}`...)
	}
	return append(dst, `]}`...)
}

// connectEvent is what wsbench reads of the $connect event.
type connectEvent struct {
	QueryStringParameters map[string]string `json:"queryStringParameters"`
	RequestContext        struct {
		ConnectionID string `json:"connectionId"`
	} `json:"requestContext"`
}

// idRecorder is the $connect integration: it records the connection id of
// the connection whose URL carried ?n=INDEX.
type idRecorder struct {
	mu  sync.Mutex
	ids []string
	bad atomic.Int64
}

func (r *idRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var ev connectEvent
	err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&ev)
	i, convErr := strconv.Atoi(ev.QueryStringParameters["n"])
	if err != nil || convErr != nil || ev.RequestContext.ConnectionID == "" {
		r.bad.Add(1)
		http.Error(w, "wsbench: no n or connectionId", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	if i >= 0 && i < len(r.ids) {
		r.ids[i] = ev.RequestContext.ConnectionID
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *idRecorder) get(i int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[i]
}

// pushConn is one receiving client.
type pushConn struct {
	c        *net.TCPConn
	rest     []byte
	fd       int    // the socket once detached from Go's poller for an epoll receiver, -1 when closed
	detached bool   // fd, not c, is the socket
	pending  []byte // the start of a frame the receiver has not had all of
	writeMu  sync.Mutex
	received atomic.Int64
	lastRecv atomic.Int64 // unix nanos of the last delivery
	bad      atomic.Int64 // data frames without a timestamp
	latMu    sync.Mutex
	lat      []time.Duration
	sentAt   []int64 // the publish timestamp of each lat sample, which names its publication
	err      error
	done     chan struct{}
}

func (p *pushConn) write(frame []byte) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if p.detached {
		return p.writeFD(frame, time.Now().Add(5*time.Second))
	}
	_ = p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := p.c.Write(frame)
	return err
}

// readLoop reads frames until the connection ends, counting data messages
// and their latency from the timestamp in the payload, and answering pings.
func (p *pushConn) readLoop(measure *atomic.Bool) {
	defer close(p.done)
	buf := make([]byte, 0, 4096)
	buf = append(buf, p.rest...)
	for {
		var err error
		if buf, err = p.consume(buf, measure); err != nil {
			p.err = err
			return
		}
		r, err := p.c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+r]
		if err != nil {
			if r == 0 {
				p.err = err
				return
			}
		}
	}
}

// consume handles the whole frames at the start of buf and returns buf
// holding the rest, with room to read more.
func (p *pushConn) consume(buf []byte, measure *atomic.Bool) ([]byte, error) {
	now := time.Now()
	off := 0
	for {
		f, m, err := parseServerFrame(buf[off:])
		if err != nil {
			return buf, err
		}
		if m == 0 {
			break
		}
		off += m
		switch f.op {
		case wsproto.OpText, wsproto.OpBinary, wsproto.OpContinuation:
			if !f.fin {
				continue
			}
			if ts, ok := parsePushTS(f.payload); ok {
				if measure.Load() {
					p.latMu.Lock()
					p.lat = append(p.lat, now.Sub(time.Unix(0, ts)))
					p.sentAt = append(p.sentAt, ts)
					p.latMu.Unlock()
				}
			} else {
				p.bad.Add(1)
			}
			p.lastRecv.Store(now.UnixNano())
			p.received.Add(1)
		case wsproto.OpPing:
			if err := p.write(clientFrame(nil, wsproto.OpPong, f.payload)); err != nil {
				return buf, err
			}
		case wsproto.OpClose:
			return buf, fmt.Errorf("%w with code %d", errClosedByGateway, closeCode(f.payload))
		}
	}
	n := copy(buf, buf[off:])
	buf = buf[:n]
	if len(buf) == cap(buf) {
		if cap(buf) >= 1<<20 {
			return buf, errors.New("server frame larger than 1 MiB")
		}
		buf = append(buf, make([]byte, cap(buf))...)[:n]
	}
	return buf, nil
}

// slowestByPublication folds one client's samples into last, which maps
// a publication, named by the timestamp its payload carries, to the
// latency of its slowest delivery so far: the time until the last
// subscriber had it. sentAt[i] is the timestamp of sample lat[i].
func slowestByPublication(last map[int64]time.Duration, sentAt []int64, lat []time.Duration) {
	for i, ts := range sentAt {
		if d, ok := last[ts]; !ok || lat[i] > d {
			last[ts] = lat[i]
		}
	}
}

// httpTally counts the answers of the management API.
type httpTally struct {
	mu       sync.Mutex
	byStatus map[string]int
	example  map[string]string
}

func (h *httpTally) add(status string, body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byStatus == nil {
		h.byStatus, h.example = map[string]int{}, map[string]string{}
	}
	h.byStatus[status]++
	if _, ok := h.example[status]; !ok {
		h.example[status] = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
}

func (h *httpTally) count(status string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byStatus[status]
}

func (h *httpTally) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.byStatus) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(h.byStatus))
	for k := range h.byStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		s := fmt.Sprintf("%s ×%d", k, h.byStatus[k])
		if !strings.HasPrefix(k, "2") || h.example[k] != "" {
			s += fmt.Sprintf(" (e.g. %q)", h.example[k])
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// mgmtClient sends requests to the management API, with net/http's client
// or, with raw set, over its own keep-alive connections: one request per
// connection at a time, written with one write call and answered through
// http.ReadResponse, without net/http's per-connection goroutines. The raw
// client costs the load generator, which shares the machine with the
// gateway, a fraction of the CPU per request.
type mgmtClient struct {
	base  string
	http  *http.Client
	tally httpTally

	raw  bool
	addr string            // host:port of base
	idle chan *rawHTTPConn // keep-alive connections not in use
}

// rawHTTPConn is one keep-alive connection of the raw client.
type rawHTTPConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte
}

func newRawMgmtClient(base string, conns int) *mgmtClient {
	m := newMgmtClient(base, conns)
	m.raw = true
	m.addr = strings.TrimPrefix(base, "http://")
	m.idle = make(chan *rawHTTPConn, conns*2)
	return m
}

// doRaw is do for the raw client.
func (m *mgmtClient) doRaw(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rc *rawHTTPConn
	select {
	case rc = <-m.idle:
	default:
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", m.addr)
		if err != nil {
			m.tally.add("error: "+classify(err), []byte(err.Error()))
			return 0, nil, err
		}
		rc = &rawHTTPConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}
	}
	b := append(rc.buf[:0], method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, m.addr...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	rc.buf = b
	_ = rc.c.SetDeadline(time.Now().Add(30 * time.Second))
	resp, err := func() (*http.Response, error) {
		if _, err := rc.c.Write(b); err != nil {
			return nil, err
		}
		return http.ReadResponse(rc.br, nil)
	}()
	if err != nil {
		_ = rc.c.Close()
		m.tally.add("error: "+classify(err), []byte(err.Error()))
		return 0, nil, err
	}
	rb, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	m.tally.add(strconv.Itoa(resp.StatusCode), rb)
	if err != nil || resp.Close {
		_ = rc.c.Close()
		return resp.StatusCode, rb, err
	}
	select {
	case m.idle <- rc:
	default:
		_ = rc.c.Close()
	}
	return resp.StatusCode, rb, nil
}

// close closes the raw client's idle connections.
func (m *mgmtClient) close() {
	if !m.raw {
		return
	}
	for {
		select {
		case rc := <-m.idle:
			_ = rc.c.Close()
		default:
			return
		}
	}
}

func newMgmtClient(base string, conns int) *mgmtClient {
	tr := &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	return &mgmtClient{base: base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends one request and returns its status and body; the body is read
// whole so that the connection is reused.
func (m *mgmtClient) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	if m.raw {
		return m.doRaw(ctx, method, path, body)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := m.http.Do(req)
	if err != nil {
		m.tally.add("error: "+classify(err), []byte(err.Error()))
		return 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	m.tally.add(strconv.Itoa(resp.StatusCode), b)
	return resp.StatusCode, b, err
}

func connPath(id string) string { return "/@connections/" + url.PathEscape(id) }

// userSys returns the user and system CPU time of pid from /proc/PID/stat.
func userSys(pid int) (user, sys time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	return parseUserSys(b)
}

// parseUserSys returns utime and stime (fields 14 and 15) of a
// /proc/PID/stat line.
func parseUserSys(b []byte) (user, sys time.Duration) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u) * time.Second / userHZ, time.Duration(s) * time.Second / userHZ
}

// pushRun is the state of one wsbench push run.
type pushRun struct {
	o       *pushOptions
	conns   []*pushConn
	reading bool // the connections are being read (startReading)
	ids     []string
	mgmt    *mgmtClient
	measure atomic.Bool

	lagMu sync.Mutex
	lag   []time.Duration // paced runs: how late each request started

	answerMu sync.Mutex
	answer   []time.Duration // topic: from each POST /@topics request to its answer

	batchResults atomic.Int64  // entries in @batch results
	batchFailed  atomic.Int64  // entries that look like failures
	gwUser       time.Duration // gateway user and system CPU during the run
	gwSys        time.Duration
	selfUser     time.Duration // wsbench's
	selfSys      time.Duration
	sendStart    time.Time
	sendEnd      time.Time
	perGateway   []time.Duration // CPU of each gateway, with more than one
	engineCPU    time.Duration   // CPU of -registry-pid
}

func (r *pushRun) enginePIDs() []int {
	if r.o.enginePID > 0 {
		return []int{r.o.enginePID}
	}
	return nil
}

// userSysAll sums userSys over pids.
func userSysAll(pids []int) (user, sys time.Duration) {
	for _, pid := range pids {
		u, s := userSys(pid)
		user, sys = user+u, sys+s
	}
	return user, sys
}

// perProcessCPU returns the user+system CPU time of each of pids.
func perProcessCPU(pids []int) []time.Duration {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		u, s := userSys(pid)
		out[i] = u + s
	}
	return out
}

func runPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parsePushOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	printf := func(format string, args ...any) { fmt.Fprintf(stdout, format, args...) }

	rec := &idRecorder{ids: make([]string, o.n)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	o.connectURL = "http://" + ln.Addr().String() + "/connect"

	workdir, err := makeWorkdir(o.workdir)
	if err != nil {
		return err
	}
	gws, err := startGateways(ctx, &o.commonOptions, workdir)
	if err != nil {
		return err
	}
	defer func() {
		res := stopGateways(gws, 30*time.Second)
		for i, g := range gws {
			n, lines, _ := g.logProblems(5)
			printf("gateway %d: %s after SIGTERM (%s); %d warning/error log lines %q\n",
				g.index, exitText(res[i].Err), fmtDur(res[i].Took), n, lines)
		}
	}()
	var pids []int
	for i, g := range gws {
		pids = append(pids, g.pid())
		printf("gateway %d: pid %d, ws://%s/, management http://127.0.0.1:%d, config %s, log %s\n", i, g.pid(), g.addr, o.mgmtPort+i, g.config, g.log)
	}
	mgmtBase := fmt.Sprintf("http://127.0.0.1:%d", o.mgmtPort)
	printf("wsbench push -mode %s: %d connections, payload %d bytes, %d concurrent HTTP requests\n", o.mode, o.n, o.size, o.posters)
	if o.crossNode() {
		printf("cross-node: %d gateways on registry %s; clients connect to gateways 1..%d only, every management call goes to gateway 0 (%s), so every delivery crosses nodes\n",
			o.gateways, o.registry, o.gateways-1, mgmtBase)
	} else {
		printf("same node: registry %s; clients and management calls on gateway 0\n", o.registryName())
	}
	if o.mode != pushTopic && o.rate > 0 {
		printf("offered: %g deliveries/s on a fixed schedule (%g requests/s), %d deliveries in %d requests\n", o.rate, o.rate/float64(o.deliveriesPerRequest()), o.messages, o.requests())
	}
	printf("environment: %s; load average %s; %d CPUs\n", envSummary(), loadAverage(), runtime.NumCPU())
	printf("%s; $connect: http integration to %s recording connection ids; management API client: %s\n", o.authSummary(), o.connectURL, o.httpClient)

	r := &pushRun{o: o}
	switch o.httpClient {
	case "raw":
		r.mgmt = newRawMgmtClient(mgmtBase, o.posters)
	default:
		r.mgmt = newMgmtClient(mgmtBase, o.posters)
	}
	defer r.mgmt.close()
	fails := r.dial(ctx, rec)
	defer r.closeAll()
	printf("connect: %d of %d established, ids recorded for all of them; failures: %s; bad $connect events %d\n",
		len(r.conns), o.n, fails.String(), rec.bad.Load())
	if len(r.conns) == 0 {
		return errors.New("no connection established")
	}
	if err := r.startReading(o.readLoops); err != nil {
		return err
	}

	if o.mode == pushTopic {
		t0 := time.Now()
		if err := r.subscribe(ctx); err != nil {
			return err
		}
		printf("subscribe: %d PUT /@connections/{id}/topics/%s in %s; answers: %s\n", len(r.conns), pushTopicName, fmtDur(time.Since(t0)), r.mgmt.tally.String())
		r.mgmt.tally = httpTally{}
	}

	r.measure.Store(true)
	gu0, gs0 := userSysAll(pids)
	per0 := perProcessCPU(pids)
	eng0 := perProcessCPU(r.enginePIDs())
	su0, ss0 := userSys(os.Getpid())
	cpu0 := takeCPU(pids)
	switch o.mode {
	case pushPost:
		r.sendRequests(ctx, r.postSender)
	case pushBatch:
		r.sendRequests(ctx, r.batchSender)
	case pushTopic:
		r.sendTopic(ctx)
	}
	received, lastRecv := r.wait(ctx, o.expected(len(r.conns)))
	cpu := takeCPU(pids).since(cpu0)
	gu1, gs1 := userSysAll(pids)
	per1 := perProcessCPU(pids)
	if eng1 := perProcessCPU(r.enginePIDs()); len(eng1) == 1 {
		r.engineCPU = eng1[0] - eng0[0]
	}
	su1, ss1 := userSys(os.Getpid())
	r.gwUser, r.gwSys, r.selfUser, r.selfSys = gu1-gu0, gs1-gs0, su1-su0, ss1-ss0
	if len(pids) > 1 {
		for i := range pids {
			r.perGateway = append(r.perGateway, per1[i]-per0[i])
		}
	}
	return r.report(stdout, received, lastRecv, cpu)
}

// dial opens the connections, connection i with ?n=i, and keeps those
// whose id the $connect integration recorded.
func (r *pushRun) dial(ctx context.Context, rec *idRecorder) failures {
	o := r.o
	var srcs []net.IP
	for k := range o.sources {
		srcs = append(srcs, nthSource(o.firstSrc, k))
	}
	d := newDialers(srcs, o.dialTimeout)
	recv := o.receivers()
	conns := make([]*pushConn, o.n)
	var next atomic.Int64
	var mu sync.Mutex
	var fails failures
	var wg sync.WaitGroup
	for range min(o.dialers, o.n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= o.n {
					return
				}
				t, err := withQuery(recv[i%len(recv)], "n="+strconv.Itoa(i))
				if err == nil {
					var c *net.TCPConn
					var rest []byte
					c, rest, err = dialWS(ctx, d.pick(i, t), t)
					if err == nil {
						conns[i] = &pushConn{c: c, rest: rest, fd: -1, done: make(chan struct{})}
						continue
					}
				}
				mu.Lock()
				fails.add(err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, p := range conns {
		if p == nil {
			continue
		}
		id := rec.get(i)
		if id == "" {
			fails.addCause("no id", "$connect recorded no connection id", 1)
			_ = p.c.Close()
			continue
		}
		r.conns = append(r.conns, p)
		r.ids = append(r.ids, id)
	}
	return fails
}

// withQuery returns t with q added to its query.
func withQuery(t target, q string) (target, error) {
	sep := "?"
	if strings.Contains(t.URL, "?") {
		sep = "&"
	}
	return parseTarget(t.URL + sep + q)
}

// startReading starts reading every connection: with loops epoll loops,
// or a goroutine per connection when loops is 0.
func (r *pushRun) startReading(loops int) error {
	if loops > 0 {
		if err := startReceiver(r.conns, loops, &r.measure); err != nil {
			return err
		}
	} else {
		for _, p := range r.conns {
			go p.readLoop(&r.measure)
		}
	}
	r.reading = true
	return nil
}

// closeAll sends each connection a close frame and ends it; once reading
// has started, it waits until every reader has seen its connection end.
func (r *pushRun) closeAll() {
	frame := closeFrame()
	for _, p := range r.conns {
		_ = p.write(frame)
		p.shutdown()
	}
	if !r.reading {
		return
	}
	for _, p := range r.conns {
		<-p.done
	}
}

// parallel runs f in r.o.posters goroutines and records the send span.
func (r *pushRun) parallel(f func()) {
	var wg sync.WaitGroup
	r.sendStart = time.Now()
	for range r.o.posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	wg.Wait()
	r.sendEnd = time.Now()
}

func (r *pushRun) subscribe(ctx context.Context) error {
	var next atomic.Int64
	r.parallel(func() {
		for ctx.Err() == nil {
			i := int(next.Add(1)) - 1
			if i >= len(r.ids) {
				return
			}
			_, _, _ = r.mgmt.do(ctx, http.MethodPut, connPath(r.ids[i])+"/topics/"+pushTopicName, nil)
		}
	})
	ok := 0
	for _, s := range []string{"200", "201", "204"} {
		ok += r.mgmt.tally.count(s)
	}
	if ok < len(r.ids) {
		return fmt.Errorf("subscribing: %d of %d PUT /@connections/{id}/topics/%s succeeded; answers: %s (the endpoint may not exist in this build)",
			ok, len(r.ids), pushTopicName, r.mgmt.tally.String())
	}
	return nil
}

// deliveriesPerRequest is how many deliveries one post or batch request
// asks for.
func (o *pushOptions) deliveriesPerRequest() int {
	if o.mode == pushBatch {
		return o.batch
	}
	return 1
}

// postSender returns one poster's function making POST
// /@connections/{id} number k.
func (r *pushRun) postSender() func(context.Context, int) {
	buf := make([]byte, 0, r.o.size)
	return func(ctx context.Context, k int) {
		buf = pushPayload(buf[:0], time.Now().UnixNano(), r.o.size)
		_, _, _ = r.mgmt.do(ctx, http.MethodPost, connPath(r.ids[k%len(r.ids)]), buf)
	}
}

// batchSender returns one poster's function making POST /@batch number j,
// with the items j×batch up to -messages, round robin over the
// connections.
func (r *pushRun) batchSender() func(context.Context, int) {
	var body, payload []byte
	ids := make([]string, 0, r.o.batch)
	return func(ctx context.Context, j int) {
		start := j * r.o.batch
		ids = ids[:0]
		for k := start; k < min(start+r.o.batch, r.o.messages); k++ {
			ids = append(ids, r.ids[k%len(r.ids)])
		}
		payload = pushPayload(payload[:0], time.Now().UnixNano(), r.o.size)
		body = batchBody(body[:0], ids, payload)
		status, resp, err := r.mgmt.do(ctx, http.MethodPost, "/@batch", body)
		if err == nil && status == http.StatusOK {
			n, failed := countBatchResults(resp)
			r.batchResults.Add(int64(n))
			r.batchFailed.Add(int64(failed))
		}
	}
}

// sendRequests makes the requests of a post or batch run from -posters
// goroutines, each with its own sender from newSender: back to back
// without -rate, else on a fixed schedule.
func (r *pushRun) sendRequests(ctx context.Context, newSender func() func(context.Context, int)) {
	total := r.o.requests()
	if r.o.rate > 0 {
		r.paced(ctx, total, r.o.rate/float64(r.o.deliveriesPerRequest()), newSender)
		return
	}
	var next atomic.Int64
	r.parallel(func() {
		send := newSender()
		for ctx.Err() == nil {
			k := int(next.Add(1)) - 1
			if k >= total {
				return
			}
			send(ctx, k)
		}
	})
}

// pacedJob is one request of a paced run and when it was due.
type pacedJob struct {
	k   int
	due time.Time
}

// paced makes requests 0..total-1 on a fixed schedule of perSec per
// second from r.o.posters goroutines. A request whose turn comes while all
// posters are busy starts late; how late each started is kept in r.lag.
// The schedule is kept by sleeping until the next request is due; a Go
// timer has about a millisecond's resolution here, so at more than about
// 1,000 requests/s the requests due meanwhile leave together.
func (r *pushRun) paced(ctx context.Context, total int, perSec float64, newSender func() func(context.Context, int)) {
	interval := time.Duration(float64(time.Second) / perSec)
	jobs := make(chan pacedJob, r.o.posters)
	var wg sync.WaitGroup
	r.sendStart = time.Now()
	for range r.o.posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send := newSender()
			var lag []time.Duration
			for j := range jobs {
				lag = append(lag, time.Since(j.due))
				send(ctx, j.k)
			}
			r.lagMu.Lock()
			r.lag = append(r.lag, lag...)
			r.lagMu.Unlock()
		}()
	}
schedule:
	for k := 0; k < total; k++ {
		due := r.sendStart.Add(time.Duration(k) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case jobs <- pacedJob{k, due}:
		case <-ctx.Done():
			break schedule
		}
	}
	close(jobs)
	wg.Wait()
	r.sendEnd = time.Now()
}

// countBatchResults returns the number of entries in a @batch answer's
// results and how many of them carry an error or a status other than 2xx.
func countBatchResults(body []byte) (n, failed int) {
	var resp struct {
		Results []map[string]any `json:"results"`
	}
	if json.Unmarshal(body, &resp) != nil {
		return 0, 0
	}
	for _, res := range resp.Results {
		bad := false
		for k, v := range res {
			switch strings.ToLower(k) {
			case "error", "errortype", "errormessage":
				bad = bad || (v != nil && v != "")
			case "status", "statuscode":
				if f, ok := v.(float64); ok && (f < 200 || f > 299) {
					bad = true
				}
				if s, ok := v.(string); ok && !strings.EqualFold(s, "ok") && !strings.HasPrefix(s, "2") && !strings.EqualFold(s, "delivered") {
					bad = true
				}
			case "ok", "delivered":
				if b, ok := v.(bool); ok && !b {
					bad = true
				}
			}
		}
		if bad {
			failed++
		}
	}
	return len(resp.Results), failed
}

// sendTopic publishes at o.rate on a fixed schedule, at most o.posters
// publishes in flight; a publish is sent late when all are busy.
func (r *pushRun) sendTopic(ctx context.Context) {
	o := r.o
	total := o.publishes()
	interval := time.Duration(float64(time.Second) / o.rate)
	sem := make(chan struct{}, o.posters)
	var wg sync.WaitGroup
	r.sendStart = time.Now()
	for k := 0; k < total && ctx.Err() == nil; k++ {
		if d := time.Until(r.sendStart.Add(time.Duration(k) * interval)); d > 0 {
			time.Sleep(d)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			t := time.Now()
			body := pushPayload(make([]byte, 0, o.size), t.UnixNano(), o.size)
			_, _, _ = r.mgmt.do(ctx, http.MethodPost, "/@topics/"+pushTopicName, body)
			d := time.Since(t)
			r.answerMu.Lock()
			r.answer = append(r.answer, d)
			r.answerMu.Unlock()
		}()
	}
	wg.Wait()
	r.sendEnd = time.Now()
}

// wait waits until want deliveries have arrived, the deliveries stop for
// 5 s after the last request, or ctx ends. It returns the deliveries and
// the time of the last.
func (r *pushRun) wait(ctx context.Context, want int64) (int64, time.Time) {
	sum := func() (n int64, last int64) {
		for _, p := range r.conns {
			n += p.received.Load()
			last = max(last, p.lastRecv.Load())
		}
		return n, last
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	prev, since := int64(-1), time.Now()
	for {
		n, last := sum()
		if n >= want || ctx.Err() != nil {
			r.measure.Store(false)
			return n, time.Unix(0, last)
		}
		if n != prev {
			prev, since = n, time.Now()
		} else if time.Since(since) > 5*time.Second {
			r.measure.Store(false)
			return n, time.Unix(0, last)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}

func (r *pushRun) report(w io.Writer, received int64, lastRecv time.Time, cpu cpuSnapshot) error {
	o := r.o
	printf := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	want := o.expected(len(r.conns))
	var lat []time.Duration
	var bad int64
	last := make(map[int64]time.Duration) // publication (its timestamp) → its slowest delivery
	for _, p := range r.conns {
		p.latMu.Lock()
		lat = append(lat, p.lat...)
		if o.mode == pushTopic {
			slowestByPublication(last, p.sentAt, p.lat)
		}
		p.latMu.Unlock()
		bad += p.bad.Load()
	}
	sum := summarize(lat)
	lastSum := summarize(slices.Collect(maps.Values(last)))
	r.answerMu.Lock()
	answerSum := summarize(r.answer)
	r.answerMu.Unlock()
	span := lastRecv.Sub(r.sendStart)
	sendSpan := r.sendEnd.Sub(r.sendStart)
	rate := float64(received) / max(span.Seconds(), 1e-9)
	var closed int
	for _, p := range r.conns {
		select {
		case <-p.done:
			closed++
		default:
		}
	}
	printf("\nresults\n")
	if o.mode != pushTopic && o.rate > 0 {
		r.lagMu.Lock()
		lagSum := summarize(r.lag)
		r.lagMu.Unlock()
		printf("  offered        %g deliveries/s (%g requests/s) on a fixed schedule; requests started behind schedule by %s\n",
			o.rate, o.rate/float64(o.deliveriesPerRequest()), lagSum)
	}
	switch o.mode {
	case pushPost:
		printf("  requests       %d POST /@connections/{id} by %d concurrent clients in %s (%.0f/s); answers: %s\n",
			o.messages, o.posters, fmtDur(sendSpan), float64(o.messages)/max(sendSpan.Seconds(), 1e-9), r.mgmt.tally.String())
	case pushBatch:
		reqs := ceilDiv(o.messages, o.batch)
		printf("  requests       %d POST /@batch of %d items by %d concurrent clients in %s (%.0f/s); answers: %s\n",
			reqs, o.batch, o.posters, fmtDur(sendSpan), float64(reqs)/max(sendSpan.Seconds(), 1e-9), r.mgmt.tally.String())
		printf("  batch results  %d entries, %d of them failures\n", r.batchResults.Load(), r.batchFailed.Load())
	case pushTopic:
		printf("  publishes      %d POST /@topics/%s offered at %.0f/s, sent in %s; answers: %s\n",
			o.publishes(), pushTopicName, o.rate, fmtDur(sendSpan), r.mgmt.tally.String())
	}
	printf("  deliveries     %d of %d expected, %d without a timestamp; %d connections closed during the run\n", received, want, bad, closed)
	printf("  delivered      %.0f/s over %s (from the first request to the last delivery)\n", rate, fmtDur(span))
	printf("  latency        %s\n", sum)
	printf("                 (from just before the HTTP request to the client's read that completed the frame)\n")
	if o.mode == pushTopic {
		printf("  last delivery  %s\n", lastSum)
		printf("                 (per publication: from just before its HTTP request to the read of the last subscriber that got it)\n")
		printf("  publish answer %s\n", answerSum)
		printf("                 (per POST /@topics: from just before the request to its answer, as the publisher sees it)\n")
	}
	ncpu := runtime.NumCPU()
	others := max(cpu.system-cpu.gateway-cpu.self-r.engineCPU, 0)
	engine := ""
	if r.o.enginePID > 0 {
		engine = fmt.Sprintf("%s server (pid %d) %s (%.0f%%), ", o.registryName(), o.enginePID, fmtDur(r.engineCPU), 100*r.engineCPU.Seconds()/max(span.Seconds(), 1e-9))
	}
	printf("  CPU            gateway %s (%.0f%% of one core), wsbench %s (%.0f%%), %sall other processes %s; %d CPUs × %s = %s\n",
		fmtDur(cpu.gateway), 100*cpu.gateway.Seconds()/max(span.Seconds(), 1e-9),
		fmtDur(cpu.self), 100*cpu.self.Seconds()/max(span.Seconds(), 1e-9), engine,
		fmtDur(others), ncpu, fmtDur(span), fmtDur(time.Duration(ncpu)*span))
	printf("                 gateway user %s + system %s; wsbench user %s + system %s\n",
		fmtDur(r.gwUser), fmtDur(r.gwSys), fmtDur(r.selfUser), fmtDur(r.selfSys))
	if len(r.perGateway) > 0 {
		parts := make([]string, len(r.perGateway))
		for i, d := range r.perGateway {
			parts[i] = fmt.Sprintf("gateway %d %s", i, fmtDur(d))
		}
		printf("                 by process (user + system): %s\n", strings.Join(parts, ", "))
	}
	if received > 0 {
		printf("                 gateway %s per delivery, wsbench %s per delivery\n",
			fmtDur(cpu.gateway/time.Duration(received)), fmtDur(cpu.self/time.Duration(received)))
	}
	met := rate >= o.target() && received >= want
	verdict := fmt.Sprintf("target %.0f deliveries/s", o.target())
	if o.mode == pushTopic {
		met = met && sum.N > 0 && sum.P99 < targetTopicP99
		verdict += fmt.Sprintf(" and p99 < %s", fmtDur(targetTopicP99))
	}
	yesNo := map[bool]string{true: "met", false: "NOT met"}
	printf("  target         %s: %s\n", verdict, yesNo[met])
	crossP99 := sum.N > 0 && sum.P99 < targetCrossP99 && received >= want
	crossRate := rate >= targetCross && received >= want
	if o.crossNode() && o.mode != pushTopic {
		printf("  cross-node     p99 < %s: %s; %d deliveries/s: %s\n", fmtDur(targetCrossP99), yesNo[crossP99], targetCross, yesNo[crossRate])
	}
	placement := "same_node"
	if o.crossNode() {
		placement = "cross_node"
	}
	printf("\nsummary: mode=%s placement=%s gateways=%d registry=%s http_client=%s n=%d posters=%d batch=%d size=%d rate=%g deliveries=%d expected=%d delivered_per_s=%.0f p50=%s p99=%s max=%s gateway_cpu=%s wsbench_cpu=%s engine_cpu=%s others_cpu=%s target_met=%v",
		o.mode, placement, o.gateways, o.registryName(), o.httpClient, len(r.conns), o.posters, o.batch, o.size, o.rate, received, want, rate, fmtDur(sum.P50), fmtDur(sum.P99), fmtDur(sum.Max),
		fmtDur(cpu.gateway), fmtDur(cpu.self), fmtDur(r.engineCPU), fmtDur(others), met)
	if o.mode == pushTopic {
		printf(" last_p50=%s last_p99=%s last_max=%s answer_p50=%s answer_p99=%s",
			fmtDur(lastSum.P50), fmtDur(lastSum.P99), fmtDur(lastSum.Max), fmtDur(answerSum.P50), fmtDur(answerSum.P99))
	}
	if o.crossNode() && o.mode != pushTopic {
		printf(" cross_p99_met=%v cross_rate_met=%v", crossP99, crossRate)
	}
	printf("\n")
	if received < want {
		return fmt.Errorf("%d of %d deliveries did not arrive", want-received, want)
	}
	return nil
}
