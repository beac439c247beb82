package config

import (
	"strings"
	"testing"
)

// TestEnvKeysRefuseSecrets: every *_env key must hold the name of an
// environment variable. A secret pasted there by mistake is a problem at
// that key, and the problem does not repeat it, as for bearer_tokens_env and
// the integrations' *_env keys. Otherwise the value is accepted and later
// echoed by "environment variable VALUE is unset or empty".
func TestEnvKeysRefuseSecrets(t *testing.T) {
	const secret = "s3cr3t-V@lue!"
	tests := map[string]struct{ yaml, path string }{
		"jwt secret_env": {
			"authorizer: {type: jwt, jwt: {secret_env: \"" + secret + "\", algorithms: [HS256]}}\n",
			"authorizer.jwt.secret_env"},
		"apikey keys_env": {
			"authorizer: {type: apikey, apikey: {keys_env: \"" + secret + "\"}}\n",
			"authorizer.apikey.keys_env"},
		"redis registry password_env": {
			"registry: {type: redis, redis: {url: \"redis://127.0.0.1:6379/0\", password_env: \"" + secret + "\"}}\n",
			"registry.redis.password_env"},
		"nats registry token_env": {
			"registry: {type: nats, nats: {url: \"nats://127.0.0.1:4222\", token_env: \"" + secret + "\"}}\n",
			"registry.nats.token_env"},
		"lambda secret_access_key_env": {
			"routes:\n  $default:\n    integration: {type: lambda, lambda: {function_name: f, access_key_id: AKIAIOSFODNN7EXAMPLE, secret_access_key_env: \"" + secret + "\"}}\n",
			"routes.$default.integration.lambda.secret_access_key_env"},
		"lambda session_token_env": {
			"routes:\n  $default:\n    integration: {type: lambda, lambda: {function_name: f, access_key_id: AKIAIOSFODNN7EXAMPLE, secret_access_key_env: K, session_token_env: \"" + secret + "\"}}\n",
			"routes.$default.integration.lambda.session_token_env"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse accepted %s holding a value that is not an environment variable name", tt.path)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error repeats the value: %v", err)
			}
			if !strings.Contains(err.Error(), tt.path+": ") {
				t.Errorf("want a problem at %s, got %v", tt.path, err)
			}
		})
	}
}

// TestURLProblemsHideCredentials: a URL that is refused is not repeated
// with the password it holds.
func TestURLProblemsHideCredentials(t *testing.T) {
	const password = "hunter2pw"
	tests := map[string]string{
		"nats registry url without scheme":   "registry: {type: nats, nats: {url: \"admin:" + password + "@10.0.0.1:4222\"}}\n",
		"http integration url, wrong scheme": "routes:\n  $default: {integration: {type: http, url: \"htps://admin:" + password + "@10.0.0.1/x\"}}\n",
		"request authorizer url":             "authorizer: {type: request, request: {url: \"ftp://admin:" + password + "@auth.local/\"}}\n",
		"jwks url":                           "authorizer: {type: jwt, jwt: {jwks_url: \"ftp://admin:" + password + "@keys.local/\", algorithms: [RS256]}}\n",
	}
	for name, yaml := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(yaml))
			if err == nil {
				t.Fatal("Parse accepted the URL")
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}
