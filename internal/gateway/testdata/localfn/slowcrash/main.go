// Command slowcrash is a Lambda function for tests: a body of "sleep"
// runs until the function's timeout ends it, "crash" exits the process,
// "env NAME" answers NAME=value, and any other body is echoed.
package main

import (
	"context"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	switch {
	case ev.Body == "sleep":
		select {}
	case ev.Body == "crash":
		os.Exit(2)
	case strings.HasPrefix(ev.Body, "env "):
		name := strings.TrimPrefix(ev.Body, "env ")
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: name + "=" + os.Getenv(name)}, nil
	}
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.Body}, nil
}

func main() { lambda.Start(handler) }
