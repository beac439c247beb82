package inspect

import (
	"encoding/base64"
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/redact"
)

// Limits of message tails.
const (
	// TailSize is how many messages a tail holds; older ones are dropped.
	TailSize = 100
	// TailDataBytes is how much of a message a tail keeps: text is cut at
	// this many bytes, binary data at the bytes whose base64 is this long.
	TailDataBytes = 2048
	// MaxTails is how many tails may be open on one node at once.
	MaxTails = 64
	// TailLapse is how long a tail lives after it was last started or
	// extended.
	TailLapse = 60 * time.Second
)

// binaryDataBytes are the bytes of a binary message a tail keeps: their
// base64 is TailDataBytes long.
const binaryDataBytes = TailDataBytes / 4 * 3

// Errors of Tails' methods.
var (
	// ErrTailsOff is a tail call on a node whose tails are off.
	ErrTailsOff = errors.New("message tails are off")
	// ErrTooManyTails is a new tail beyond MaxTails.
	ErrTooManyTails = errors.New("too many message tails open")
	// ErrNoTail is a read of a connection that has no tail open.
	ErrNoTail = errors.New("no tail is open on this connection")
)

// TailItem is one message of a tail.
type TailItem struct {
	Seq  uint64
	Time time.Time
	// Out is a message to the client; otherwise from it.
	Out bool
	// Data is the message, redacted and cut: base64 of the first bytes
	// for a binary message.
	Data string
	// Bytes is the whole message's size.
	Bytes     int
	Truncated bool
	Binary    bool
}

// TailPage is what a read of a tail returns: the items after the seq
// asked for, oldest first; Next, the last seq returned (the seq asked for
// when none is); and Dropped, how many items after that seq had left the
// tail before the read.
type TailPage struct {
	Items   []TailItem
	Next    uint64
	Dropped uint64
}

// Tails are a node's open message tails, one per tailed connection. The
// zero value is not usable; use NewTails. It is safe for concurrent use.
type Tails struct {
	now func() time.Time
	on  atomic.Bool

	// mu guards tails.
	mu    sync.Mutex
	tails map[string]*tail
}

// NewTails returns a node's tails, off, whose lapses and times follow now
// (nil: time.Now).
func NewTails(now func() time.Time) *Tails {
	if now == nil {
		now = time.Now
	}
	return &Tails{now: now, tails: make(map[string]*tail)}
}

// SetEnabled turns tails on or off. Turning them off stops every open
// tail.
func (t *Tails) SetEnabled(on bool) {
	if t.on.Swap(on) && !on {
		t.mu.Lock()
		for id, tl := range t.tails {
			tl.conn.SetTap(nil)
			delete(t.tails, id)
		}
		t.mu.Unlock()
	}
}

// Enabled reports whether tails are on.
func (t *Tails) Enabled() bool { return t != nil && t.on.Load() }

// Open reports how many tails are open.
func (t *Tails) Open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.tails)
}

// Start starts recording c's messages, or extends the tail already open
// on it, for TailLapse from now. It fails with ErrTailsOff when tails are
// off and ErrTooManyTails when MaxTails are open already.
func (t *Tails) Start(c hub.Conn) error {
	if !t.Enabled() {
		return ErrTailsOff
	}
	tc, ok := c.(hub.Tappable)
	if !ok {
		return errors.New("the connection cannot be tailed")
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if tl := t.tails[c.ID()]; tl != nil {
		tl.until.Store(now.Add(TailLapse).UnixNano())
		return nil
	}
	if len(t.tails) >= MaxTails {
		t.sweepLocked(now)
		if len(t.tails) >= MaxTails {
			return ErrTooManyTails
		}
	}
	tl := &tail{conn: tc, now: t.now}
	tl.until.Store(now.Add(TailLapse).UnixNano())
	t.tails[c.ID()] = tl
	tc.SetTap(tl)
	return nil
}

// Read returns the items of connection id's tail after seq after (see
// TailPage); ErrNoTail when none is open, or it lapsed.
func (t *Tails) Read(id string, after uint64) (TailPage, error) {
	if !t.Enabled() {
		return TailPage{}, ErrTailsOff
	}
	now := t.now()
	t.mu.Lock()
	tl := t.tails[id]
	if tl != nil && tl.lapsed(now) {
		t.removeLocked(id, tl)
		tl = nil
	}
	t.mu.Unlock()
	if tl == nil {
		return TailPage{}, ErrNoTail
	}
	return tl.read(after), nil
}

// Stop stops connection id's tail, if it has one. Stop, Drop, Sweep and
// Enabled may be called on a nil *Tails, which has none.
func (t *Tails) Stop(id string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	if tl := t.tails[id]; tl != nil {
		t.removeLocked(id, tl)
	}
	t.mu.Unlock()
}

// Drop frees the tail of connection id, which has closed.
func (t *Tails) Drop(id string) { t.Stop(id) }

// Sweep stops the tails that lapsed. The node calls it periodically;
// reads and starts find lapsed tails without it.
func (t *Tails) Sweep() {
	if t == nil {
		return
	}
	now := t.now()
	t.mu.Lock()
	t.sweepLocked(now)
	t.mu.Unlock()
}

func (t *Tails) sweepLocked(now time.Time) {
	for id, tl := range t.tails {
		if tl.lapsed(now) {
			t.removeLocked(id, tl)
		}
	}
}

func (t *Tails) removeLocked(id string, tl *tail) {
	tl.conn.SetTap(nil)
	delete(t.tails, id)
}

// tail is one connection's tail: a ring of its last TailSize messages.
type tail struct {
	conn hub.Tappable
	now  func() time.Time
	// until is when, in Unix nanoseconds, the tail lapses.
	until atomic.Int64

	// mu guards the ring: items holds the messages, item seq at
	// items[(seq-1)%TailSize]; seq is the last seq given.
	mu    sync.Mutex
	items [TailSize]TailItem
	seq   uint64
}

var _ hub.Tap = (*tail)(nil)

func (tl *tail) lapsed(now time.Time) bool { return now.UnixNano() >= tl.until.Load() }

// Message implements hub.Tap: it records a redacted, cut copy of data.
func (tl *tail) Message(out bool, data []byte, binary bool) {
	item := TailItem{Out: out, Bytes: len(data), Binary: binary, Time: tl.now()}
	if binary {
		red := redact.Text(data)
		if len(red) > binaryDataBytes {
			red, item.Truncated = red[:binaryDataBytes], true
		}
		item.Data = base64.StdEncoding.EncodeToString(red)
	} else {
		red := redact.Message(data)
		if len(red) > TailDataBytes {
			k := TailDataBytes
			for k > 0 && !utf8.RuneStart(red[k]) {
				k--
			}
			red, item.Truncated = red[:k], true
		}
		item.Data = string(red)
	}
	tl.mu.Lock()
	tl.seq++
	item.Seq = tl.seq
	tl.items[(tl.seq-1)%TailSize] = item
	tl.mu.Unlock()
}

func (tl *tail) read(after uint64) TailPage {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	page := TailPage{Next: after}
	if after >= tl.seq {
		return page
	}
	oldest := uint64(1)
	if tl.seq > TailSize {
		oldest = tl.seq - TailSize + 1
	}
	from := after + 1
	if from < oldest {
		page.Dropped = oldest - from
		from = oldest
	}
	page.Items = make([]TailItem, 0, tl.seq-from+1)
	for s := from; s <= tl.seq; s++ {
		page.Items = append(page.Items, tl.items[(s-1)%TailSize])
	}
	page.Next = tl.seq
	return page
}
