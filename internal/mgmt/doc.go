// Package mgmt serves the management API: AWS's @connections API
// (PostToConnection, GetConnection, DeleteConnection) on its own listener,
// with AWS's status codes, error types and headers, so that backends written
// for AWS API Gateway push to clients through wsgate unchanged.
//
// Handlers return errors; one adapter turns an *Error into the AWS error
// response (status, X-Amzn-ErrorType, JSON {"message": …}) and logs the rest
// as 500s. Every response carries x-amzn-RequestId.
//
// Callers authenticate with a bearer token or with an AWS Signature Version 4
// signature (service execute-api) that is recomputed with the AWS SDK's own
// signer, so the unmodified SDK client works; see SigV4.
package mgmt
