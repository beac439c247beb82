package wsproto

import (
	"encoding/binary"
	"unicode/utf8"
)

// Handler receives what a [Parser] decodes, in wire order. A payload is
// valid only for the duration of the call because the parser reuses its
// buffers; a handler copies what it keeps. An empty payload may be nil.
// A non-nil error returned by a handler stops [Parser.Feed], which returns
// it, and the parser then fails every later Feed with the same error.
// Handlers must not call Feed on the parser that called them.
type Handler interface {
	// OnMessage receives a complete, reassembled text or binary message.
	// A text message has already been validated as UTF-8.
	OnMessage(op Opcode, payload []byte) error
	// OnPing receives the payload of a ping; answering it is up to the
	// caller.
	OnPing(payload []byte) error
	// OnPong receives the payload of a pong, solicited or not.
	OnPong(payload []byte) error
	// OnClose receives the peer's close frame. code is [CloseNoStatus]
	// when the frame had no payload; otherwise it is a code that is valid
	// on the wire and reason is valid UTF-8. The parser ignores all input
	// after a close frame.
	OnClose(code int, reason string) error
}

type parserState uint8

const (
	stateHeader      parserState = iota // reading a frame header
	statePayload                        // reading the payload of the current frame
	stateClosed                         // reading nothing more: see Closed
	stateSkipHeader                     // after an error: reading a frame header
	stateSkipPayload                    // after an error: skipping remain bytes of payload and masking key
)

// maxHeader is the longest frame header: 2 bytes, a 64-bit length and a
// 4-byte masking key.
const maxHeader = 2 + 8 + 4

// Parser decodes client-to-server frames, which RFC 6455 requires to be
// masked. Bytes may arrive in chunks of any size; the parser resumes where
// the previous chunk ended. Create one with [NewParser]; the zero value is
// not usable.
// A Parser is not safe for concurrent use.
//
// A parser with no partial frame or message pending holds no buffers: the
// payload buffer of a message or control frame is taken from a shared pool
// when its first byte arrives and returned once the handler has seen it.
type Parser struct {
	limits Limits
	err    error // the first error; once set, the parser only skips (see Feed)
	state  parserState
	// skipChecked: the header read in stateSkipHeader is the one that
	// broke the stream, already judged.
	skipChecked bool

	// The header of the current frame, as far as it has arrived.
	hdr  [maxHeader]byte
	hdrN uint8

	// The frame being read.
	op     Opcode
	fin    bool
	keyPos uint8
	key    [4]byte
	remain uint64

	// The data message being read. msgOp is zero between messages; msgLen
	// is the sum of declared frame lengths, tracked only under a message
	// limit.
	msgOp  Opcode
	msgLen uint64
	msg    *[]byte
	utf8   utf8Validator

	// The payload of the control frame being read.
	ctl *[]byte
}

// NewParser returns a parser that enforces l.
func NewParser(l Limits) *Parser {
	return &Parser{limits: l}
}

// Feed consumes data, calling h for every message and control frame that
// completes. It returns nil when data has been consumed and more input is
// expected, a [*CloseError] when the stream breaks the protocol or the
// limits, or the first error a handler returned. After a close frame, the
// rest of data and all later input are ignored and Feed returns nil. Feed
// does not modify or retain data.
//
// After an error every later call returns the same error and no handler is
// called again, but the parser reads on for the closing handshake (RFC 6455
// section 7), in which the peer answers the close frame the error calls for
// with its own: it skips the rest of the frame that broke the stream, as
// far as that frame's header tells, then follows the frames after it by
// their headers, discarding payloads, until a close frame arrives, and
// [Parser.Closed] reports true. A header that breaks the frame rules again
// (reserved bits or opcode, no mask, a fragmented or oversized control
// frame, a length with the top bit set) ends the wait as well, since frames
// can no longer be told apart; so does an error in a close frame, which the
// peer sent as its side of the handshake.
func (p *Parser) Feed(data []byte, h Handler) error {
	if p.err != nil {
		p.skip(data)
		return p.err
	}
	for {
		switch p.state {
		case stateClosed:
			return nil
		case stateHeader:
			if len(data) == 0 {
				return nil
			}
			n, err := p.readHeader(data)
			data = data[n:]
			if err != nil {
				return p.fail(err, data)
			}
			if p.state == stateHeader {
				return nil
			}
		case statePayload:
			if p.remain > 0 {
				if len(data) == 0 {
					return nil
				}
				n := len(data)
				if uint64(n) > p.remain {
					n = int(p.remain)
				}
				chunk := data[:n]
				data = data[n:]
				p.remain -= uint64(n)
				if err := p.readPayload(chunk); err != nil {
					return p.fail(err, data)
				}
				if p.remain > 0 {
					return nil
				}
			}
			if err := p.endFrame(h); err != nil {
				return p.fail(err, data)
			}
		}
	}
}

