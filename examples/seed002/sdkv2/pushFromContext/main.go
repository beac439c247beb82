// Command pushFromContext pushes to the caller the way AWS's documentation
// shows: the endpoint is https://{requestContext.domainName}/{stage}.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
)

func function(ctx context.Context, request events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	rc := request.RequestContext
	endpoint := "https://" + rc.DomainName + "/" + rc.Stage
	api := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
	_, err = api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(rc.ConnectionID),
		Data:         []byte("Hello from " + rc.DomainName + "!"),
	})
	if err != nil {
		log.Printf("PostToConnection: %v", err)
		return events.APIGatewayProxyResponse{StatusCode: 500, Body: "Something went wrong"}, nil
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

func main() {
	lambda.Start(function)
}
