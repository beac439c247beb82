// Package integration invokes the backends that routes point at.
//
// An Integration receives the AWS_PROXY event for one $connect, message or
// $disconnect and returns the backend's proxy response. Failures that AWS
// reports as an integration error (an unreachable backend, a timeout, a
// malformed or failed response) come back as errors; the caller maps them to a
// 502 on $connect and to the "Internal server error" frame on messages.
package integration

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// Event is the AWS_PROXY event an integration receives.
type Event = events.APIGatewayWebsocketProxyRequest

// Response is the proxy response of a backend: the fields AWS reads from a
// Lambda proxy integration's result.
type Response struct {
	StatusCode      int
	Headers         map[string]string
	Body            string
	IsBase64Encoded bool
}

// Integration invokes one backend. Implementations are safe for concurrent
// use and honour ctx for cancellation and deadlines.
type Integration interface {
	Invoke(ctx context.Context, ev *Event) (*Response, error)
}

// ErrFailed marks an integration failure: the backend was reached but did
// not produce a usable result.
var ErrFailed = errors.New("integration failed")

// StatusError is the failure of a backend that answered with an error
// status instead of a response the gateway passes on. It wraps ErrFailed.
type StatusError struct {
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%v: backend answered HTTP %d", ErrFailed, e.Status)
}

func (e *StatusError) Unwrap() error { return ErrFailed }

func failf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFailed}, args...)...)
}