// Closed reports whether the parser reads no more input: the peer's close
// frame has arrived (delivered, or skipped after an error), or after an
// error the stream could no longer be followed (see [Parser.Feed]).
func (p *Parser) Closed() bool { return p.state == stateClosed }

// Buffered returns the number of bytes the parser holds for a partial
// frame header, control frame or message. It is zero between messages.
func (p *Parser) Buffered() int {
	n := int(p.hdrN)
	if p.msg != nil {
		n += len(*p.msg)
	}
	if p.ctl != nil {
		n += len(*p.ctl)
	}
	return n
}

// fail records err, releases the parser's buffers and skips rest, the
// input after the point where err arose, for the closing handshake.
func (p *Parser) fail(err error, rest []byte) error {
	p.err = err
	p.msgOp, p.msgLen = 0, 0
	p.releaseMsg()
	p.releaseCtl()
	switch {
	case p.state == statePayload:
		// Inside a frame: the rest of its payload comes first.
		p.state = stateSkipPayload
	case p.hdrN > 0:
		// Inside a header, whose first two bytes have arrived.
		p.state, p.skipChecked = stateSkipHeader, true
		p.skipStart()
	case p.op == OpClose:
		// A close frame that broke the rules is still the peer's close.
		p.state = stateClosed
	default:
		p.state = stateSkipHeader
	}
	p.skip(rest)
	return err
}

// skip follows data after an error, frame by frame, until a close frame or
// a header that breaks the frame rules closes the parser.
func (p *Parser) skip(data []byte) {
	for {
		switch p.state {
		case stateSkipHeader:
			data = data[p.skipHeader(data):]
			if p.state == stateSkipHeader {
				return
			}
		case stateSkipPayload:
			n := min(uint64(len(data)), p.remain)
			data = data[n:]
			if p.remain -= n; p.remain > 0 {
				return
			}
			p.state = stateSkipHeader
		default:
			return
		}
	}
}

// skipHeader reads header bytes from data after an error and returns how
// many it used. A complete header leaves the parser skipping the frame's
// masking key and payload.
func (p *Parser) skipHeader(data []byte) int {
	n := 0
	if p.hdrN < 2 {
		n = copy(p.hdr[p.hdrN:2], data)
		p.hdrN += uint8(n)
		if p.hdrN < 2 {
			return n
		}
		p.skipStart()
		if p.state == stateClosed {
			return n
		}
	}
	end := lengthEnd(p.hdr[1])
	k := copy(p.hdr[p.hdrN:end], data[n:])
	p.hdrN += uint8(k)
	n += k
	if int(p.hdrN) < end {
		return n
	}
	length := payloadLength(&p.hdr)
	p.hdrN, p.skipChecked = 0, false
	if length>>63 != 0 {
		p.state = stateClosed
		return n
	}
	if p.hdr[1]&0x80 != 0 {
		length += 4
	}
	p.remain = length
	p.state = stateSkipPayload
	return n
}

// skipStart judges the first two bytes of a header read after an error:
// a close frame, or a header that breaks the frame rules, closes the
// parser.
func (p *Parser) skipStart() {
	b0, b1 := p.hdr[0], p.hdr[1]
	if Opcode(b0&0x0f) == OpClose || !p.skipChecked && checkFrame(b0, b1) != nil {
		p.state = stateClosed
		p.hdrN = 0
	}
}

func (p *Parser) releaseMsg() {
	if p.msg != nil {
		putBuf(p.msg)
		p.msg = nil
	}
}

