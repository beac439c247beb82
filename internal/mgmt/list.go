package mgmt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/wsgate/wsgate/internal/registry"
)

const (
	// DefaultMaxResults is the page size of GET /@connections and GET
	// /@topics without maxResults.
	DefaultMaxResults = 100
	// MaxMaxResults is the largest page GET /@connections and GET /@topics
	// serve.
	MaxMaxResults = 1000
)

// listParams are the query parameters of GET /@connections.
var listParams = []string{"principal", "topic", "node", "maxResults", "limit", "nextToken"}

// listToken is what a nextToken holds: the registry's cursor and the
// filters it was made for, which the next page must repeat.
type listToken struct {
	Cursor    string `json:"c"`
	Principal string `json:"p,omitempty"`
	Topic     string `json:"t,omitempty"`
	Node      string `json:"n,omitempty"`
}

// checkParams refuses a query parameter that is not one of known, and one
// given more than once. call names the call and takes says, in prose,
// which parameters it takes.
func checkParams(q url.Values, known []string, call, takes string) error {
	for k, v := range q {
		if !slices.Contains(known, k) {
			return badRequest("unknown query parameter %q; %s takes %s", k, call, takes)
		}
		if len(v) > 1 {
			return badRequest("query parameter %q is given %d times; give it once", k, len(v))
		}
	}
	return nil
}

// pageSize reads the page size parameter p, when q has it.
func pageSize(q url.Values, p string, size *int) error {
	if !q.Has(p) {
		return nil
	}
	n, err := strconv.Atoi(q.Get(p))
	if err != nil || n < 1 || n > MaxMaxResults {
		return badRequest("%s must be a whole number from 1 to %d, got %q", p, MaxMaxResults, q.Get(p))
	}
	*size = n
	return nil
}

// decodeToken decodes a nextToken into v: the base64url (unpadded)
// encoding of its JSON.
func decodeToken(token string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// encodeToken is the nextToken that holds v.
func encodeToken(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// listQuery reads GET /@connections's query string. Every parameter is
// optional and may appear once; any other is refused.
func listQuery(q url.Values) (registry.ListQuery, error) {
	if err := checkParams(q, listParams, "GET /@connections", "principal, topic, node, maxResults and nextToken"); err != nil {
		return registry.ListQuery{}, err
	}
	lq := registry.ListQuery{PrincipalID: q.Get("principal"), Topic: q.Get("topic"), NodeID: q.Get("node"), Limit: DefaultMaxResults}
	for _, p := range []string{"principal", "topic", "node"} {
		if q.Has(p) && q.Get(p) == "" {
			return registry.ListQuery{}, badRequest("%s is empty; leave it out to list connections of any %s", p, p)
		}
	}
	if lq.Topic != "" {
		if err := checkTopic(lq.Topic); err != nil {
			return registry.ListQuery{}, err
		}
	}
	if q.Has("maxResults") && q.Has("limit") {
		return registry.ListQuery{}, badRequest("give maxResults or its alias limit, not both")
	}
	for _, p := range []string{"maxResults", "limit"} {
		if err := pageSize(q, p, &lq.Limit); err != nil {
			return registry.ListQuery{}, err
		}
	}
	if q.Has("nextToken") {
		var tok listToken
		if decodeToken(q.Get("nextToken"), &tok) != nil || tok.Cursor == "" {
			return registry.ListQuery{}, errBadNextToken
		}
		if tok.Principal != lq.PrincipalID || tok.Topic != lq.Topic || tok.Node != lq.NodeID {
			return registry.ListQuery{}, badRequest("nextToken was returned for other filters; repeat the principal, topic and node of the call that returned it")
		}
		lq.Cursor = tok.Cursor
	}
	return lq, nil
}

var errBadNextToken = badRequest("nextToken is not one that GET /@connections returned")

// nextToken returns the nextToken that continues q's listing at cursor.
func nextToken(q registry.ListQuery, cursor string) string {
	return encodeToken(listToken{Cursor: cursor, Principal: q.PrincipalID, Topic: q.Topic, Node: q.NodeID})
}

// listedConnection is one item of GET /@connections: GetConnection's
// fields and the connection's id, principal, authorizer output, node and
// topics.
type listedConnection struct {
	ConnectionID string         `json:"connectionId"`
	ConnectedAt  string         `json:"connectedAt"`
	LastActiveAt string         `json:"lastActiveAt,omitempty"`
	Identity     identity       `json:"identity"`
	PrincipalID  string         `json:"principalId,omitempty"`
	Authorizer   map[string]any `json:"authorizer,omitempty"`
	NodeID       string         `json:"nodeId"`
	Topics       []string       `json:"topics"`
}

// listConnections answers GET /@connections: a page of the cluster's
// connections, in the registry's order, with the nextToken of the next
// page when there is one.
func (s *Server) listConnections(w http.ResponseWriter, r *http.Request) error {
	q, err := listQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, next, err := s.conns.ListConnections(r.Context(), q)
	if errors.Is(err, registry.ErrBadCursor) {
		return errBadNextToken
	}
	if err != nil {
		return err
	}
	items := make([]listedConnection, 0, len(page))
	for _, c := range page {
		item := listedConnection{
			ConnectionID: c.ConnectionID,
			ConnectedAt:  isoTime(c.ConnectedAt),
			Identity:     identity{c.SourceIP, c.UserAgent},
			PrincipalID:  c.PrincipalID,
			Authorizer:   c.Authorizer,
			NodeID:       c.NodeID,
			Topics:       c.Topics,
		}
		if !c.LastActiveAt.IsZero() {
			item.LastActiveAt = isoTime(c.LastActiveAt)
		}
		if item.Topics == nil {
			item.Topics = []string{}
		}
		items = append(items, item)
	}
	out := struct {
		Items     []listedConnection `json:"items"`
		NextToken string             `json:"nextToken,omitempty"`
	}{Items: items}
	if next != "" {
		out.NextToken = nextToken(q, next)
	}
	return writeJSON(w, out)
}
