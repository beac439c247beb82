package config

import (
	"regexp"
	"time"
)

// IntegrationLambda invokes an AWS Lambda function: through the Lambda
// Invoke API (real AWS Lambda or the Runtime Interface Emulator), or as a
// local program speaking the Lambda Runtime API.
const IntegrationLambda IntegrationType = "lambda"

// AuthLambda runs a REQUEST authorizer that is a Lambda function, reached
// the way a lambda integration is.
const AuthLambda AuthorizerType = "lambda"

// Lambda says how to invoke a Lambda function. Set either Command (a local
// program started by wsgate with AWS_LAMBDA_RUNTIME_API pointing at wsgate)
// or FunctionName (the Lambda Invoke API at Endpoint).
type Lambda struct {
	// FunctionName is the function name or ARN for the Invoke API.
	FunctionName string `yaml:"function_name"`
	// Endpoint is the Lambda API base URL. Default
	// https://lambda.{region}.amazonaws.com.
	Endpoint string `yaml:"endpoint"`
	// Region signs the requests. Default "us-east-1".
	Region string `yaml:"region"`
	// AccessKeyID and SecretAccessKeyEnv sign Invoke requests with SigV4
	// (service lambda). Without them requests are unsigned, as the Runtime
	// Interface Emulator accepts.
	AccessKeyID        string `yaml:"access_key_id"`
	SecretAccessKeyEnv string `yaml:"secret_access_key_env"`
	// SessionTokenEnv names an environment variable with a session token for
	// temporary credentials.
	SessionTokenEnv string `yaml:"session_token_env"`

	// Command is a local program built with a Lambda runtime client (such
	// as aws-lambda-go's lambda.Start); wsgate starts it and serves the
	// Runtime API to it.
	Command string `yaml:"command"`
	// Args are the program's arguments.
	Args []string `yaml:"args"`
	// Env holds extra environment variables for the program.
	Env map[string]string `yaml:"env"`
	// Concurrency is how many copies of the program run, one invocation
	// each at a time. Default 2.
	Concurrency int `yaml:"concurrency"`

	// Build is the directory of a Go main package, built with the local Go
	// toolchain into wsgate's cache and run as Command would be; it is
	// rebuilt, and the next invocation uses the new program, when its
	// sources change. Set Command, Build or FunctionName.
	Build string `yaml:"build"`
	// Name is a local function's name: AWS_LAMBDA_FUNCTION_NAME and the
	// invoked ARN. Default: the base name of Command or Build.
	Name string `yaml:"name"`
	// Timeout is a local function's own timeout, as Lambda's: an invocation
	// running longer fails ("Task timed out") and its process is restarted.
	// Default 0: the integration's timeout alone bounds it.
	Timeout time.Duration `yaml:"timeout"`
	// MemorySize is AWS_LAMBDA_FUNCTION_MEMORY_SIZE of a local function, in
	// MB. Default 128.
	MemorySize int `yaml:"memory_size"`
}

// SigV4Auth lets management callers sign requests with AWS Signature
// Version 4 (service execute-api), as the AWS SDKs do.
type SigV4Auth struct {
	// AccessKeyID is the key id callers sign with.
	AccessKeyID string `yaml:"access_key_id"`
	// SecretAccessKeyEnv and SecretAccessKeyFile name where the secret key
	// is; set one.
	SecretAccessKeyEnv  string `yaml:"secret_access_key_env"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// Region is the signing region callers use. Default "us-east-1".
	Region string `yaml:"region"`
}

// Configured reports whether SigV4 authentication is set up.
func (s SigV4Auth) Configured() bool { return s.AccessKeyID != "" }

var accessKeyPattern = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)

func (l *Lambda) fillDefaults() {
	setDefault(&l.Region, "us-east-1")
	setDefault(&l.Concurrency, 2)
}

func (k *checker) lambda(p string, l Lambda) {
	set := 0
	for _, v := range []string{l.Command, l.Build, l.FunctionName} {
		if v != "" {
			set++
		}
	}
	switch {
	case set > 1:
		k.add(p, "set one of command (a local program), build (a Go package run locally) and function_name (the Invoke API)")
	case set == 0:
		k.add(p, "set command (a local program), build (a Go package run locally) or function_name (the Invoke API)")
	}
	local := l.Command != "" || l.Build != ""
	if !local && (len(l.Args) > 0 || len(l.Env) > 0) {
		k.add(p+".args", "args and env are for command and build")
	}
	if !local && (l.Name != "" || l.Timeout != 0 || l.MemorySize != 0) {
		k.add(p+".name", "name, timeout and memory_size are for command and build")
	}
	if l.Timeout < 0 || l.Timeout != 0 && l.Timeout < time.Second || l.Timeout > 15*time.Minute {
		k.add(p+".timeout", "must be from 1s to 15m (Lambda's), got %v", l.Timeout)
	}
	if l.MemorySize != 0 && (l.MemorySize < 128 || l.MemorySize > 10240) {
		k.add(p+".memory_size", "must be from 128 to 10240 MB (Lambda's), got %d", l.MemorySize)
	}
	if l.Endpoint != "" && !isHTTPURL(l.Endpoint) {
		k.add(p+".endpoint", "%s must be an absolute http:// or https:// URL", showURL(l.Endpoint))
	}
	if (l.AccessKeyID == "") != (l.SecretAccessKeyEnv == "") {
		k.add(p, "set both access_key_id and secret_access_key_env, or neither")
	}
	k.envName(p+".secret_access_key_env", l.SecretAccessKeyEnv)
	k.envName(p+".session_token_env", l.SessionTokenEnv)
	if l.AccessKeyID != "" && !accessKeyPattern.MatchString(l.AccessKeyID) {
		k.add(p+".access_key_id", "does not look like an AWS access key id (16+ upper-case letters and digits)")
	}
	if l.Concurrency < 1 || l.Concurrency > 64 {
		k.add(p+".concurrency", "must be from 1 to 64, got %d", l.Concurrency)
	}
}

func (k *checker) sigv4(p string, s SigV4Auth) {
	if !s.Configured() {
		if s.SecretAccessKeyEnv != "" || s.SecretAccessKeyFile != "" {
			k.add(p+".access_key_id", "required with a secret access key")
		}
		return
	}
	if !accessKeyPattern.MatchString(s.AccessKeyID) {
		k.add(p+".access_key_id", "does not look like an AWS access key id (16+ upper-case letters and digits)")
	}
	if (s.SecretAccessKeyEnv == "") == (s.SecretAccessKeyFile == "") {
		k.add(p, "set one of secret_access_key_env and secret_access_key_file")
	}
	if s.SecretAccessKeyEnv != "" && !envNamePattern.MatchString(s.SecretAccessKeyEnv) {
		k.add(p+".secret_access_key_env", "must be the name of an environment variable, not a key")
	}
	if !regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`).MatchString(s.Region) {
		k.add(p+".region", "%q is not an AWS region name such as us-east-1", s.Region)
	}
}
