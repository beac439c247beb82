// Command authorizer is seed 002's REQUEST authorizer: the token comes in the
// Auth query parameter, because browsers cannot set headers on a WebSocket.
package main

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func policy(principal, effect, resource string) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   effect,
				Resource: []string{resource},
			}},
		},
		Context: map[string]any{"user": principal},
	}
}

func handler(_ context.Context, event events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	token := event.QueryStringParameters["Auth"]
	switch {
	case token == "":
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")
	case strings.HasPrefix(token, "valid-"):
		return policy(strings.TrimPrefix(token, "valid-"), "Allow", event.MethodArn), nil
	default:
		return policy("nobody", "Deny", event.MethodArn), nil
	}
}

func main() { lambda.Start(handler) }
