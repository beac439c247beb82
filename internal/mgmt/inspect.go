package mgmt

import (
	"errors"
	"net/http"
	"net/url"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/topic"
)

// listedNode is one item of GET /@nodes. The counters and startedAt are
// absent for a node that did not answer, heartbeatAgeMs when the age is
// unknown.
type listedNode struct {
	NodeID           string  `json:"nodeId"`
	Self             bool    `json:"self"`
	Reachable        bool    `json:"reachable"`
	HeartbeatAgeMs   *int64  `json:"heartbeatAgeMs,omitempty"`
	Connections      *int    `json:"connections,omitempty"`
	Subscriptions    *int    `json:"subscriptions,omitempty"`
	MessagesReceived *uint64 `json:"messagesReceived,omitempty"`
	MessagesSent     *uint64 `json:"messagesSent,omitempty"`
	StartedAt        string  `json:"startedAt,omitempty"`
}

// listNodes answers GET /@nodes: every node of the cluster, sorted by id,
// with its counters, as of the time in "at".
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r.URL.Query(), nil, "GET /@nodes", "none"); err != nil {
		return err
	}
	at := time.Now()
	nodes, err := s.conns.Nodes(r.Context())
	if err != nil {
		return err
	}
	items := make([]listedNode, 0, len(nodes))
	for _, n := range nodes {
		item := listedNode{NodeID: n.NodeID, Self: n.Self, Reachable: n.Reachable}
		if n.HeartbeatAge >= 0 {
			ms := n.HeartbeatAge.Milliseconds()
			item.HeartbeatAgeMs = &ms
		}
		if n.Reachable {
			st := n.NodeStats
			item.Connections, item.Subscriptions = &st.Connections, &st.Subscriptions
			item.MessagesReceived, item.MessagesSent = &st.MessagesReceived, &st.MessagesSent
			if !st.StartedAt.IsZero() {
				item.StartedAt = isoTime(st.StartedAt)
			}
		}
		items = append(items, item)
	}
	return writeJSON(w, struct {
		At    string       `json:"at"`
		Nodes []listedNode `json:"nodes"`
	}{isoTime(at), items})
}

// topicsParams are the query parameters of GET /@topics.
var topicsParams = []string{"prefix", "maxResults", "nextToken"}

// topicsToken is what a nextToken of GET /@topics holds: the last topic of
// the page it ended, and the prefix it was made for, which the next page
// must repeat.
type topicsToken struct {
	After  string `json:"a"`
	Prefix string `json:"p,omitempty"`
}

var errBadTopicsToken = badRequest("nextToken is not one that GET /@topics returned")

// topicsQuery reads GET /@topics's query string. Every parameter is
// optional and may appear once; any other is refused.
func topicsQuery(q url.Values) (cluster.TopicQuery, error) {
	if err := checkParams(q, topicsParams, "GET /@topics", "prefix, maxResults and nextToken"); err != nil {
		return cluster.TopicQuery{}, err
	}
	tq := cluster.TopicQuery{Prefix: q.Get("prefix"), Limit: DefaultMaxResults}
	if q.Has("prefix") {
		if err := checkTopicPrefix(tq.Prefix); err != nil {
			return cluster.TopicQuery{}, err
		}
	}
	if err := pageSize(q, "maxResults", &tq.Limit); err != nil {
		return cluster.TopicQuery{}, err
	}
	if q.Has("nextToken") {
		var tok topicsToken
		if decodeToken(q.Get("nextToken"), &tok) != nil || topic.Check(tok.After) != nil {
			return cluster.TopicQuery{}, errBadTopicsToken
		}
		if tok.Prefix != tq.Prefix {
			return cluster.TopicQuery{}, badRequest("nextToken was returned for another prefix; repeat the prefix of the call that returned it")
		}
		tq.After = tok.After
	}
	return tq, nil
}

// checkTopicPrefix accepts what could start a topic name: 1 to
// topic.MaxBytes bytes of UTF-8 whose characters are all printable. A
// prefix no topic has lists nothing.
func checkTopicPrefix(p string) error {
	switch {
	case p == "":
		return badRequest("prefix is empty; leave it out to list topics of any name")
	case len(p) > topic.MaxBytes:
		return badRequest("prefix is %d bytes; at most %d are allowed", len(p), topic.MaxBytes)
	case !utf8.ValidString(p):
		return badRequest("prefix is not valid UTF-8")
	}
	for _, r := range p {
		if !unicode.IsPrint(r) {
			return badRequest("prefix holds the unprintable character %U", r)
		}
	}
	return nil
}

type listedTopic struct {
	Topic       string `json:"topic"`
	Subscribers int    `json:"subscribers"`
}

// listTopics answers GET /@topics: a page of the topics with at least one
// subscriber in the cluster, in byte order, with their subscribers counted
// over every node, and the nextToken of the next page when there is one.
func (s *Server) listTopics(w http.ResponseWriter, r *http.Request) error {
	q, err := topicsQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, more, err := s.conns.ListTopics(r.Context(), q)
	if err != nil {
		return err
	}
	items := make([]listedTopic, len(page))
	for i, t := range page {
		items[i] = listedTopic{t.Topic, t.Subscribers}
	}
	out := struct {
		Items     []listedTopic `json:"items"`
		NextToken string        `json:"nextToken,omitempty"`
	}{Items: items}
	if more && len(page) > 0 {
		out.NextToken = encodeToken(topicsToken{After: page[len(page)-1].Topic, Prefix: q.Prefix})
	}
	return writeJSON(w, out)
}

// unreachable is the error of a call that needed an answer from a node
// that gave none in time.
func unreachable(err error) *Error {
	var ue *cluster.UnreachableError
	if !errors.As(err, &ue) {
		return nil
	}
	return &Error{Status: http.StatusServiceUnavailable, Type: "ServiceUnavailableException",
		Message: "Node " + ue.NodeID + " did not answer within " + cluster.InspectTimeout.String() + "; the answer would be incomplete without it. Retry later"}
}
