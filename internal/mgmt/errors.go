package mgmt

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/inspect"
	"github.com/wsgate/wsgate/internal/registry"
)

// Error is an AWS-style management API error.
type Error struct {
	Status  int    // HTTP status
	Type    string // X-Amzn-ErrorType, e.g. GoneException
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d): %s", e.Type, e.Status, e.Message) }

// The errors the @connections API answers with, as botocore's service model
// names them.
var (
	ErrGone = &Error{Status: http.StatusGone, Type: "GoneException",
		Message: "The connection with the provided id no longer exists"}
	ErrForbidden = &Error{Status: http.StatusForbidden, Type: "ForbiddenException",
		Message: "Forbidden"}
	ErrPayloadTooLarge = &Error{Status: http.StatusRequestEntityTooLarge, Type: "PayloadTooLargeException",
		Message: "Request payload exceeds the maximum size of 131072 bytes"}
	ErrNotFound = &Error{Status: http.StatusNotFound, Type: "NotFoundException",
		Message: "Not Found"}
	ErrEmptyPayload = &Error{Status: http.StatusBadRequest, Type: "BadRequestException",
		Message: "Request payload is empty"}
	ErrLimitExceeded = &Error{Status: http.StatusTooManyRequests, Type: "LimitExceededException",
		Message: "The client is sending more than the allowed number of requests per unit of time or the WebSocket client side buffer is full"}

	errNonCanonicalPath = &Error{Status: http.StatusNotFound, Type: "NotFoundException",
		Message: "Not Found: the path has an empty, '.' or '..' segment"}

	errSubscriptionLimit = &Error{Status: http.StatusBadRequest, Type: "BadRequestException",
		Message: "The connection holds the most subscriptions allowed (limits.max_subscriptions_per_connection); unsubscribe it from a topic first"}

	errUnavailable = &Error{Status: http.StatusServiceUnavailable, Type: "ServiceUnavailableException",
		Message: "The gateway cannot reach its cluster engine; retry later"}

	errTailsOff = &Error{Status: http.StatusForbidden, Type: "ForbiddenException",
		Message: "message tails are off; set management.message_tail: true"}
	errTooManyTails = &Error{Status: http.StatusTooManyRequests, Type: "LimitExceededException",
		Message: fmt.Sprintf("the connection's node has the most message tails open (%d); stop one (DELETE /@connections/{id}/tail) or wait for one to lapse", inspect.MaxTails)}
	errNoTail = &Error{Status: http.StatusNotFound, Type: "NotFoundException",
		Message: "no tail is open on this connection; PUT /@connections/{id}/tail starts one"}

	errForeignHost = &Error{Status: http.StatusForbidden, Type: "ForbiddenException",
		Message: "Forbidden: a management API without authentication answers only calls addressed to a loopback host"}

	errCrossOrigin = &Error{Status: http.StatusForbidden, Type: "ForbiddenException",
		Message: "Forbidden: a cross-origin call from a browser"}

	errInternal = &Error{Status: http.StatusInternalServerError, Type: "InternalServerErrorException",
		Message: "Internal server error"}
)

// badRequest is a BadRequestException with a message saying what to change.
func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "BadRequestException", Message: fmt.Sprintf(format, args...)}
}

// payloadTooLarge is PayloadTooLargeException for a body over limit bytes.
func payloadTooLarge(limit int64) *Error {
	if limit == MaxPayloadBytes {
		return ErrPayloadTooLarge
	}
	return &Error{Status: http.StatusRequestEntityTooLarge, Type: "PayloadTooLargeException",
		Message: fmt.Sprintf("Request payload exceeds the maximum size of %d bytes", limit)}
}

// asError maps err to the error the API answers with, or nil for an
// unexpected one (a 500).
func asError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, cluster.ErrGone), errors.Is(err, registry.ErrNotFound):
		return ErrGone
	case errors.Is(err, cluster.ErrSubscriptionLimit):
		return errSubscriptionLimit
	case unreachable(err) != nil:
		return unreachable(err)
	case errors.Is(err, cluster.ErrUnavailable):
		return errUnavailable
	case errors.Is(err, cluster.ErrTailsOff):
		return errTailsOff
	case errors.Is(err, cluster.ErrTooManyTails):
		return errTooManyTails
	case errors.Is(err, cluster.ErrNoTail):
		return errNoTail
	}
	return nil
}
