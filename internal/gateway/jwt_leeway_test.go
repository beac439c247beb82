package gateway_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestJWTExpiryWithinLeewayKeepsConnection: a token whose exp passed less
// than leeway ago is accepted at the handshake, as leeway is there for
// clock skew; the connection it opened must not then be closed with 4401
// at once, on the very exp the handshake tolerated. It expires when the
// handshake would have refused the token: exp plus leeway.
func TestJWTExpiryWithinLeewayKeepsConnection(t *testing.T) {
	g := gt.Start(t, `
limits: {ping_interval: 200ms}
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256], leeway: 1h}
`)
	tok := mint(t, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(-2 * time.Second).Unix()})
	c, _, err := gt.TryDial(g.URL+"?access_token="+tok, nil)
	if err != nil {
		t.Fatalf("a token expired within leeway was refused: %v", err)
	}
	defer c.CloseNow()
	// The expiry the gateway keeps for the connection, as a refresh with
	// the same token reports it: exp plus leeway.
	exp := time.Unix(time.Now().Add(-2*time.Second).Unix(), 0)
	refresh := mint(t, jwt.MapClaims{"sub": "u", "exp": exp.Unix()})
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	if err := c.Write(rctx, websocket.MessageText, []byte(`{"action":"$refresh","token":"`+refresh+`"}`)); err != nil {
		t.Fatal(err)
	}
	_, reply, err := c.Read(rctx)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	want := `{"action":"$refresh","expiresAt":"` + exp.Add(time.Hour).UTC().Format(time.RFC3339) + `"}`
	if string(reply) != want {
		t.Fatalf("refresh reply %s, want %s", reply, want)
	}
	// The sweeper runs every 50ms with this ping interval; a connection
	// closed for its token's expiry is closed well within a second.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		t.Fatalf("the connection was closed with %d %q right after a handshake that accepted its token", ce.Code, ce.Reason)
	}
}
