package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Lambda is a Lambda proxy integration: it invokes a function with the
// event and reads its result as API Gateway reads a Lambda proxy result.
//
// A JSON object with a numeric "statusCode" is a proxy response; an empty
// or null result is {statusCode: 200}; any other result is the body of a 200
// response. A function error (the function failed, threw or exited), a
// timeout and a malformed proxy response are failures (ErrFailed), which the
// gateway answers with a 502 on $connect and the "Internal server error"
// frame on messages.
type Lambda struct {
	Invoker Invoker
	// Timeout bounds one invocation; zero means no timeout beyond ctx.
	Timeout time.Duration
}

var _ Integration = (*Lambda)(nil)

// Invoke implements Integration.
func (l *Lambda) Invoke(ctx context.Context, ev *Event) (*Response, error) {
	payload, err := encodeEvent(ev)
	if err != nil {
		return nil, err
	}
	callCtx := ctx
	if l.Timeout > 0 {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, l.Timeout)
		defer cancel()
	}
	out, err := l.Invoker.Invoke(callCtx, payload)
	if err != nil {
		var fe *FunctionError
		switch {
		case errors.As(err, &fe):
			return nil, fmt.Errorf("%w: %w", ErrFailed, fe)
		case errors.Is(err, ErrFailed):
			return nil, err
		case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			return nil, failf("no response within %v", l.Timeout)
		}
		return nil, failf("%v", err)
	}
	trimmed := bytes.TrimSpace(out)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return &Response{StatusCode: 200}, nil
	}
	if resp, ok, err := parseProxyResponse(trimmed); ok {
		if err != nil {
			return nil, failf("malformed proxy response: %v", err)
		}
		return resp, nil
	}
	return &Response{StatusCode: 200, Body: string(out)}, nil
}

// Close closes the invoker when it holds resources, such as a
// LocalRuntime's processes.
func (l *Lambda) Close() error {
	if c, ok := l.Invoker.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
