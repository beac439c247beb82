// Command pushv2 is a Lambda function for tests written the way a function
// deployed on AWS is, with aws-sdk-go-v2: on a message it pushes
// "v2 pushed: BODY" to the caller through the @connections API, with the
// configuration the SDK loads from its environment. A body holding
// "domain" builds the endpoint from requestContext.domainName and stage;
// any other from API_GATEWAY_ID, AWS_REGION and STAGE. It answers "ok", or
// the SDK's error.
package main

import (
	"context"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
)

func handler(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	endpoint := "https://" + os.Getenv("API_GATEWAY_ID") + ".execute-api." + os.Getenv("AWS_REGION") + ".amazonaws.com/" + os.Getenv("STAGE")
	if strings.Contains(ev.Body, "domain") {
		endpoint = "https://" + ev.RequestContext.DomainName + "/" + ev.RequestContext.Stage
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "config: " + err.Error()}, nil
	}
	api := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
	_, err = api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(ev.RequestContext.ConnectionID),
		Data:         []byte("v2 pushed: " + ev.Body),
	})
	if err != nil {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "push: " + err.Error()}, nil
	}
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: "ok"}, nil
}

func main() { lambda.Start(handler) }
