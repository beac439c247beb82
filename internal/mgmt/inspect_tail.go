package mgmt

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/wsgate/wsgate/internal/inspect"
)

// onlyParams refuses a query with a parameter not in known, or one given
// more than once; call names the call in the message.
func onlyParams(q url.Values, call, takes string, known ...string) error {
	for k, v := range q {
		ok := false
		for _, p := range known {
			ok = ok || k == p
		}
		if !ok {
			return badRequest("unknown query parameter %q; %s takes %s", k, call, takes)
		}
		if len(v) > 1 {
			return badRequest("query parameter %q is given %d times; give it once", k, len(v))
		}
	}
	return nil
}

// logQuery reads GET /@log's query string: kind, and maxResults (default
// DefaultMaxResults).
func logQuery(q url.Values) (kind string, max int, err error) {
	if err := onlyParams(q, "GET /@log", "kind and maxResults", "kind", "maxResults"); err != nil {
		return "", 0, err
	}
	kind = q.Get("kind")
	if !q.Has("kind") {
		return "", 0, badRequest("kind is missing; give kind=authorizer or kind=refused")
	}
	if !inspect.ValidKind(kind) {
		return "", 0, badRequest("kind must be authorizer or refused, got %q", kind)
	}
	max = DefaultMaxResults
	if q.Has("maxResults") {
		n, err := strconv.Atoi(q.Get("maxResults"))
		if err != nil || n < 1 || n > MaxMaxResults {
			return "", 0, badRequest("maxResults must be a whole number from 1 to %d, got %q", MaxMaxResults, q.Get("maxResults"))
		}
		max = n
	}
	return kind, max, nil
}

// authorizerEntry is an item of GET /@log?kind=authorizer.
type authorizerEntry struct {
	Time        string  `json:"time"`
	NodeID      string  `json:"nodeId"`
	Authorizer  string  `json:"authorizer"`
	Decision    string  `json:"decision"`
	Reason      string  `json:"reason,omitempty"`
	LatencyMs   float64 `json:"latencyMs"`
	CacheHit    bool    `json:"cacheHit"`
	PrincipalID string  `json:"principalId,omitempty"`
	SourceIP    string  `json:"sourceIp"`
}

// refusedEntry is an item of GET /@log?kind=refused.
type refusedEntry struct {
	Time      string `json:"time"`
	NodeID    string `json:"nodeId"`
	Status    int    `json:"status"`
	Reason    string `json:"reason"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
	Path      string `json:"path"`
}

// getLog answers GET /@log: the cluster's most recent entries of a kind,
// newest first.
func (s *Server) getLog(w http.ResponseWriter, r *http.Request) error {
	kind, max, err := logQuery(r.URL.Query())
	if err != nil {
		return err
	}
	entries := s.conns.RecentLog(r.Context(), kind, max)
	var items any
	if kind == inspect.KindAuthorizer {
		list := make([]authorizerEntry, 0, len(entries))
		for _, e := range entries {
			list = append(list, authorizerEntry{
				Time: isoTime(e.Time), NodeID: e.NodeID, Authorizer: e.Authorizer, Decision: e.Decision,
				Reason: e.Reason, LatencyMs: float64(e.Latency.Microseconds()) / 1000, CacheHit: e.CacheHit,
				PrincipalID: e.PrincipalID, SourceIP: e.SourceIP,
			})
		}
		items = list
	} else {
		list := make([]refusedEntry, 0, len(entries))
		for _, e := range entries {
			list = append(list, refusedEntry{
				Time: isoTime(e.Time), NodeID: e.NodeID, Status: e.Status, Reason: e.Reason,
				SourceIP: e.SourceIP, UserAgent: e.UserAgent, Path: e.Path,
			})
		}
		items = list
	}
	return writeJSON(w, struct {
		Items any `json:"items"`
	}{items})
}

// startTail answers PUT /@connections/{id}/tail: 204 once the tail runs.
func (s *Server) startTail(w http.ResponseWriter, r *http.Request) error {
	if err := s.conns.StartTail(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// tailItem is an item of GET /@connections/{id}/tail.
type tailItem struct {
	Seq       uint64 `json:"seq"`
	Time      string `json:"time"`
	Direction string `json:"direction"`
	Data      string `json:"data"`
	Bytes     int    `json:"bytes"`
	Truncated bool   `json:"truncated"`
	Binary    bool   `json:"binary"`
}

// getTail answers GET /@connections/{id}/tail?after=SEQ: the tail's items
// after SEQ (default 0), oldest first.
func (s *Server) getTail(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "GET /@connections/{id}/tail", "after", "after"); err != nil {
		return err
	}
	var after uint64
	if q.Has("after") {
		n, err := strconv.ParseUint(q.Get("after"), 10, 64)
		if err != nil {
			return badRequest("after must be a whole number of 0 or more (the next of the previous answer), got %q", q.Get("after"))
		}
		after = n
	}
	page, err := s.conns.ReadTail(r.Context(), r.PathValue("id"), after)
	if err != nil {
		return err
	}
	items := make([]tailItem, 0, len(page.Items))
	for _, it := range page.Items {
		dir := "in"
		if it.Out {
			dir = "out"
		}
		items = append(items, tailItem{Seq: it.Seq, Time: isoTime(it.Time), Direction: dir, Data: it.Data,
			Bytes: it.Bytes, Truncated: it.Truncated, Binary: it.Binary})
	}
	return writeJSON(w, struct {
		Items   []tailItem `json:"items"`
		Next    uint64     `json:"next"`
		Dropped uint64     `json:"dropped"`
	}{items, page.Next, page.Dropped})
}

// stopTail answers DELETE /@connections/{id}/tail: 204, also when no tail
// was open or the connection is gone.
func (s *Server) stopTail(w http.ResponseWriter, r *http.Request) error {
	if err := s.conns.StopTail(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