func (p *Parser) releaseCtl() {
	if p.ctl != nil {
		putBuf(p.ctl)
		p.ctl = nil
	}
}

// readHeader copies header bytes from data and returns how many it used.
// Each part of the header is checked as soon as it is complete: the first
// two bytes by checkStart, the payload length by checkLength (before the
// masking key arrives) and the whole header by startPayload.
func (p *Parser) readHeader(data []byte) (int, error) {
	n := 0
	if p.hdrN < 2 {
		n = copy(p.hdr[p.hdrN:2], data)
		p.hdrN += uint8(n)
		if p.hdrN < 2 {
			return n, nil
		}
		if err := p.checkStart(); err != nil {
			return n, err
		}
		if lengthEnd(p.hdr[1]) == 2 {
			if err := p.checkLength(); err != nil {
				return n, err
			}
		}
	}
	end := lengthEnd(p.hdr[1])
	if int(p.hdrN) < end {
		k := copy(p.hdr[p.hdrN:end], data[n:])
		p.hdrN += uint8(k)
		n += k
		if int(p.hdrN) < end {
			return n, nil
		}
		if err := p.checkLength(); err != nil {
			return n, err
		}
	}
	end += 4
	k := copy(p.hdr[p.hdrN:end], data[n:])
	p.hdrN += uint8(k)
	n += k
	if int(p.hdrN) < end {
		return n, nil
	}
	p.startPayload()
	return n, nil
}

// lengthEnd returns the offset in the header where the payload length
// ends, and the masking key begins, from the header's second byte.
func lengthEnd(b1 byte) int {
	switch b1 & 0x7f {
	case 126:
		return 2 + 2
	case 127:
		return 2 + 8
	}
	return 2
}

// checkFrame validates what the first two bytes of any client frame's
// header must obey on their own: no reserved bits, a defined opcode, the
// mask bit, and control frames unfragmented with at most 125 bytes.
func checkFrame(b0, b1 byte) error {
	if b0&0x70 != 0 {
		return &CloseError{CloseProtocolError, "reserved bits set without a negotiated extension"}
	}
	op := Opcode(b0 & 0x0f)
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return &CloseError{CloseProtocolError, "reserved opcode"}
	}
	if b1&0x80 == 0 {
		return &CloseError{CloseProtocolError, "unmasked client frame"}
	}
	if op.IsControl() {
		if b0&0x80 == 0 {
			return &CloseError{CloseProtocolError, "fragmented control frame"}
		}
		if b1&0x7f > MaxControlPayload {
			return &CloseError{CloseProtocolError, "control frame payload over 125 bytes"}
		}
	}
	return nil
}

// checkStart validates the first two header bytes: checkFrame, then the
// order of data frames and RejectBinary.
func (p *Parser) checkStart() error {
	b0, b1 := p.hdr[0], p.hdr[1]
	if err := checkFrame(b0, b1); err != nil {
		return err
	}
	op := Opcode(b0 & 0x0f)
	fin := b0&0x80 != 0
	switch {
	case op.IsControl():
	case op == OpContinuation:
		if p.msgOp == 0 {
			return &CloseError{CloseProtocolError, "continuation frame without a message to continue"}
		}
	default:
		if p.msgOp != 0 {
			return &CloseError{CloseProtocolError, "new data frame before the fragmented message ended"}
		}
		if op == OpBinary && p.limits.RejectBinary {
			return &CloseError{CloseUnsupportedData, "binary messages are not accepted"}
		}
	}
	p.op, p.fin = op, fin
	return nil
}

// checkLength reads the payload length and checks it against the
// protocol and the limits.
func (p *Parser) checkLength() error {
	length := payloadLength(&p.hdr)
	if length>>63 != 0 {
		return &CloseError{CloseProtocolError, "frame length has the most significant bit set"}
	}
	if !p.op.IsControl() {
		if maxFrame := p.limits.MaxFrameBytes; maxFrame > 0 && length > uint64(maxFrame) {
			return &CloseError{CloseTooBig, "frame too big"}
		}
		if maxMsg := p.limits.MaxMessageBytes; maxMsg > 0 {
			if length > uint64(maxMsg)-p.msgLen {
				return &CloseError{CloseTooBig, "message too big"}
			}
			p.msgLen += length
		}
	}
	p.remain = length
	return nil
}

