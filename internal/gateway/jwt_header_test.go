package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestJWTIssuedAtAndCritOnTheWire: a token issued in the future beyond
// leeway, and a token with a crit header, are refused at the handshake.
func TestJWTIssuedAtAndCritOnTheWire(t *testing.T) {
	g := gt.Start(t, `
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256], leeway: 30s}
`)
	now := time.Now()
	sign := func(iat time.Time, header map[string]any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u", "exp": now.Add(time.Hour).Unix(), "iat": iat.Unix()})
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString([]byte(gt.TestJWTSecret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name  string
		token string
		want  int
	}{
		{"iat now", sign(now, nil), 101},
		{"iat within leeway", sign(now.Add(10*time.Second), nil), 101},
		{"iat beyond leeway", sign(now.Add(time.Hour), nil), 401},
		{"crit with an unknown extension", sign(now, map[string]any{"crit": []string{"exp-ext"}, "exp-ext": 1}), 401},
		{"crit empty", sign(now, map[string]any{"crit": []string{}}), 401},
		{"crit naming an absent header", sign(now, map[string]any{"crit": []string{"exp-ext"}}), 401},
		{"b64 false", sign(now, map[string]any{"b64": false, "crit": []string{"b64"}}), 401},
		{"b64 true", sign(now, map[string]any{"b64": true, "crit": []string{"b64"}}), 101},
	}
	for _, tc := range cases {
		if got := dialStatus(g.URL+"?access_token="+tc.token, nil); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	for _, tc := range cases {
		for _, part := range strings.Split(tc.token, ".") {
			if len(part) > 8 && strings.Contains(g.Logs.String(), part) {
				t.Fatalf("%s: the token reached the log", tc.name)
			}
		}
	}
}
