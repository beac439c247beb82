package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// connect is an interactive client: each stdin line is sent as a text
// message; each message received is printed on its own line. It ends when
// stdin ends (closing with 1000) or the server closes, and reports the close
// code.
//
// When stdin ends, replies to what was sent may still be on their way, and
// a client that sent its close frame would discard them (coder/websocket
// reads only the close reply then, as most clients do). So connect first
// waits, up to -wait, until it has received as many messages as it sent.
func connect(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("connect", stderr)
	var headers headerFlags
	fs.Var(&headers, "H", "extra request `header` \"Name: value\" (repeatable)")
	protocols := fs.String("subprotocol", "", "comma-separated `list` to offer in Sec-WebSocket-Protocol")
	wait := fs.Duration("wait", 2*time.Second, "when stdin ends, wait up to `duration` for as many messages as were sent before closing (0: close at once)")
	var tf tlsFlags
	tf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *wait < 0 {
		return usageError{fmt.Errorf("-wait must not be negative, got %s", *wait)}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("want exactly one URL, e.g. ws://127.0.0.1:8080/")}
	}
	h := http.Header{}
	for _, kv := range headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return usageError{fmt.Errorf("header %q is not \"Name: value\"", kv)}
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	client, err := tf.client()
	if err != nil {
		return err
	}
	opts := &websocket.DialOptions{HTTPHeader: h, HTTPClient: client}
	if *protocols != "" {
		for _, p := range strings.Split(*protocols, ",") {
			opts.Subprotocols = append(opts.Subprotocols, strings.TrimSpace(p))
		}
	}
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(dialCtx, fs.Arg(0), opts)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("handshake refused: %s", resp.Status)
		}
		// The dial error quotes the URL, whose query may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("dial %s: %v", redactURL(fs.Arg(0)), err)
	}
	conn.SetReadLimit(16 << 20)
	fmt.Fprintf(stderr, "connected to %s", redactURL(fs.Arg(0)))
	if p := conn.Subprotocol(); p != "" {
		fmt.Fprintf(stderr, " (subprotocol %s)", p)
	}
	fmt.Fprintln(stderr, "; type a message and press enter, Ctrl-D to close")

	readDone := make(chan error, 1)
	var received atomic.Int64
	got := make(chan struct{}, 1) // a token: a message has arrived
	go func() {
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				readDone <- err
				return
			}
			received.Add(1)
			select {
			case got <- struct{}{}:
			default:
			}
			if typ == websocket.MessageBinary {
				fmt.Fprintf(stdout, "< [binary %d bytes] %x\n", len(data), data)
				continue
			}
			fmt.Fprintf(stdout, "< %s\n", data)
		}
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	var sent int64
	for {
		select {
		case err := <-readDone:
			return closeOutcome(err, stderr)
		case line, ok := <-lines:
			if !ok {
				if ended, err := awaitReplies(ctx, *wait, sent, &received, got, readDone); ended {
					return closeOutcome(err, stderr)
				}
				closeErr := conn.Close(websocket.StatusNormalClosure, "")
				readErr := <-readDone
				if websocket.CloseStatus(readErr) == -1 && errors.Is(readErr, net.ErrClosed) {
					// Close read the server's close frame, or saw the
					// socket end, before the reader did; its error is
					// the outcome.
					if closeErr == nil {
						fmt.Fprintf(stderr, "closed: %d\n", int(websocket.StatusNormalClosure))
						return nil
					}
					return closeOutcome(closeErr, stderr)
				}
				return closeOutcome(readErr, stderr)
			}
			if err := conn.Write(ctx, websocket.MessageText, []byte(line)); err != nil {
				return closeOutcome(err, stderr)
			}
			sent++
		case <-ctx.Done():
			_ = conn.Close(websocket.StatusNormalClosure, "")
			<-readDone
			return nil
		}
	}
}

// awaitReplies waits up to d, or until ctx is done, for received to reach
// sent. If the connection ends meanwhile it returns true and the reader's
// error.
func awaitReplies(ctx context.Context, d time.Duration, sent int64, received *atomic.Int64, got <-chan struct{}, readDone <-chan error) (bool, error) {
	if d <= 0 {
		return false, nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for received.Load() < sent {
		select {
		case err := <-readDone:
			return true, err
		case <-got:
		case <-timer.C:
			return false, nil
		case <-ctx.Done():
			return false, nil
		}
	}
	return false, nil
}

func closeOutcome(err error, stderr io.Writer) error {
	if code := websocket.CloseStatus(err); code != -1 {
		var ce websocket.CloseError
		reason := ""
		if errors.As(err, &ce) {
			reason = ce.Reason
		}
		fmt.Fprintf(stderr, "closed: %d %s\n", int(code), reason)
		if code == websocket.StatusNormalClosure || code == websocket.StatusGoingAway {
			return nil
		}
		return fmt.Errorf("connection closed with %d %s", int(code), reason)
	}
	return fmt.Errorf("connection lost: %w", err)
}

// redactURL hides what in a URL is often a secret: query values (tokens)
// and the password of the user info. A URL that does not parse is not
// shown at all, since what is secret in it cannot be told apart.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(malformed URL)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// post sends one message to a connection through the management API.
func post(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("post", stderr)
	endpoint := fs.String("endpoint", "http://127.0.0.1:9090", "management API `URL`, with the stage if you like (http://127.0.0.1:9090/prod)")
	tokenEnv := fs.String("token-env", "WSGATE_MGMT_TOKEN", "environment `variable` holding the bearer token (unset or empty: no token)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on a management API that has not answered after `D`")
	var tf tlsFlags
	tf.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: wsgate post [flags] [--] ID MESSAGE\n"+
			"A connection ID can start with \"-\": put -- before it so it is not read as a flag.\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError{errors.New("want ID and MESSAGE (MESSAGE \"-\" reads standard input)")}
	}
	if *timeout <= 0 {
		return usageError{fmt.Errorf("-timeout must be positive, got %v", *timeout)}
	}
	id, msg := fs.Arg(0), fs.Arg(1)
	var body io.Reader = strings.NewReader(msg)
	if msg == "-" {
		body = stdin
	}
	u := strings.TrimRight(*endpoint, "/") + "/@connections/" + url.PathEscape(id)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		// The parse error quotes the URL, whose user info may hold a
		// password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return usageError{fmt.Errorf("bad endpoint %s: %w", redactURL(*endpoint), err)}
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if tok := os.Getenv(*tokenEnv); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	client, err := tf.client()
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("post: no answer from %s after %v", redactURL(*endpoint), *timeout)
		}
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		errType := resp.Header.Get("X-Amzn-ErrorType")
		return fmt.Errorf("%s %s %s", resp.Status, errType, strings.TrimSpace(string(text)))
	}
	fmt.Fprintf(stdout, "%s\n", resp.Status)
	return nil
}
