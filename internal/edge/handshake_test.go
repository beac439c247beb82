package edge_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/wsproto"
)

// handshakes records every HandshakeDone call, and whether the connection
// had delivered a message by then.
type handshakes struct {
	rec  *recorder
	mu   sync.Mutex
	seen []handshake
}

type handshake struct {
	path     string
	conn     *edge.Conn
	status   int
	messages int
	start    time.Time
}

func (h *handshakes) HandshakeDone(r *http.Request, c *edge.Conn, status int, _ string, start time.Time) {
	n := 0
	if c != nil {
		n = len(h.rec.messages(c))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, handshake{r.URL.Path, c, status, n, start})
}

func (h *handshakes) all() []handshake {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]handshake(nil), h.seen...)
}

// TestHandshakeObserver: every upgrade request is reported once with the
// status answered and, from Connect on, its connection; an accepted one is
// reported before any of its messages, even one sent with the upgrade.
func TestHandshakeObserver(t *testing.T) {
	rec := newRecorder()
	rec.onConnect = func(c *edge.Conn, r *http.Request) (string, error) {
		switch r.Header.Get("X-Refuse") {
		case "403":
			return "", &edge.RejectError{Status: http.StatusForbidden, Message: "Forbidden"}
		case "error":
			return "", errors.New("backend down")
		}
		return "", nil
	}
	hs := &handshakes{rec: rec}
	cfg := edge.Config{Path: "/prod", Limits: awsLimits(), Handshakes: hs}
	s := startServer(t, cfg, rec)

	// A message in the same write as the upgrade request.
	c := s.dial(t, clientFrame(wsproto.OpText, true, []byte("early"))...)
	rec.waitMessages(t, c.conn, 1)
	if _, resp := s.tryDialWith(t, []string{"X-Refuse: 403"}); resp.StatusCode != 403 {
		t.Fatalf("refused: %s", resp.Status)
	}
	if _, resp := s.tryDialWith(t, []string{"X-Refuse: error"}); resp.StatusCode != 502 {
		t.Fatalf("failed: %s", resp.Status)
	}
	s.path = "/elsewhere"
	if _, resp := s.tryDial(t); resp.StatusCode != 404 {
		t.Fatalf("wrong path: %s", resp.Status)
	}

	got := hs.all()
	if len(got) != 4 {
		t.Fatalf("%d handshakes reported, want 4: %+v", len(got), got)
	}
	if h := got[0]; h.status != 101 || h.conn != c.conn || h.messages != 0 || h.start.IsZero() {
		t.Errorf("accepted: %+v; want 101, its connection, reported before its message", h)
	}
	if h := got[1]; h.status != 403 || h.conn == nil || h.conn == c.conn {
		t.Errorf("refused by Connect: %+v", h)
	}
	if h := got[2]; h.status != 502 || h.conn == nil {
		t.Errorf("failed Connect: %+v", h)
	}
	if h := got[3]; h.status != 404 || h.conn != nil || h.path != "/elsewhere" {
		t.Errorf("wrong path: %+v", h)
	}
}
