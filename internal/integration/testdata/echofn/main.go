// Command echofn is a Lambda function for tests, written only against
// aws-lambda-go: it answers a WebSocket event with its body. A body of
// "fail" is a function error, "crash" exits the process, "sleep" waits
// 300ms, "pid" answers with the process id, "forbid" answers statusCode 403
// and "null" returns no result. A $connect event honours the same words in
// the "do" query parameter.
package main

import (
	"context"
	"errors"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (*events.APIGatewayProxyResponse, error) {
	word := ev.Body
	if ev.RequestContext.EventType == "CONNECT" {
		word = ev.QueryStringParameters["do"]
	}
	switch word {
	case "fail":
		return nil, errors.New("asked to fail")
	case "crash":
		os.Exit(3)
	case "sleep":
		time.Sleep(300 * time.Millisecond)
	case "pid":
		return &events.APIGatewayProxyResponse{StatusCode: 200, Body: strconv.Itoa(os.Getpid())}, nil
	case "forbid":
		return &events.APIGatewayProxyResponse{StatusCode: 403, Body: "forbidden"}, nil
	case "null":
		return nil, nil
	}
	return &events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.Body}, nil
}

func main() {
	lambda.Start(handler)
}
