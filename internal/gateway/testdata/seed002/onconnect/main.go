// Command onconnect is seed 002's $connect function: it accepts every
// connection that passed the authorizer and reports who connected.
package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handler(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	user := ""
	if a, ok := req.RequestContext.Authorizer.(map[string]any); ok {
		user, _ = a["principalId"].(string)
	}
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: fmt.Sprintf("connected %s as %s", req.RequestContext.ConnectionID, user)}, nil
}

func main() { lambda.Start(handler) }
