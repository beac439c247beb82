package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/topic"
)

// closeUserLimit is the close code of a connection closed because its user
// opened too many (policy close_oldest).
const (
	closeUserLimit       = 4008
	closeUserLimitReason = "too many connections for this user"
)

// principalVar is replaced by the connection's principal in a topic pattern.
const principalVar = "{principalId}"

// topicAllowed reports whether any of patterns lets the connection of
// principal subscribe itself to topic.
func topicAllowed(patterns []string, topic, principal string) bool {
	for _, p := range patterns {
		if matchTopic(p, topic, principal) {
			return true
		}
	}
	return false
}

// matchTopic reports whether topic matches pattern. In a pattern, "*"
// matches one or more characters other than "/", so it stays within one
// segment; a trailing "/*" matches "/" and any non-empty rest, which may span
// segments; "{principalId}" matches principal literally, and never when
// principal is empty. Every other character matches itself. No pattern, not
// even an empty one, matches the empty topic, which is no topic.
func matchTopic(pattern, topic, principal string) bool {
	if topic == "" {
		return false
	}
	atoms, ok := compileTopic(pattern, principal)
	if !ok {
		return false
	}
	// memo[i*(len(topic)+1)+j] records a failed attempt to match atoms[i:]
	// against topic[j:], which keeps stars polynomial.
	m := topicMatcher{atoms: atoms, topic: topic, failed: make([]bool, (len(atoms)+1)*(len(topic)+1))}
	return m.match(0, 0)
}

type atomKind uint8

const (
	atomLiteral atomKind = iota
	atomStar             // one or more characters other than "/"
	atomRest             // one or more characters, the pattern's end
)

type topicAtom struct {
	kind atomKind
	lit  string
}

