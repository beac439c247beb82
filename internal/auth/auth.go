// Package auth authenticates WebSocket clients once, at $connect, before the
// upgrade: identity sources, the authorizers (jwt, request, basic, apikey),
// the decision cache, and the Origin and CSRF checks that run before any
// authorizer.
//
// An Authorizer returns the connection's Identity or an error. A *Denial
// carries the HTTP status the handshake is refused with (401 Unauthorized,
// 403 Forbidden, 500 for an authorizer that failed or answered something
// unusable); any other error is a failure the caller answers with 500.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/wsgate/wsgate/internal/awsevent"
)

// Request is what authorizers see of an upgrade request.
type Request struct {
	// ConnectionID is already allocated, as in AWS's authorizer event.
	ConnectionID string
	Header       http.Header
	Query        url.Values
	// Host is the Host the client used.
	Host string
	// Subprotocols are the Sec-WebSocket-Protocol items offered, in order.
	Subprotocols []string
	// Token is the value of the first identity source (for jwt: the token,
	// with "Bearer " stripped from a header source). ReadSources sets it.
	Token string
	// SourceValues are the values of all identity sources, in order
	// (Source.Value: the last of a repeated parameter, header or cookie).
	SourceValues []string
	// SourceIP is the client's address: the socket's peer, or what a
	// trusted proxy reported.
	SourceIP string
	// Peer is the socket peer's address, appended to X-Forwarded-For in
	// the authorizer event; "" means SourceIP.
	Peer           string
	UserAgent      string
	StageVariables map[string]string
	Time           time.Time
	// ClientCert is the certificate the client presented with mutual TLS;
	// nil without one. The request authorizer's event carries it in
	// requestContext.identity.clientCert, as AWS's does.
	ClientCert *awsevent.ClientCert
}

// Identity is who a connection is, as established at $connect. It is fixed
// for the life of the connection.
type Identity struct {
	// PrincipalID names the user.
	PrincipalID string
	// Context holds the authorizer's context values: strings, float64 or
	// json.Number numbers and booleans only.
	Context map[string]any
	// ExpiresAt is when the credential expires (a JWT's exp, plus the
	// leeway the token was checked with); zero when it does not.
	ExpiresAt time.Time
	// UsageIdentifierKey is the API key a REQUEST authorizer returned.
	UsageIdentifierKey string
}

// Authorizer decides whether a client may connect. Implementations are safe
// for concurrent use.
type Authorizer interface {
	Authorize(ctx context.Context, req *Request) (*Identity, error)
}

// Closer is implemented by authorizers that hold resources, such as a JWKS
// refresh goroutine.
type Closer interface {
	Close() error
}

// Denial refuses a connection with an HTTP status. Message is the JSON
// body's message; Reason is for the log only and never holds a credential.
type Denial struct {
	Status  int
	Message string
	Reason  string
	// Header holds extra response headers, such as WWW-Authenticate.
	Header http.Header
	// undecided marks a refusal because the authorizer could not decide
	// yet, such as a JWT authorizer that has no keys to verify with: the
	// same request may be accepted moments later, so it is not a Deny the
	// Cache keeps.
	undecided bool
}

func (d *Denial) Error() string {
	if d.Reason != "" {
		return fmt.Sprintf("%d %s: %s", d.Status, d.Message, d.Reason)
	}
	return fmt.Sprintf("%d %s", d.Status, d.Message)
}

// Unauthorized returns a 401 denial; reason is logged, never sent.
func Unauthorized(reason string) *Denial {
	return &Denial{Status: http.StatusUnauthorized, Message: "Unauthorized", Reason: reason}
}

// Forbidden returns a 403 denial; reason is logged, never sent.
func Forbidden(reason string) *Denial {
	return &Denial{Status: http.StatusForbidden, Message: "Forbidden", Reason: reason}
}

// Failed returns a 500 denial for an authorizer that could not decide.
func Failed(reason string) *Denial {
	return &Denial{Status: http.StatusInternalServerError, Message: "Internal Server Error", Reason: reason}
}

// AsDenial returns the *Denial in err, or a 500 denial for any other error.
func AsDenial(err error) *Denial {
	var d *Denial
	if errors.As(err, &d) {
		return d
	}
	return Failed(err.Error())
}
