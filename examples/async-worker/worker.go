package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/smithy-go"
)

// postTimeout bounds one PostToConnection, the SDK's retries included. A
// post that has started is finished even when the worker is stopping, so
// that a reply the client got is acknowledged and not sent twice.
const postTimeout = 30 * time.Second

// A delivery is one message taken from the broker.
type delivery struct {
	// connectionID is the client's connection, for @connections.
	connectionID string
	// eventType is CONNECT, MESSAGE or DISCONNECT; empty when the message
	// does not say, which is taken as MESSAGE.
	eventType string
	// requestID is the event's requestId, empty when unknown.
	requestID string
	// body is the client's message, decoded when it was base64.
	body []byte
}

// An outcome is what the source does with a message once it was handled.
type outcome int

const (
	// ack: done with it — replied, nothing to reply, the client left, or a
	// message that can never be answered. It is acknowledged.
	ack outcome = iota
	// retry: the post failed; the message is left unacknowledged and
	// delivered again after -retry.
	retry
	// release: the worker is stopping before it posted; the message is
	// left unacknowledged for another worker, or this one when it starts
	// again, at once.
	release
)

// A source consumes one broker: it passes each message to handle, one at a
// time, and acknowledges it or not by the outcome, until ctx ends; then it
// stops taking messages, releases those it holds and returns nil.
type source interface {
	run(ctx context.Context, handle func(context.Context, delivery) outcome) error
}

// worker does the work for each message and posts the result to its
// connection.
type worker struct {
	o         options
	log       *slog.Logger
	client    *apigatewaymanagementapi.Client
	transport *http.Transport
}

func newWorker(o options, logger *slog.Logger) *worker {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	client := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(o.endpoint),
		Region:       o.region,
		Credentials:  credentials.NewStaticCredentialsProvider(o.accessKeyID, o.secretAccessKey, o.sessionToken),
		HTTPClient:   &http.Client{Transport: transport},
	})
	return &worker{o: o, log: logger, client: client, transport: transport}
}

// close releases the management API's idle connections.
func (w *worker) close() { w.transport.CloseIdleConnections() }

// result is the reply the client gets.
type result struct {
	Action    string          `json:"action"`
	RequestID string          `json:"requestId,omitempty"`
	Input     json.RawMessage `json:"input"`
	Upper     string          `json:"upper"`
	Worker    string          `json:"worker"`
}

// work is the job: the client's message back, as JSON when it is JSON and
// as a string otherwise, beside the message in upper case.
func work(d delivery, name string) []byte {
	input := json.RawMessage(d.body)
	if !json.Valid(d.body) {
		input, _ = json.Marshal(string(d.body))
	}
	out, _ := json.Marshal(result{Action: "result", RequestID: d.requestID, Input: input,
		Upper: strings.ToUpper(string(d.body)), Worker: name})
	return out
}

// handle answers one message. Only MESSAGE events get a reply: a CONNECT
// event's connection is not open yet, a DISCONNECT event's is gone.
func (w *worker) handle(ctx context.Context, d delivery) outcome {
	log := w.log.With("connectionId", d.connectionID, "requestId", d.requestID)
	if d.eventType != "" && d.eventType != "MESSAGE" {
		log.Debug("not a message; nothing to answer", "eventType", d.eventType)
		return ack
	}
	log.Debug("working", "delay", w.o.delay)
	if w.o.delay > 0 {
		t := time.NewTimer(w.o.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			log.Info("stopping before the reply was posted; the message goes back to the broker")
			return release
		}
	}
	if ctx.Err() != nil {
		return release
	}
	reply := work(d, w.o.name)
	postCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), postTimeout)
	defer cancel()
	_, err := w.client.PostToConnection(postCtx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(d.connectionID),
		Data:         reply,
	})
	var apiErr smithy.APIError
	switch {
	case err == nil:
		log.Info("reply posted", "bytes", len(reply))
		return ack
	case errors.As(err, &apiErr) && apiErr.ErrorCode() == "GoneException":
		log.Info("the client has left; message dropped")
		return ack
	case errors.As(err, &apiErr) && (apiErr.ErrorCode() == "PayloadTooLargeException" || apiErr.ErrorCode() == "BadRequestException"):
		log.Error("the gateway refuses this reply; message dropped", "err", apiErr.ErrorCode())
		return ack
	default:
		log.Warn("posting the reply failed; the message will be delivered again", "err", err, "retry", w.o.retry)
		return retry
	}
}