// compileTopic splits pattern into atoms with principal substituted. It
// reports false when the pattern needs a principal and there is none.
func compileTopic(pattern, principal string) ([]topicAtom, bool) {
	var atoms []topicAtom
	body, rest := pattern, false
	if strings.HasSuffix(pattern, "/*") {
		body, rest = pattern[:len(pattern)-1], true
	}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			atoms = append(atoms, topicAtom{kind: atomLiteral, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(body); {
		switch {
		case body[i] == '*':
			flush()
			atoms = append(atoms, topicAtom{kind: atomStar})
			i++
		case strings.HasPrefix(body[i:], principalVar):
			if principal == "" {
				return nil, false
			}
			lit.WriteString(principal)
			i += len(principalVar)
		default:
			lit.WriteByte(body[i])
			i++
		}
	}
	flush()
	if rest {
		atoms = append(atoms, topicAtom{kind: atomRest})
	}
	return atoms, true
}

type topicMatcher struct {
	atoms  []topicAtom
	topic  string
	failed []bool
}

func (m *topicMatcher) match(i, j int) bool {
	if i == len(m.atoms) {
		return j == len(m.topic)
	}
	k := i*(len(m.topic)+1) + j
	if m.failed[k] {
		return false
	}
	ok := false
	switch a := m.atoms[i]; a.kind {
	case atomLiteral:
		ok = strings.HasPrefix(m.topic[j:], a.lit) && m.match(i+1, j+len(a.lit))
	case atomStar:
		for e := j + 1; e <= len(m.topic) && m.topic[e-1] != '/'; e++ {
			if m.match(i+1, e) {
				ok = true
				break
			}
		}
	case atomRest:
		ok = j < len(m.topic)
	}
	if !ok {
		m.failed[k] = true
	}
	return ok
}

// builtin performs a route the gateway handles itself: subscribe or
// unsubscribe the sender to the message's "topic". A topic that is missing,
// malformed (topic.Check) or not allowed by topics.allow gets AWS's
// Forbidden frame; a subscription over
// limits.max_subscriptions_per_connection gets the subscription limit
// frame.
func (h *handler) builtin(ctx context.Context, gen *generation, c *edge.Conn, sess *session, rt *Route, data []byte, el *eventLog) {
	g := h.g
	requestID := el.id()
	var body struct {
		Topic string `json:"topic"`
	}
	if err := json.Unmarshal(data, &body); err != nil || topic.Check(body.Topic) != nil {
		g.log.Info("topic request refused", "connectionId", c.ID(), "builtin", rt.Builtin, "reason", "missing or malformed topic")
		el.answer(http.StatusForbidden, "Forbidden")
		_ = c.Reply(awsevent.ForbiddenFrame(c.ID(), requestID))
		return
	}
	if !topicAllowed(gen.cfg.Topics.Allow, body.Topic, sess.principal) {
		g.log.Info("topic request refused", "connectionId", c.ID(), "builtin", rt.Builtin, "topic", body.Topic, "reason", "no topics.allow pattern matches")
		el.answer(http.StatusForbidden, "Forbidden")
		_ = c.Reply(awsevent.ForbiddenFrame(c.ID(), requestID))
		return
	}
	var err error
	status := "subscribed"
	switch rt.Builtin {
	case config.BuiltinSubscribe:
		err = g.node.Subscribe(ctx, c.ID(), body.Topic)
	case config.BuiltinUnsubscribe:
		err = g.node.Unsubscribe(ctx, c.ID(), body.Topic)
		status = "unsubscribed"
	default:
		g.log.Error("unknown built-in route", "connectionId", c.ID(), "builtin", rt.Builtin)
		el.answer(http.StatusForbidden, "Forbidden")
		_ = c.Reply(awsevent.ForbiddenFrame(c.ID(), requestID))
		return
	}
	if errors.Is(err, cluster.ErrSubscriptionLimit) {
		g.log.Info("topic request refused", "connectionId", c.ID(), "builtin", rt.Builtin, "topic", body.Topic, "reason", "at limits.max_subscriptions_per_connection")
		el.answer(http.StatusForbidden, "Subscription limit exceeded")
		_ = c.Reply(awsevent.SubscriptionLimitFrame(c.ID(), requestID))
		return
	}
	if err != nil {
		g.log.Warn("topic request failed", "connectionId", c.ID(), "requestId", requestID, "builtin", rt.Builtin, "topic", body.Topic, "err", err)
		el.answer(http.StatusInternalServerError, "Internal server error")
		_ = c.Reply(awsevent.InternalErrorFrame(c.ID(), requestID))
		return
	}
	reply, _ := json.Marshal(struct {
		Action string `json:"action"`
		Topic  string `json:"topic"`
		Status string `json:"status"`
	}{string(rt.Builtin), body.Topic, status})
	_ = c.Reply(reply)
}

// allowMessage takes a token from the connection's message bucket, creating
// it on the first message so that idle connections carry none, and giving
// it the rate and burst of l when a reload changed them. Message calls of
// one connection are sequential, so this needs no lock.
func (s *session) allowMessage(l config.RateLimit) bool {
	if !l.Enabled() {
		return true
	}
	if s.limiter == nil {
		s.limiter = rate.NewLimiter(rate.Limit(l.Rate), l.Burst)
	} else if s.limiter.Limit() != rate.Limit(l.Rate) || s.limiter.Burst() != l.Burst {
		s.limiter.SetLimit(rate.Limit(l.Rate))
		s.limiter.SetBurst(l.Burst)
	}
	return s.limiter.Allow()
}

// userSlot is a handshake's reservation of one of its user's connection
// slots (limits.max_connections_per_user with refuse_newest).
type userSlot struct {
	principal string
	// taken is when the reservation was made or renewed, by this process's
	// clock: only its age matters.
	taken time.Time
}

// userLimited reports whether limits.max_connections_per_user applies to
// principal's connections; anonymous ones are not counted.
func (h *handler) userLimited(principal string) bool {
	return principal != "" && h.g.conf().Limits.MaxConnectionsPerUser > 0
}

// closesOldest reports whether principal's connections are limited with
// user_limit_policy close_oldest; otherwise a limit refuses the newest.
func (h *handler) closesOldest(principal string) bool {
	return h.userLimited(principal) && h.g.conf().Limits.UserLimitPolicy == config.CloseOldest
}

// reserveUserSlot takes a slot of principal for c, cluster-wide and
// atomically, when limits.max_connections_per_user applies with
// refuse_newest: a user whose slots are all held by connections or by
// handshakes in progress gets 429. It runs after authentication and before
// the $connect integration, so a refused client never reaches the backend.
// It returns nil, without reaching the engine, when no limit applies.
func (h *handler) reserveUserSlot(ctx context.Context, c *edge.Conn, principal string) (*userSlot, error) {
	if !h.userLimited(principal) || h.closesOldest(principal) {
		return nil, nil
	}
	slot := &userSlot{principal: principal}
	if rej := h.takeUserSlot(ctx, c, slot); rej != nil {
		return nil, rej
	}
	return slot, nil
}

// keepUserSlot renews slot when it could expire before the connection is
// registered: only a handshake stalled for about the reservation's whole
// lifetime needs it. A user whose slots were taken meanwhile gets 429.
func (h *handler) keepUserSlot(ctx context.Context, c *edge.Conn, slot *userSlot) *edge.RejectError {
	if slot == nil || time.Since(slot.taken) < h.g.userSlotTTL()-h.g.cfg.Registry.Timeout {
		return nil
	}
	return h.takeUserSlot(ctx, c, slot)
}

// takeUserSlot reserves slot for c, or renews it, and notes when.
func (h *handler) takeUserSlot(ctx context.Context, c *edge.Conn, slot *userSlot) *edge.RejectError {
	g := h.g
	slot.taken = time.Now()
	ok, err := g.node.ReserveUserSlot(ctx, slot.principal, c.ID(), g.conf().Limits.MaxConnectionsPerUser, g.userSlotTTL())
	if err != nil {
		g.log.Error("registry unavailable at connect", "connectionId", c.ID(), "err", err)
		return &edge.RejectError{Status: http.StatusServiceUnavailable, Message: "Service Unavailable", Reason: "registry unavailable"}
	}
	if !ok {
		g.log.Info("connection refused", "connectionId", c.ID(), "status", http.StatusTooManyRequests, "reason", "user at max_connections_per_user")
		return &edge.RejectError{Status: http.StatusTooManyRequests, Message: "Too Many Requests", Reason: "user at limits.max_connections_per_user"}
	}
	return nil
}

// releaseUserSlot gives slot back. It runs when the handshake ends, even
// when the client has gone; a release that fails leaves the reservation to
// expire.
func (h *handler) releaseUserSlot(ctx context.Context, c *edge.Conn, slot *userSlot) {
	g := h.g
	if err := g.node.ReleaseUserSlot(context.WithoutCancel(ctx), slot.principal, c.ID()); err != nil {
		g.log.Warn("could not release a connection's reservation of a user slot; it expires by itself", "connectionId", c.ID(), "ttl", g.userSlotTTL(), "err", err)
	}
}

// openingConn is a connection whose handshake is completing, as the
// cluster node's Close sees it: it closes the connection as soon as the
// connection is open.
type openingConn struct {
	*edge.Conn
	sess *session
}

func (o openingConn) Close(code int, reason string) {
	o.sess.evicted.Store(true)
	o.Conn.CloseAt(time.Now(), code, reason)
}

// closeOverUserLimit closes principal's oldest connections beyond
// limits.max_connections_per_user with 4008 when the policy is
// close_oldest. It runs once the new connection is registered. Every
// handshake closes the connections beyond the limit in the registry's
// order, this one too when newer ones got in first, and can close those
// still completing their handshake (Node.Opening): so handshakes of one
// user that race each other all close the same ones and leave exactly the
// newest.
func (h *handler) closeOverUserLimit(ctx context.Context, c *edge.Conn, principal string) {
	g := h.g
	if !h.closesOldest(principal) {
		return
	}
	recs, err := g.node.UserConnections(ctx, principal)
	if err != nil {
		g.log.Error("registry unavailable enforcing max_connections_per_user", "connectionId", c.ID(), "err", err)
		return
	}
	for _, rec := range recs[:max(len(recs)-g.conf().Limits.MaxConnectionsPerUser, 0)] {
		g.log.Info("closing oldest connection of user over max_connections_per_user", "connectionId", rec.ConnectionID, "nodeId", rec.NodeID, "newConnectionId", c.ID())
		if err := g.node.Close(ctx, rec.ConnectionID, closeUserLimit, closeUserLimitReason); err != nil && !errors.Is(err, cluster.ErrGone) {
			g.log.Warn("could not close the oldest connection of user over max_connections_per_user", "connectionId", rec.ConnectionID, "nodeId", rec.NodeID, "err", err)
		}
	}
}
