package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// InvokeAPI calls a function through the Lambda Invoke API: POST
// {Endpoint}/2015-03-31/functions/{FunctionName}/invocations, synchronously
// (RequestResponse). It reaches real AWS Lambda, which needs Credentials, and
// the Lambda Runtime Interface Emulator, which takes unsigned requests.
//
// A 2xx answer with an X-Amz-Function-Error header is a *FunctionError; any
// other 2xx answer is the function's result. A non-2xx answer (throttling, a
// missing function, a rejected signature) is a failure that names the
// service's error type.
type InvokeAPI struct {
	// Endpoint is the API's base URL. Default
	// https://lambda.{Region}.amazonaws.com.
	Endpoint string
	// FunctionName is the function's name, ARN or name:qualifier.
	FunctionName string
	// Region signs requests. Default "us-east-1".
	Region string
	// Credentials sign requests with SigV4 (service lambda) when
	// AccessKeyID is set; the zero value sends unsigned requests.
	Credentials aws.Credentials
	// Client is nil for a process-wide client from NewClient.
	Client *http.Client
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
}

var _ Invoker = (*InvokeAPI)(nil)

func (l *InvokeAPI) url() string {
	region := l.Region
	if region == "" {
		region = "us-east-1"
	}
	endpoint := strings.TrimRight(l.Endpoint, "/")
	if endpoint == "" {
		endpoint = "https://lambda." + region + ".amazonaws.com"
	}
	return endpoint + "/2015-03-31/functions/" + url.PathEscape(l.FunctionName) + "/invocations"
}

// Invoke implements Invoker.
func (l *InvokeAPI) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url(), bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("build invoke request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
	if l.Credentials.AccessKeyID != "" {
		region := l.Region
		if region == "" {
			region = "us-east-1"
		}
		now := time.Now
		if l.Now != nil {
			now = l.Now
		}
		sum := sha256.Sum256(payload)
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		if err := v4.NewSigner().SignHTTP(ctx, l.Credentials, req, hex.EncodeToString(sum[:]), "lambda", region, now().UTC()); err != nil {
			return nil, fmt.Errorf("sign invoke request: %w", err)
		}
	}
	client := l.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil, ctx.Err()
		}
		return nil, failf("lambda invoke: %v", redactURL(err))
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, failf("read lambda invoke response: %v", redactURL(err))
	}
	if len(body) > MaxResponseBytes {
		return nil, failf("lambda invoke response larger than %d bytes", MaxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		typ := resp.Header.Get("X-Amzn-ErrorType")
		if i := strings.IndexByte(typ, ':'); i >= 0 {
			typ = typ[:i]
		}
		if typ == "" {
			typ = "HTTP " + http.StatusText(resp.StatusCode)
		}
		return nil, failf("lambda invoke answered %d %s", resp.StatusCode, typ)
	}
	if ft := resp.Header.Get("X-Amz-Function-Error"); ft != "" {
		return nil, parseFunctionError(body, ft)
	}
	return body, nil
}
