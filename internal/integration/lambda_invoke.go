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
	// Client, when set, is the net/http client calls go through; nil
	// means Fast.
	Client *http.Client
	// Fast is the client calls go through when Client is nil; nil means a
	// process-wide FastClient.
	Fast *FastClient
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
	var signed http.Header
	if l.Credentials.AccessKeyID != "" {
		var err error
		if signed, err = l.sign(ctx, payload); err != nil {
			return nil, err
		}
	}
	if l.Client != nil {
		return l.invokeStd(ctx, payload, signed)
	}
	fast := l.Fast
	if fast == nil {
		fast = defaultFastClient
	}
	resp, err := fast.Post(ctx, l.url(), 0, "application/json", payload, func(set func(k, v string)) {
		set("X-Amz-Invocation-Type", "RequestResponse")
		for k, vs := range signed {
			for _, v := range vs {
				set(k, v)
			}
		}
	})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return nil, context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return nil, err
	case errors.Is(err, errBodyTooLarge):
		return nil, failf("lambda invoke response larger than %d bytes", MaxResponseBytes)
	case err != nil:
		return nil, failf("lambda invoke: %v", err)
	}
	defer resp.Release()
	return l.answer(resp.StatusCode(), bytes.Clone(resp.Body()), resp.Header)
}

// sign returns the SigV4 headers of an invocation with payload.
func (l *InvokeAPI) sign(ctx context.Context, payload []byte) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url(), bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("build invoke request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
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
	return req.Header, nil
}

// invokeStd is Invoke through the net/http client l.Client; signed, when
// not nil, holds the request's headers.
func (l *InvokeAPI) invokeStd(ctx context.Context, payload []byte, signed http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url(), bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("build invoke request: %w", err)
	}
	if signed != nil {
		req.Header = signed
	} else {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
	}
	resp, err := l.Client.Do(req)
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
	return l.answer(resp.StatusCode, body, resp.Header.Get)
}

// answer interprets the Invoke API's answer.
func (l *InvokeAPI) answer(status int, body []byte, header func(string) string) ([]byte, error) {
	if status < 200 || status > 299 {
		typ := header("X-Amzn-ErrorType")
		if i := strings.IndexByte(typ, ':'); i >= 0 {
			typ = typ[:i]
		}
		if typ == "" {
			typ = "HTTP " + http.StatusText(status)
		}
		return nil, failf("lambda invoke answered %d %s", status, typ)
	}
	if ft := header("X-Amz-Function-Error"); ft != "" {
		return nil, parseFunctionError(body, ft)
	}
	return body, nil
}
