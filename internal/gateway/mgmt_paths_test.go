package gateway_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestMgmtNonCanonicalPaths calls a live connection through paths with
// empty, "." and ".." segments, as curl sends them (following redirects)
// and as the AWS SDK builds them from an endpoint: each gets 404
// NotFoundException, never a redirect or a 410, and the canonical forms
// keep working.
func TestMgmtNonCanonicalPaths(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, sigv4AndBearerConfig))
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)
	esc := strings.ReplaceAll(id, "=", "%3D")
	bearer := http.Header{"Authorization": {"Bearer " + gt.TestToken}}

	for _, p := range []string{
		"//@connections/" + esc,
		"/prod//@connections/" + esc,
		"/./@connections/" + esc,
		"/prod/./@connections/" + esc,
		"/prod/../@connections/" + esc,
		"/prod/@connections/./" + esc,
		"/prod/@connections/" + esc + "/.",
	} {
		for _, method := range []string{"GET", "POST"} {
			// MgmtDo's client follows redirects, as curl -L does.
			status, hdr, body := g.MgmtDo(t, method, p, strings.NewReader("via "+p), bearer)
			if status != http.StatusNotFound || hdr.Get("X-Amzn-ErrorType") != "NotFoundException" {
				t.Errorf("%s %s: %d %s %q, want 404 NotFoundException", method, p, status, hdr.Get("X-Amzn-ErrorType"), body)
			}
		}
	}
	for _, p := range []string{"/@connections/" + esc, "/prod/@connections/" + esc, "/prod/@connections/" + id} {
		if status, _, body := g.MgmtDo(t, "POST", p, strings.NewReader("via "+p), bearer); status != http.StatusOK {
			t.Fatalf("POST %s: %d %q, want 200", p, status, body)
		}
		if got := c.NextText(); got != "via "+p {
			t.Fatalf("client got %q, want the post through %s", got, p)
		}
	}

	for _, base := range []string{"/prod", "/prod/", "", "/", "//prod", "/prod//", "/./prod", "/prod/.", "/x/../prod"} {
		client := sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "", func(o *apigatewaymanagementapi.Options) {
			o.BaseEndpoint = aws.String(g.MgmtURL + base)
		})
		msg := "sdk via " + base
		_, err := client.PostToConnection(sdkCtx(t), &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(id), Data: []byte(msg)})
		canonical := !strings.Contains(base, "//") && !strings.Contains(base, ".")
		if canonical {
			if err != nil {
				t.Fatalf("endpoint %q: %v", base, err)
			}
			if got := c.NextText(); got != msg {
				t.Fatalf("client got %q, want %q", got, msg)
			}
			continue
		}
		var gone *types.GoneException
		var api smithy.APIError
		if errors.As(err, &gone) || !errors.As(err, &api) || api.ErrorCode() != "NotFoundException" {
			t.Errorf("endpoint %q: %v, want NotFoundException", base, err)
		}
	}

	// None of the refused calls reached the client.
	c.Send(`{"action":"echo","data":"still here"}`)
	if got := c.NextText(); got != `{"action":"echo","data":"still here"}` {
		t.Fatalf("client got %q, want only its echo after the refused calls", got)
	}
}
