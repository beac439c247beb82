// Command pushToWebSocket is seed 002's pushToWebSocket written with the AWS SDK for
// Go v2: it builds the endpoint from API_GATEWAY_ID, AWS_REGION and GO_ENV
// and pushes "Hello from v2!" to the caller.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

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
	endpoint := fmt.Sprintf("https://%s.execute-api.%s.amazonaws.com/%s",
		os.Getenv("API_GATEWAY_ID"), os.Getenv("AWS_REGION"), os.Getenv("GO_ENV"))
	api := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
	_, err = api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(request.RequestContext.ConnectionID),
		Data:         []byte("Hello from v2!"),
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
