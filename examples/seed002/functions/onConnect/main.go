// Command onConnect is seed 002's $connect function: it reads the
// authorizer's context from the request context and accepts the connection.
package main

import (
	"log"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func function(event events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	ctx := event.RequestContext.Authorizer
	log.Printf("connection %s authorized with context %v", event.RequestContext.ConnectionID, ctx)
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

func main() {
	lambda.Start(function)
}
