// Package awsevent builds what API Gateway itself produces for a WebSocket API:
// the AWS_PROXY event JSON posted to integrations for $connect, message routes
// and $disconnect, the connection, request and message ids, and the error
// frames the gateway writes to a client.
//
// Events are events.APIGatewayWebsocketProxyRequest values from
// github.com/aws/aws-lambda-go, so the JSON keys are exactly those Lambda
// handlers decode. The shapes follow captured AWS events: a CONNECT event
// carries the upgrade request's headers and query string, a MESSAGE event
// carries only the body and a message id, and a DISCONNECT event carries
// AWS's synthetic headers and the close code and reason. Every event repeats
// the caller's identity and, when an authorizer ran at $connect, its output,
// because later routes are authorized by what $connect established.
//
// The functions here are pure apart from reading crypto/rand and are safe for
// concurrent use.
package awsevent
