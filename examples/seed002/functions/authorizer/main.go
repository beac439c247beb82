// Command authorizer is seed 002's REQUEST authorizer: it reads the token
// from the Auth query-string parameter and returns an IAM policy allowing
// the connection, with a context that API Gateway passes to every event of
// the connection.
package main

import (
	"errors"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func function(event events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	token := event.QueryStringParameters["Auth"]
	// As a custom authorizer, it validates the token itself; this one
	// refuses only the token "deny".
	if token == "" || token == "deny" {
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")
	}
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: "my-username",
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   "Allow",
				Resource: []string{event.MethodArn},
			}},
		},
		Context: map[string]interface{}{
			"org":       "my-org",
			"role":      "admin",
			"createdAt": "2019-01-03T12:15:42",
		},
	}, nil
}

func main() {
	lambda.Start(function)
}
