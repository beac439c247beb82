package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/integration"
)

type invokerFunc func(context.Context, []byte) ([]byte, error)

func (f invokerFunc) Invoke(ctx context.Context, p []byte) ([]byte, error) { return f(ctx, p) }

func TestLambdaRequestMapping(t *testing.T) {
	allow := func(arn string) string {
		b, _ := json.Marshal(map[string]any{"principalId": "u", "policyDocument": map[string]any{
			"Version": "2012-10-17", "Statement": []any{map[string]any{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": arn}}}})
		return string(b)
	}
	tests := []struct {
		name   string
		result func(arn string) ([]byte, error)
		want   int // 0 means allowed
	}{
		{"allow", func(arn string) ([]byte, error) { return []byte(allow(arn)), nil }, 0},
		{"Unauthorized function error", func(string) ([]byte, error) {
			return nil, &integration.FunctionError{Message: "Unauthorized", Type: "errorString"}
		}, 401},
		{"other function error", func(string) ([]byte, error) {
			return nil, &integration.FunctionError{Message: "boom", Type: "errorString"}
		}, 500},
		{"Unauthorized result", func(string) ([]byte, error) { return []byte(`"Unauthorized"`), nil }, 401},
		{"no policy", func(string) ([]byte, error) { return []byte(`{"principalId":"u"}`), nil }, 403},
		{"invoke failure", func(string) ([]byte, error) { return nil, integration.ErrFailed }, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			a := NewLambdaRequest(config.RequestAuth{}, API{APIID: "api"}, invokerFunc(func(_ context.Context, p []byte) ([]byte, error) {
				got = p
				return tt.result("arn:aws:execute-api:us-east-1:000000000000:api/$default/$connect")
			}))
			id, err := a.Authorize(context.Background(), &Request{ConnectionID: "c1"})
			var ev struct {
				Type      string `json:"type"`
				MethodArn string `json:"methodArn"`
			}
			if json.Unmarshal(got, &ev) != nil || ev.Type != "REQUEST" || ev.MethodArn != a.MethodArn() {
				t.Fatalf("event sent = %s", got)
			}
			if tt.want == 0 {
				if err != nil || id.PrincipalID != "u" {
					t.Fatalf("got %+v, %v", id, err)
				}
				return
			}
			if d := AsDenial(err); err == nil || d.Status != tt.want {
				t.Fatalf("err = %v, want status %d", err, tt.want)
			}
		})
	}
}

// TestLambdaRequestEventShowsSourceValues: the event a lambda authorizer
// gets shows each identity source's value (ReadSources) in its
// single-valued maps, and every value in the multi-valued ones.
func TestLambdaRequestEventShowsSourceValues(t *testing.T) {
	var sources []Source
	for _, e := range []string{"route.request.querystring.Auth", "route.request.header.X-Auth", "route.request.cookie.s", "route.request.header.Cookie"} {
		src, err := ParseSource(e)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, src)
	}
	req := &Request{
		ConnectionID: "c1",
		Query:        url.Values{"Auth": {"q1", "q2"}},
		Header:       http.Header{"X-Auth": {"h1", "h2"}, "Cookie": {"s=c1; t=1", "s=c2"}},
	}
	if _, err := ReadSources(req, sources, nil); err != nil {
		t.Fatal(err)
	}
	var got []byte
	a := NewLambdaRequest(config.RequestAuth{}, API{APIID: "api"}, invokerFunc(func(_ context.Context, p []byte) ([]byte, error) {
		got = p
		return []byte(`"Unauthorized"`), nil
	}))
	_, _ = a.Authorize(context.Background(), req)
	var ev struct {
		Headers                         map[string]string   `json:"headers"`
		MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
		QueryStringParameters           map[string]string   `json:"queryStringParameters"`
		MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters"`
	}
	if err := json.Unmarshal(got, &ev); err != nil {
		t.Fatal(err)
	}
	shown := []string{
		ev.QueryStringParameters["Auth"],
		ev.Headers["X-Auth"],
		sources[2].Value(&Request{Header: http.Header{"Cookie": {ev.Headers["Cookie"]}}}, nil),
		ev.Headers["Cookie"],
	}
	if !slices.Equal(shown, req.SourceValues) || !slices.Equal(req.SourceValues, []string{"q2", "h2", "c2", "s=c1; t=1; s=c2"}) {
		t.Errorf("the event shows %q; the sources' values are %q, want the last ones", shown, req.SourceValues)
	}
	if !slices.Equal(ev.MultiValueQueryStringParameters["Auth"], []string{"q1", "q2"}) || !slices.Equal(ev.MultiValueHeaders["X-Auth"], []string{"h1", "h2"}) {
		t.Errorf("multi-valued maps %q, %q; want every value in order", ev.MultiValueQueryStringParameters["Auth"], ev.MultiValueHeaders["X-Auth"])
	}
}
