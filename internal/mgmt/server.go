package mgmt

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/registry"
)

// MaxPayloadBytes is PostToConnection's payload limit.
const MaxPayloadBytes = 131072

// Config configures the management API.
type Config struct {
	// NodeID names this gateway process in the registry.
	NodeID string
	// BearerTokens, when non-empty, are the accepted "Authorization: Bearer"
	// tokens.
	BearerTokens []string
	// SigV4, when its AccessKeyID is set, accepts requests signed with AWS
	// Signature Version 4 by that key. With both BearerTokens and SigV4, a
	// request passes with either; with neither, no authentication.
	SigV4 SigV4
}

// Server is the management API's HTTP handler.
type Server struct {
	cfg    Config
	hub    *hub.Hub
	reg    registry.Registry
	log    *slog.Logger
	mux    *http.ServeMux
	tokens [][32]byte
}

var _ http.Handler = (*Server)(nil)

// New returns the management API for the connections in h and reg.
func New(cfg Config, h *hub.Hub, reg registry.Registry, logger *slog.Logger) *Server {
	s := &Server{cfg: cfg, hub: h, reg: reg, log: logger.With("component", "mgmt"), mux: http.NewServeMux()}
	for _, t := range cfg.BearerTokens {
		s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
	}
	for _, prefix := range []string{"", "/{stage}"} {
		s.mux.Handle("POST "+prefix+"/@connections/{id}", s.handle(s.postToConnection))
		s.mux.Handle("GET "+prefix+"/@connections/{id}", s.handle(s.getConnection))
		s.mux.Handle("DELETE "+prefix+"/@connections/{id}", s.handle(s.deleteConnection))
	}
	s.mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	s.mux.Handle("/", s.handle(func(http.ResponseWriter, *http.Request) error { return ErrNotFound }))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["x-amzn-RequestId"] = []string{awsevent.NewID()}
	s.mux.ServeHTTP(w, r)
}

// handle adapts a handler that returns an error: *Error values become AWS
// error responses, anything else a logged 500.
func (s *Server) handle(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.authenticate(w, r)
		if err == nil {
			err = f(w, r)
		}
		if err == nil {
			return
		}
		e := asError(err)
		if e == nil {
			s.log.Error("management call failed", "method", r.Method, "path", r.URL.Path, "err", err)
			e = &Error{Status: http.StatusInternalServerError, Type: "InternalServerErrorException", Message: "Internal server error"}
		}
		writeError(w, e)
	})
}

func writeError(w http.ResponseWriter, e *Error) {
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{e.Message})
	w.Header().Set("Content-Type", "application/json")
	w.Header()["X-Amzn-ErrorType"] = []string{e.Type}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// authenticate accepts a request that carries a configured bearer token
// (compared in constant time) or a valid SigV4 signature. To check a
// signature it reads the body, up to MaxPayloadBytes, and puts it back for the
// handler.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) error {
	sigv4 := s.cfg.SigV4.enabled()
	if len(s.tokens) == 0 && !sigv4 {
		return nil
	}
	auth := r.Header.Get("Authorization")
	if sigv4 && strings.HasPrefix(auth, sigv4Algorithm+" ") {
		body, err := readBody(w, r)
		if err != nil {
			return err
		}
		return s.cfg.SigV4.verify(r, body)
	}
	const prefix = "bearer "
	if len(s.tokens) == 0 || len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		if auth == "" && sigv4 {
			return sigv4Error("Missing Authentication Token")
		}
		return ErrForbidden
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
	ok := 0
	for i := range s.tokens {
		ok |= subtle.ConstantTimeCompare(sum[:], s.tokens[i][:])
	}
	if ok != 1 {
		return ErrForbidden
	}
	return nil
}

// local finds a live connection on this node. A connection the registry
// places on another node is not reachable from here and answers as gone; a
// registry failure is an error.
func (s *Server) local(ctx context.Context, id string) (hub.Conn, error) {
	if c := s.hub.Get(id); c != nil {
		return c, nil
	}
	if _, err := s.reg.Lookup(ctx, id); err != nil && !errors.Is(err, registry.ErrNotFound) {
		return nil, err
	}
	return nil, ErrGone
}

func (s *Server) postToConnection(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPayloadBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ErrPayloadTooLarge
		}
		return &Error{Status: http.StatusBadRequest, Type: "BadRequestException", Message: "Could not read request body"}
	}
	if len(body) == 0 {
		return ErrEmptyPayload
	}
	c, err := s.local(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := c.Send(body); err != nil {
		return ErrGone
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// isoTime formats t as GetConnection does: ISO 8601 in UTC with milliseconds.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (s *Server) getConnection(w http.ResponseWriter, r *http.Request) error {
	c, err := s.local(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	info := c.Info()
	type identity struct {
		SourceIP  string `json:"sourceIp"`
		UserAgent string `json:"userAgent"`
	}
	body, err := json.Marshal(struct {
		ConnectedAt  string   `json:"connectedAt"`
		Identity     identity `json:"identity"`
		LastActiveAt string   `json:"lastActiveAt"`
	}{isoTime(info.ConnectedAt), identity{info.SourceIP, info.UserAgent}, isoTime(info.LastActiveAt)})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}

func (s *Server) deleteConnection(w http.ResponseWriter, r *http.Request) error {
	c, err := s.local(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	c.Close(1000, "Connection Closed Normally")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
