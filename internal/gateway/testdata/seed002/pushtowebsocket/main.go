// Command pushtowebsocket is seed 002's echo route: it pushes a message back
// to the caller through the @connections API, with the endpoint taken from
// its environment, as a function deployed on AWS does.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
)

func newAPI() *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(os.Getenv("API_GATEWAY_ENDPOINT")),
		Region:       os.Getenv("AWS_REGION"),
		Credentials: credentials.NewStaticCredentialsProvider(
			os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
	})
}

func handler(ctx context.Context, request events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	connectionID := request.RequestContext.ConnectionID
	input := &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionID),
		Data:         []byte("Hello there!"),
	}
	if _, err := newAPI().PostToConnection(ctx, input); err != nil {
		return events.APIGatewayProxyResponse{StatusCode: 500, Body: "Something went wrong"}, nil
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

func main() { lambda.Start(handler) }
