// Command echofn is a Lambda function for tests, written only against
// aws-lambda-go: it answers a WebSocket event with its body. A body of
// "fail" is a function error, "crash" exits the process, "sleep" waits
// 300ms, "pid" answers with the process id, "forbid" answers statusCode 403
// and "null" returns no result. A $connect event honours the same words in
// the "do" query parameter.
//
// "meet:DIR" and "alone:DIR" show whether invocations run at once, without
// timing them: each writes a file named after its process in DIR. "meet"
// leaves it there and waits until another invocation's file is there too,
// answering "met" ("timeout" after 20s); "alone" removes it when done,
// after 100ms, and answers how many files it saw meanwhile.
package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (*events.APIGatewayProxyResponse, error) {
	word := ev.Body
	if ev.RequestContext.EventType == "CONNECT" {
		word = ev.QueryStringParameters["do"]
	}
	if dir, ok := strings.CutPrefix(word, "meet:"); ok {
		return overlap(dir, true)
	}
	if dir, ok := strings.CutPrefix(word, "alone:"); ok {
		return overlap(dir, false)
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

// overlap writes this process's file in dir and waits for another
// invocation's (meet) or for 100ms (alone), and answers what it saw.
func overlap(dir string, meet bool) (*events.APIGatewayProxyResponse, error) {
	mine := filepath.Join(dir, strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(mine, nil, 0o600); err != nil {
		return nil, err
	}
	if !meet {
		defer os.Remove(mine)
	}
	count := func() int {
		entries, _ := os.ReadDir(dir)
		return len(entries)
	}
	answer := func(body string) (*events.APIGatewayProxyResponse, error) {
		return &events.APIGatewayProxyResponse{StatusCode: 200, Body: body}, nil
	}
	if !meet {
		time.Sleep(100 * time.Millisecond)
		return answer(strconv.Itoa(count()))
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if count() >= 2 {
			return answer("met")
		}
	}
	return answer("timeout")
}

func main() {
	lambda.Start(handler)
}
