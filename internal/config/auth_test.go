package config

import "testing"

func TestValidateAuthorizer(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"valid jwt", "authorizer:\n  type: jwt\n  jwt: {secret_env: S, algorithms: [HS256]}", nil},
		{"unknown type", "authorizer:\n  type: iam",
			[]string{`wsgate.yaml:2: authorizer.type: unknown authorizer type "iam"; one of none, jwt, request, lambda, basic, apikey`}},
		{"bad identity source", "authorizer:\n  type: jwt\n  identity_sources: [route.request.body.token]\n  jwt: {secret_env: S, algorithms: [HS256]}",
			[]string{`wsgate.yaml:3: authorizer.identity_sources[0]: "route.request.body.token" is not an identity source; use route.request.querystring.NAME, route.request.header.NAME, route.request.cookie.NAME, stageVariables.NAME or route.request.subprotocol`}},
		{"subprotocol source without subprotocols", "authorizer:\n  type: jwt\n  identity_sources: [route.request.subprotocol]\n  jwt: {secret_env: S, algorithms: [HS256]}",
			[]string{`wsgate.yaml:3: authorizer.identity_sources[0]: route.request.subprotocol needs subprotocols: the list of real protocols the token is offered beside`}},
		{"cookie without origins", "authorizer:\n  type: jwt\n  identity_sources: [route.request.cookie.session]\n  jwt: {secret_env: S, algorithms: [HS256]}",
			[]string{`wsgate.yaml:1: authorizer: cookie-based identity needs origins: without an Origin allow-list any web page can open a connection with the user's cookies (cross-site WebSocket hijacking)`}},
		{"csrf half set", "origins: [\"https://a.example.com\"]\nauthorizer:\n  type: jwt\n  csrf: {cookie: c}\n  jwt: {secret_env: S, algorithms: [HS256]}",
			[]string{`wsgate.yaml:4: authorizer.csrf: set both cookie and query, or neither`}},
		{"jwt without key", "authorizer:\n  type: jwt\n  jwt: {algorithms: [HS256]}",
			[]string{`wsgate.yaml:3: authorizer.jwt: set exactly one of secret_env, secret_file, public_key_file, jwks_url`}},
		{"jwt without algorithms", "authorizer:\n  type: jwt\n  jwt: {secret_env: S}",
			[]string{`wsgate.yaml:3: authorizer.jwt.algorithms: required: the allow-list of signing algorithms, e.g. [HS256] or [RS256]`}},
		{"jwt hmac with public key", "authorizer:\n  type: jwt\n  jwt: {public_key_file: k.pem, algorithms: [HS256]}",
			[]string{`wsgate.yaml:3: authorizer.jwt.algorithms[0]: HS256 needs a shared secret (secret_env or secret_file), not a public key`}},
		{"jwt unknown alg", "authorizer:\n  type: jwt\n  jwt: {secret_env: S, algorithms: [none]}",
			[]string{`wsgate.yaml:3: authorizer.jwt.algorithms[0]: unknown algorithm "none"; one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`}},
		{"request without url", "authorizer:\n  type: request",
			[]string{`wsgate.yaml:1: authorizer.request.url: required for type request`}},
		{"basic without file", "authorizer:\n  type: basic",
			[]string{`wsgate.yaml:1: authorizer.basic.htpasswd_file: required for type basic`}},
		{"apikey without keys", "authorizer:\n  type: apikey",
			[]string{`wsgate.yaml:1: authorizer.apikey: set keys_env or keys_file`}},
		{"bad origin", "origins: [\"app.example.com\"]",
			[]string{`wsgate.yaml:1: origins[0]: "app.example.com" must be scheme://host[:port], optionally https://*.example.com`}},
		{"require on $connect", "routes:\n  $connect:\n    integration: {type: mock}\n    require: {role: admin}",
			[]string{`wsgate.yaml:4: routes.$connect.require: not supported on $connect; rules apply to messages`}},
		{"require single value", "routes:\n  admin:\n    integration: {type: mock}\n    require: {role: admin}", nil},
		{"require list", "routes:\n  admin:\n    integration: {type: mock}\n    require: {role: [admin, ops]}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.in, tt.want...) })
	}
}

func TestRequireDecodesOneOrMore(t *testing.T) {
	c, err := Parse("wsgate.yaml", []byte("routes:\n  a:\n    integration: {type: mock}\n    require: {role: admin, team: [x, y]}"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Routes["a"].Require
	if len(r["role"]) != 1 || r["role"][0] != "admin" || len(r["team"]) != 2 || r["team"][1] != "y" {
		t.Fatalf("require = %v", r)
	}
	if _, err := Parse("wsgate.yaml", []byte("origins: https://a.example.com")); err == nil {
		t.Fatal("a scalar for a plain list was accepted")
	}
}

// TestValidateCacheTTLNeedsIdentitySources: the decision cache is keyed by
// the identity sources' values; a request authorizer has none by default,
// and a cache keyed by nothing would give every client the first one's
// decision.
func TestValidateCacheTTLNeedsIdentitySources(t *testing.T) {
	checkProblems(t, "authorizer:\n  type: request\n  cache_ttl: 1h\n  request: {url: \"http://127.0.0.1:1/auth\"}",
		`wsgate.yaml:3: authorizer.cache_ttl: needs identity_sources that the client sends (not only stageVariables), the values decisions are cached by; without them every client would get the first client's decision`)
	checkProblems(t, "authorizer:\n  type: request\n  cache_ttl: 1h\n  identity_sources: [stageVariables.env]\n  request: {url: \"http://127.0.0.1:1/auth\"}",
		`wsgate.yaml:3: authorizer.cache_ttl: needs identity_sources that the client sends (not only stageVariables), the values decisions are cached by; without them every client would get the first client's decision`)
	checkProblems(t, "authorizer:\n  type: request\n  cache_ttl: 1h\n  identity_sources: [route.request.header.Auth]\n  request: {url: \"http://127.0.0.1:1/auth\"}")
}
