package mgmt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/topic"
)

// Limits of the calls beyond AWS's @connections API.
const (
	// MaxBatchItems is the most items one POST /@batch may carry.
	MaxBatchItems = 1000
	// MaxBatchBytes bounds a POST /@batch body, as API Gateway bounds a
	// REST request's payload at 10 MB.
	MaxBatchBytes = 10 << 20
	// MaxCloseReasonBytes is the longest close reason a close frame can
	// carry (RFC 6455 section 5.5: 125 bytes of payload, 2 of them the code).
	MaxCloseReasonBytes = 123
)

// bodyLimit is the most bytes the call r may carry.
func bodyLimit(r *http.Request) int64 {
	p := r.URL.Path
	if p == "/@batch" || (strings.Count(p, "/") == 2 && strings.HasSuffix(p, "/@batch")) {
		return MaxBatchBytes
	}
	return MaxPayloadBytes
}

// payload reads a message to push: 1 to MaxPayloadBytes bytes.
func (s *Server) payload(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := s.readBody(w, r, MaxPayloadBytes)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, ErrEmptyPayload
	}
	return body, nil
}

// pushToUser sends data to every connection of principalID; none reached is
// ErrGone, as for a single connection.
func (s *Server) pushToUser(ctx context.Context, principalID string, data []byte) (int, error) {
	if principalID == "" {
		return 0, badRequest("principalId is empty")
	}
	return s.conns.SendToUser(ctx, principalID, data)
}

// pushToTopic sends data to every subscriber of topic, a name checkTopic
// has passed; none is not an error.
func (s *Server) pushToTopic(ctx context.Context, topic string, data []byte) (int, error) {
	return s.conns.Publish(ctx, topic, data)
}

// checkTopic is BadRequestException for a name that breaks topic.Check's
// rules, the rules the built-in subscribe route applies.
func checkTopic(name string) error {
	if err := topic.Check(name); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}

type delivered struct {
	Delivered int `json:"delivered"`
}

func (s *Server) postToUser(w http.ResponseWriter, r *http.Request) error {
	data, err := s.payload(w, r)
	if err != nil {
		return err
	}
	n, err := s.pushToUser(r.Context(), r.PathValue("principalId"), data)
	if err != nil {
		return err
	}
	return writeJSON(w, delivered{n})
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) error {
	topic := r.PathValue("topic")
	if err := checkTopic(topic); err != nil {
		return err
	}
	data, err := s.payload(w, r)
	if err != nil {
		return err
	}
	n, err := s.pushToTopic(r.Context(), topic, data)
	if err != nil {
		return err
	}
	return writeJSON(w, delivered{n})
}

type identity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

type connectionInfo struct {
	ConnectionID string   `json:"connectionId"`
	ConnectedAt  string   `json:"connectedAt"`
	LastActiveAt string   `json:"lastActiveAt"`
	Identity     identity `json:"identity"`
}

// getUser lists the user's connections, oldest first.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("principalId")
	infos, err := s.conns.UserInfo(r.Context(), p)
	if err != nil {
		return err
	}
	conns := make([]connectionInfo, 0, len(infos))
	for _, in := range infos {
		conns = append(conns, connectionInfo{in.ID, isoTime(in.ConnectedAt), isoTime(in.LastActiveAt),
			identity{in.SourceIP, in.UserAgent}})
	}
	return writeJSON(w, struct {
		PrincipalID string           `json:"principalId"`
		Connections []connectionInfo `json:"connections"`
	}{p, conns})
}

func (s *Server) getTopic(w http.ResponseWriter, r *http.Request) error {
	topic := r.PathValue("topic")
	if err := checkTopic(topic); err != nil {
		return err
	}
	n, err := s.conns.TopicCount(r.Context(), topic)
	if err != nil {
		return err
	}
	return writeJSON(w, struct {
		Topic       string `json:"topic"`
		Subscribers int    `json:"subscribers"`
	}{topic, n})
}

