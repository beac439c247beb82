// Command authfn is a Lambda REQUEST authorizer for tests, written only
// against aws-lambda-go: the Auth query parameter "allow" allows the
// connection, "deny" denies it, and anything else fails with
// "Unauthorized", as AWS's example authorizer does.
package main

import (
	"context"
	"errors"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	effect := ""
	switch ev.QueryStringParameters["Auth"] {
	case "allow":
		effect = "Allow"
	case "deny":
		effect = "Deny"
	default:
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")
	}
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: "user",
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{
				{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{ev.MethodArn}},
			},
		},
		Context: map[string]any{"who": "user"},
	}, nil
}

func main() {
	lambda.Start(handler)
}
