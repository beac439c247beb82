package mgmt

import (
	"net/http"
	"net/url"
	"strings"
)

// operations names the calls of the API by their ServeMux pattern, with
// AWS's operation names where AWS has the call.
var operations = map[string]string{
	"POST /@connections/{id}":                     "PostToConnection",
	"GET /@connections":                           "ListConnections",
	"GET /@connections/{id}":                      "GetConnection",
	"DELETE /@connections/{id}":                   "DeleteConnection",
	"PUT /@connections/{id}/topics/{topic...}":    "Subscribe",
	"DELETE /@connections/{id}/topics/{topic...}": "Unsubscribe",
	"POST /@users/{principalId}":                  "PostToUser",
	"GET /@users/{principalId}":                   "GetUser",
	"POST /@topics/{topic...}":                    "Publish",
	"GET /@topics/{topic...}":                     "GetTopic",
	"POST /@batch":                                "Batch",
	"GET /@nodes":                                 "ListNodes",
	"GET /@topics":                                "ListTopics",
	"GET /@log":                                   "GetLog",
	"PUT /@connections/{id}/tail":                 "StartTail",
	"GET /@connections/{id}/tail":                 "GetTail",
	"DELETE /@connections/{id}/tail":              "StopTail",
	"GET /healthz":                                "Health",
	"GET /readyz":                                 "Ready",
	"GET /metrics":                                "Metrics",
	"POST /reload":                                "Reload",
	"GET /asyncapi.json":                          "AsyncAPI",
}

// operation names the call r makes, for metrics: one of the values of
// operations, Pprof, UI (the inspector's page and assets), or Unknown for
// anything else. It routes r as
// ServeHTTP would, without serving it.
func (s *Server) operation(r *http.Request) string {
	_, pattern := s.mux.Handler(r)
	if pattern == "/{stage}/{rest...}" {
		escaped := r.URL.EscapedPath()
		rest := escaped[strings.IndexByte(escaped[1:], '/')+1:]
		p, err := url.PathUnescape(rest)
		if err != nil {
			return "Unknown"
		}
		u := *r.URL
		u.Path, u.RawPath = p, rest
		r2 := *r
		r2.URL = &u
		_, pattern = s.unstaged.Handler(&r2)
	}
	if op, ok := operations[pattern]; ok {
		return op
	}
	if strings.HasPrefix(pattern, "/debug/pprof/") {
		return "Pprof"
	}
	if strings.HasPrefix(pattern, "GET /ui") {
		return "UI"
	}
	return "Unknown"
}

// statusWriter records the status a handler answers with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer, for the
// handlers that flush or set deadlines (pprof's profile and trace).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is the status answered, 200 when the handler wrote nothing.
func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