// payloadLength decodes the payload length of a header whose length bytes
// have arrived.
func payloadLength(hdr *[maxHeader]byte) uint64 {
	switch l7 := hdr[1] & 0x7f; l7 {
	case 126:
		return uint64(binary.BigEndian.Uint16(hdr[2:]))
	case 127:
		return binary.BigEndian.Uint64(hdr[2:])
	default:
		return uint64(l7)
	}
}

// startPayload takes the masking key from a complete header and prepares
// to read the payload.
func (p *Parser) startPayload() {
	if p.op.IsControl() {
		if p.remain > 0 {
			p.ctl = getBuf(int(p.remain))
		}
	} else if p.op != OpContinuation {
		p.msgOp = p.op
		p.utf8.reset()
	}
	end := int(p.hdrN)
	copy(p.key[:], p.hdr[end-4:end])
	p.keyPos = 0
	p.hdrN = 0
	p.state = statePayload
}

// readPayload unmasks chunk, which lies within the current frame, into the
// control or message buffer, and validates text as it arrives.
func (p *Parser) readPayload(chunk []byte) error {
	if p.op.IsControl() {
		b := *p.ctl
		start := len(b)
		b = append(b, chunk...)
		p.keyPos = uint8(maskBytes(p.key, int(p.keyPos), b[start:]))
		*p.ctl = b
		return nil
	}
	p.growMsg(len(chunk))
	b := *p.msg
	start := len(b)
	b = append(b, chunk...)
	p.keyPos = uint8(maskBytes(p.key, int(p.keyPos), b[start:]))
	*p.msg = b
	if p.msgOp == OpText && !p.utf8.feed(b[start:]) {
		return &CloseError{CloseInvalidPayload, "invalid utf-8 in text message"}
	}
	return nil
}

// growMsg makes room for n more message bytes. Capacity at least doubles
// when it grows, and it grows only as bytes arrive, never on a declared
// length alone.
func (p *Parser) growMsg(n int) {
	if p.msg == nil {
		p.msg = getBuf(n)
		return
	}
	b := *p.msg
	if len(b)+n <= cap(b) {
		return
	}
	nb := getBuf(max(len(b)+n, 2*cap(b)))
	*nb = append(*nb, b...)
	putBuf(p.msg)
	p.msg = nb
}

// endFrame delivers a complete control frame, or a message when its final
// frame is complete, and releases the buffer it used.
func (p *Parser) endFrame(h Handler) error {
	p.state = stateHeader
	if p.op.IsControl() {
		var payload []byte
		if p.ctl != nil {
			payload = *p.ctl
		}
		var err error
		switch p.op {
		case OpPing:
			err = h.OnPing(payload)
		case OpPong:
			err = h.OnPong(payload)
		case OpClose:
			err = p.endClose(payload, h)
		}
		p.releaseCtl()
		return err
	}
	if !p.fin {
		return nil
	}
	op := p.msgOp
	if op == OpText && !p.utf8.complete() {
		return &CloseError{CloseInvalidPayload, "invalid utf-8 in text message"}
	}
	var payload []byte
	if p.msg != nil {
		payload = *p.msg
	}
	p.msgOp = 0
	p.msgLen = 0
	err := h.OnMessage(op, payload)
	p.releaseMsg()
	return err
}

// endClose validates a close frame's payload, stops the parser and
// delivers the frame.
func (p *Parser) endClose(payload []byte, h Handler) error {
	code, reason := CloseNoStatus, ""
	switch {
	case len(payload) == 1:
		return &CloseError{CloseProtocolError, "close frame payload of 1 byte"}
	case len(payload) >= 2:
		code = int(binary.BigEndian.Uint16(payload))
		if !validCloseCode(code) {
			return &CloseError{CloseProtocolError, "invalid close code"}
		}
		r := payload[2:]
		if !utf8.Valid(r) {
			return &CloseError{CloseInvalidPayload, "invalid utf-8 in close reason"}
		}
		reason = string(r)
	}
	p.state = stateClosed
	p.msgOp = 0
	p.msgLen = 0
	p.releaseMsg()
	return h.OnClose(code, reason)
}
