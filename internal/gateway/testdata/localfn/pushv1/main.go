// Command pushv1 is seed 002's pushToWebSocket written with aws-sdk-go v1,
// for tests: on a message it pushes "v1 pushed: BODY" to the caller through
// the @connections API at API_GATEWAY_ID.execute-api.AWS_REGION.amazonaws.com/STAGE
// (no scheme, as the seed writes it), with a session loaded from its
// environment. It answers "ok", or the SDK's error.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/apigatewaymanagementapi"
)

func handler(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	sess, err := session.NewSessionWithOptions(session.Options{SharedConfigState: session.SharedConfigEnable})
	if err != nil {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "session: " + err.Error()}, nil
	}
	endpoint := os.Getenv("API_GATEWAY_ID") + ".execute-api." + os.Getenv("AWS_REGION") + ".amazonaws.com/" + os.Getenv("STAGE")
	api := apigatewaymanagementapi.New(sess, aws.NewConfig().WithEndpoint(endpoint))
	_, err = api.PostToConnectionWithContext(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(ev.RequestContext.ConnectionID),
		Data:         []byte("v1 pushed: " + ev.Body),
	})
	if err != nil {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "push: " + err.Error()}, nil
	}
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: "ok"}, nil
}

func main() { lambda.Start(handler) }
