package edge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/wsproto"
)

// TestSetLimits changes the limits of a running server: the frame size
// and binary treatment of a connection opened before stay as they were,
// those of a connection opened after are the new ones, and a timeout
// applies to every connection.
func TestSetLimits(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	before := s.dial(t)

	l := awsLimits()
	l.MaxFrameBytes = 1 << 10
	l.MaxMessageBytes = 1 << 10
	s.SetLimits(l, true)
	after := s.dial(t)

	// 2 KB is within the old frame limit and over the new one.
	payload := strings.Repeat("a", 2<<10)
	before.sendText(payload)
	if got := s.rec.waitMessages(t, before.conn, 1); got[0].data != payload {
		t.Fatalf("connection opened before: got %d bytes", len(got[0].data))
	}
	before.send(wsproto.OpBinary, true, []byte{1, 2})
	expectProtocolClose(t, s, before, wsproto.CloseUnsupportedData)

	after.send(wsproto.OpBinary, true, []byte{1, 2})
	if got := s.rec.waitMessages(t, after.conn, 1); !got[0].binary {
		t.Fatalf("connection opened after: binary message not delivered: %+v", got[0])
	}
	f := clientFrame(wsproto.OpText, true, []byte(payload))
	after.write(f[:8])
	expectProtocolClose(t, s, after, wsproto.CloseTooBig, f[8:]...)

	// An idle timeout set now closes a connection that was already open.
	open := s.dial(t)
	l.IdleTimeout = 200 * time.Millisecond
	s.SetLimits(l, true)
	if reason := open.expectClose(wsproto.CloseGoingAway); reason != "Going away" {
		t.Fatalf("close reason %q", reason)
	}
	open.finishClose(wsproto.CloseGoingAway)
}
