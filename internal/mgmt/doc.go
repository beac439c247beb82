// Package mgmt serves the management API: AWS's @connections API
// (PostToConnection, GetConnection, DeleteConnection) on its own listener,
// with AWS's status codes, error types and headers, so that backends written
// for AWS API Gateway push to clients through wsgate unchanged. Beyond AWS it
// pushes to every connection of a user (@users), to a topic's subscribers
// (@topics), to many targets in one call (@batch), and closes connections
// with an application close code. Delivery never blocks on a client: a full
// outbound queue closes that client as a slow consumer.
//
// Handlers return errors; one adapter turns an *Error into the AWS error
// response (status, X-Amzn-ErrorType, JSON {"message": …}) and logs the rest
// as 500s. Every response carries x-amzn-RequestId.
//
// Callers authenticate with a bearer token or with an AWS Signature Version 4
// signature (service execute-api) that is recomputed with the AWS SDK's own
// signer, so the unmodified SDK client works; see SigV4.
package mgmt