func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) error {
	topic := r.PathValue("topic")
	if err := checkTopic(topic); err != nil {
		return err
	}
	if err := s.conns.Subscribe(r.Context(), r.PathValue("id"), topic); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) error {
	id, topic := r.PathValue("id"), r.PathValue("topic")
	if err := checkTopic(topic); err != nil {
		return err
	}
	if err := s.conns.Unsubscribe(r.Context(), id, topic); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// closeParams reads DELETE's optional code and reason. Without code the
// close is AWS's: 1000 "Connection Closed Normally". A code must be 1000 or
// one of the application codes 3000-4999, which clients may not receive
// otherwise; the reason must fit a close frame.
func closeParams(q url.Values) (int, string, error) {
	if !q.Has("code") && !q.Has("reason") {
		return 1000, "Connection Closed Normally", nil
	}
	code := 1000
	if q.Has("code") {
		c, err := strconv.Atoi(q.Get("code"))
		if err != nil || (c != 1000 && (c < 3000 || c > 4999)) {
			return 0, "", badRequest("code must be 1000 or between 3000 and 4999, got %q", q.Get("code"))
		}
		code = c
	}
	reason := q.Get("reason")
	if len(reason) > MaxCloseReasonBytes {
		return 0, "", badRequest("reason is %d bytes; at most %d bytes of UTF-8 fit a close frame", len(reason), MaxCloseReasonBytes)
	}
	if !utf8.ValidString(reason) {
		return 0, "", badRequest("reason must be valid UTF-8")
	}
	return code, reason, nil
}

// batchItem is one message of POST /@batch: exactly one target and exactly
// one of data (sent as text) and dataBase64 (the decoded bytes, sent as
// POST /@connections sends a body).
type batchItem struct {
	ConnectionID *string `json:"connectionId"`
	PrincipalID  *string `json:"principalId"`
	Topic        *string `json:"topic"`
	Data         *string `json:"data"`
	DataBase64   *string `json:"dataBase64"`
}

type batchResult struct {
	Status    int    `json:"status"`
	Delivered int    `json:"delivered"`
	Error     string `json:"error,omitempty"`
	Message   string `json:"message,omitempty"`
}

// batch delivers each item in order and answers with one result per item;
// one item failing does not stop the others.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r, MaxBatchBytes)
	if err != nil {
		return err
	}
	var req struct {
		Items []batchItem `json:"items"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badRequest("malformed batch: %v", err)
	}
	// More is false before a stray "]" or "}" as well as at the end, so
	// the end is read for.
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("malformed batch: data after the JSON object")
	}
	if len(req.Items) == 0 || len(req.Items) > MaxBatchItems {
		return badRequest("a batch holds 1 to %d items, got %d", MaxBatchItems, len(req.Items))
	}
	results := make([]batchResult, len(req.Items))
	// Items are delivered in their order. A run of consecutive items for
	// connections travels together, one request per node that holds some;
	// users and topics are resolved one by one, between the runs.
	var msgs []cluster.Message
	var msgItems []int
	flush := func() {
		if len(msgs) == 0 {
			return
		}
		for k, err := range s.conns.SendMany(r.Context(), msgs) {
			results[msgItems[k]] = s.batchResult(msgItems[k], 1, err)
		}
		msgs, msgItems = nil, nil
	}
	for i, it := range req.Items {
		t, err := parseBatchItem(it)
		if err != nil {
			results[i] = s.batchResult(i, 0, err)
			continue
		}
		if t.kind == targetConnection {
			msgs = append(msgs, cluster.Message{ConnectionID: t.name, Data: t.data})
			msgItems = append(msgItems, i)
			continue
		}
		flush()
		var n int
		switch t.kind {
		case targetUser:
			n, err = s.pushToUser(r.Context(), t.name, t.data)
		case targetTopic:
			n, err = s.pushToTopic(r.Context(), t.name, t.data)
		}
		results[i] = s.batchResult(i, n, err)
	}
	flush()
	return writeJSON(w, struct {
		Results []batchResult `json:"results"`
	}{results})
}

// batchResult is item i's result: delivered to n connections, or err.
func (s *Server) batchResult(i, n int, err error) batchResult {
	if err == nil {
		return batchResult{Status: http.StatusOK, Delivered: n}
	}
	e := asError(err)
	if e == nil {
		s.log.Error("batch item failed", "item", i, "err", err)
		e = errInternal
	}
	return batchResult{Status: e.Status, Error: e.Type, Message: e.Message}
}

type targetKind uint8

const (
	targetNone targetKind = iota
	targetConnection
	targetUser
	targetTopic
)

// batchTarget is a checked batch item.
type batchTarget struct {
	kind targetKind
	name string
	data []byte
}

// parseBatchItem checks a batch item: exactly one target, a payload of 1
// to MaxPayloadBytes bytes.
func parseBatchItem(it batchItem) (batchTarget, error) {
	var data []byte
	switch {
	case it.Data != nil && it.DataBase64 != nil:
		return batchTarget{}, badRequest("an item has data or dataBase64, not both")
	case it.Data != nil:
		data = []byte(*it.Data)
	case it.DataBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*it.DataBase64)
		if err != nil {
			return batchTarget{}, badRequest("dataBase64 is not base64: %v", err)
		}
		data = b
	default:
		return batchTarget{}, badRequest("an item needs data or dataBase64")
	}
	if len(data) == 0 {
		return batchTarget{}, ErrEmptyPayload
	}
	if len(data) > MaxPayloadBytes {
		return batchTarget{}, ErrPayloadTooLarge
	}
	targets := 0
	for _, t := range []*string{it.ConnectionID, it.PrincipalID, it.Topic} {
		if t != nil {
			targets++
		}
	}
	if targets != 1 {
		return batchTarget{}, badRequest("an item needs exactly one of connectionId, principalId and topic, got %d", targets)
	}
	switch {
	case it.ConnectionID != nil:
		if *it.ConnectionID == "" {
			return batchTarget{}, badRequest("connectionId is empty")
		}
		return batchTarget{targetConnection, *it.ConnectionID, data}, nil
	case it.PrincipalID != nil:
		return batchTarget{targetUser, *it.PrincipalID, data}, nil
	default:
		if err := checkTopic(*it.Topic); err != nil {
			return batchTarget{}, err
		}
		return batchTarget{targetTopic, *it.Topic, data}, nil
	}
}
