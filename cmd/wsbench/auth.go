//go:build linux

package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenSubject is the sub claim of the token wsbench mints; the gateway's
// jwt authorizer makes it every connection's principalId.
const tokenSubject = "wsbench"

// jwtToken mints the one HS256 token every connection of a run presents:
// sub "wsbench", issued now, expiring an hour after the run's -timeout
// (the gateway requires exp by default). secret is the value of the
// environment variable name, which the gateways read too.
func jwtToken(name, secret string, now time.Time, timeout time.Duration) (string, error) {
	if !envNameRE.MatchString(name) {
		return "", fmt.Errorf("-jwt-secret-env %q: not an environment variable name", name)
	}
	if secret == "" {
		return "", fmt.Errorf("-jwt-secret-env %s: the environment variable is empty or not set", name)
	}
	claims := jwt.RegisteredClaims{
		Subject:   tokenSubject,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(timeout + time.Hour)),
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("-jwt-secret-env %s: signing the token: %w", name, err)
	}
	return token, nil
}

// withAccessToken returns t with access_token=token added to its query,
// where the jwt authorizer looks for it by default
// (route.request.querystring.access_token).
func withAccessToken(t target, token string) (target, error) {
	sep := "?"
	if strings.Contains(t.URL, "?") {
		sep = "&"
	}
	return parseTarget(t.URL + sep + "access_token=" + url.QueryEscape(token))
}

// authSummary says how the run's connections authenticate and, when
// wsbench writes the gateway configs, which log level they set.
func (o *commonOptions) authSummary() string {
	s := "authentication: none (no token sent)"
	switch {
	case o.jwtEnv != "" && o.peerBinary != "":
		return fmt.Sprintf("authentication: one HS256 JWT (sub %q, secret from $%s) in the connect command of every connection; config written with log.level %s",
			tokenSubject, o.jwtEnv, o.logLevel)
	case o.jwtEnv != "":
		s = fmt.Sprintf("authentication: one HS256 JWT (sub %q, secret from $%s) as ?access_token= on every connection", tokenSubject, o.jwtEnv)
	}
	if o.gateway != "" && o.config == "" {
		s += fmt.Sprintf("; configs written with log.level %s", o.logLevel)
		if o.jwtEnv != "" {
			s += " and a jwt authorizer"
		}
	}
	return s
}
