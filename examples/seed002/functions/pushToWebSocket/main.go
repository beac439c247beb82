// Command pushToWebSocket is seed 002's pushtowebsocket route: it pushes
// "Hello there!" to the calling connection through the API Gateway
// management API, written with the AWS SDK for Go v1. It builds the API's
// endpoint from the API_GATEWAY_ID, AWS_REGION and GO_ENV environment
// variables.
package main

import (
	"fmt"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/apigatewaymanagementapi"
)

var (
	initializedSession = session.Must(session.NewSessionWithOptions(session.Options{
		SharedConfigState: session.SharedConfigEnable,
	}))
	apiGatewayId = os.Getenv("API_GATEWAY_ID")
	region       = os.Getenv("AWS_REGION")
	environment  = os.Getenv("GO_ENV")
)

func GetApiGatewayEndpoint(apiGatewayId string) string {
	return fmt.Sprintf("%v.execute-api.%v.amazonaws.com/%v", apiGatewayId, region, environment)
}

func NewApiGatewayManagementApi() *apigatewaymanagementapi.ApiGatewayManagementApi {
	return apigatewaymanagementapi.New(initializedSession,
		aws.NewConfig().WithEndpoint(GetApiGatewayEndpoint(apiGatewayId)))
}

func function(request events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	connectionId := request.RequestContext.ConnectionID
	api := NewApiGatewayManagementApi()
	input := &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionId),
		Data:         []byte("Hello there!"),
	}
	if _, err := api.PostToConnection(input); err != nil {
		log.Printf("PostToConnection: %v", err)
		return events.APIGatewayProxyResponse{
			StatusCode: 500,
			Body:       "Something went wrong",
		}, nil
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

func main() {
	lambda.Start(function)
}
