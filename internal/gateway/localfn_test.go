package gateway_test

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// functionsDir is the module of the test functions built by wsgate.
func functionsDir(t *testing.T, name string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "localfn", name))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// isolateCache points the function cache at a temporary directory,
// keeping the Go build cache where it is.
func isolateCache(t *testing.T) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOCACHE", strings.TrimSpace(string(out)))
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
}

// nextFrames reads n text frames.
func nextFrames(c *gt.Client, n int) []string {
	var out []string
	for range n {
		out = append(out, c.NextText())
	}
	return out
}

// TestLocalFunctionsPushThroughTheSDKs runs functions built by wsgate from
// Go packages written only against aws-lambda-go and the AWS SDKs (v1 and
// v2), which push to the caller through PostToConnection at the endpoint a
// function on AWS would use — https://{api_id}.execute-api.{region}.amazonaws.com/{stage},
// or https://{domainName}/{stage} from the event — with nothing but the
// environment wsgate gives them: the generated credentials, HTTPS_PROXY
// and AWS_CA_BUNDLE. The management API requires authentication: a bearer
// token is configured, and the functions sign with SigV4.
func TestLocalFunctionsPushThroughTheSDKs(t *testing.T) {
	isolateCache(t)
	t.Setenv("AWS_SESSION_TOKEN", "wsgate-own-session-token")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	g := gt.Start(t, fmt.Sprintf(`
api_id: abc123
stage: prod
domain_name: ws.example.test
route_selection_expression: "$request.body.action"
routes:
  v2:
    integration:
      type: lambda
      lambda: {build: %q, region: eu-west-1, env: {API_GATEWAY_ID: abc123, STAGE: prod}}
    route_response: true
  v1:
    integration:
      type: lambda
      lambda: {build: %q, env: {API_GATEWAY_ID: abc123, STAGE: prod}}
    route_response: true
  $default:
    integration:
      type: lambda
      lambda: {build: %q, name: envfn, memory_size: 256}
    route_response: true
management:
  auth:
    bearer_tokens_env: WSGATE_TEST_TOKEN
`, functionsDir(t, "pushv2"), functionsDir(t, "pushv1"), functionsDir(t, "slowcrash")))
	c := gt.Dial(t, g.URL, nil)

	for _, tt := range []struct{ msg, push string }{
		{`{"action":"v2","how":"endpoint from the environment"}`, "v2 pushed: "},
		{`{"action":"v2","how":"domain"}`, "v2 pushed: "},
		{`{"action":"v1","how":"endpoint from the environment"}`, "v1 pushed: "},
	} {
		c.Send(tt.msg)
		got := nextFrames(c, 2)
		if got[0] != tt.push+tt.msg || got[1] != "ok" {
			t.Errorf("%s: frames %q, want the push %q then ok", tt.msg, got, tt.push+tt.msg)
		}
	}

	env := func(name string) string {
		t.Helper()
		c.Send("env " + name)
		v, ok := strings.CutPrefix(c.NextText(), name+"=")
		if !ok {
			t.Fatalf("env %s: unexpected answer", name)
		}
		return v
	}
	key, secret := env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")
	if !strings.HasPrefix(key, "AKIA") || len(key) != 20 || len(secret) != 40 {
		t.Errorf("credentials %q / %d-character secret, want a generated AKIA… key and a 40-character secret", key, len(secret))
	}
	for name, want := range map[string]string{
		"AWS_SESSION_TOKEN":               "",
		"AWS_LAMBDA_FUNCTION_NAME":        "envfn",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
	} {
		if got := env(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := env("HTTPS_PROXY"); !strings.HasPrefix(got, "http://127.0.0.1:") {
		t.Errorf("HTTPS_PROXY = %q, want the loopback proxy", got)
	}
	bundle := env("AWS_CA_BUNDLE")
	if fi, err := os.Stat(filepath.Dir(bundle)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("AWS_CA_BUNDLE %q: directory %v %v, want mode 0700", bundle, fi, err)
	}

	// The management API still refuses a call without credentials and
	// accepts the configured bearer token.
	if status, _, body := g.MgmtDo(t, "GET", "/prod/@connections/"+connectionIDOf(t, g), nil, nil); status != 403 {
		t.Errorf("unsigned GET: %d %s, want 403", status, body)
	}
	if status, _, body := g.MgmtDo(t, "GET", "/prod/@connections/"+connectionIDOf(t, g), nil, bearer()); status != 200 {
		t.Errorf("bearer GET: %d %s, want 200", status, body)
	}

	if logs := g.Logs.String(); strings.Contains(logs, secret) {
		t.Errorf("the generated secret reached the log")
	}
	g.Shutdown(t.Context())
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Errorf("CA bundle %s still there after shutdown: %v", bundle, err)
	}
}

func bearer() map[string][]string {
	return map[string][]string{"Authorization": {"Bearer " + gt.TestToken}}
}

// connectionIDOf returns the id of the gateway's only connection, read
// from its log.
func connectionIDOf(t *testing.T, g *gt.Gateway) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(g.Logs.String()))
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "connectionId="); ok {
			id, _, _ := strings.Cut(rest, " ")
			return strings.Trim(id, `"`)
		}
	}
	t.Fatal("no connectionId in the log")
	return ""
}

// TestLocalFunctionEnvOverridesCredentials checks that a config env entry
// wins over the generated credentials.
func TestLocalFunctionEnvOverridesCredentials(t *testing.T) {
	isolateCache(t)
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $default:
    integration:
      type: lambda
      lambda: {build: %q, env: {AWS_ACCESS_KEY_ID: AKIAOWNKEY0000000001}}
    route_response: true
management:
  enabled: false
`, functionsDir(t, "slowcrash")))
	c := gt.Dial(t, g.URL, nil)
	c.Send("env AWS_ACCESS_KEY_ID")
	if got := c.NextText(); got != "AWS_ACCESS_KEY_ID=AKIAOWNKEY0000000001" {
		t.Fatalf("%q, want the config's AWS_ACCESS_KEY_ID", got)
	}
	// Without a management API there is no proxy.
	c.Send("env HTTPS_PROXY")
	if got := c.NextText(); strings.HasPrefix(got, "HTTPS_PROXY=http://127.0.0.1:") {
		t.Fatalf("%q without a management API", got)
	}
}

// TestLocalFunctionTimeoutAndCrash checks that an invocation running past
// the function's timeout, and one whose process exits, give the client
// AWS's Internal server error frame, and that the next invocation works on
// a restarted process.
func TestLocalFunctionTimeoutAndCrash(t *testing.T) {
	isolateCache(t)
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $default:
    integration:
      type: lambda
      lambda: {build: %q, timeout: 1s, concurrency: 1}
    route_response: true
`, functionsDir(t, "slowcrash")))
	c := gt.Dial(t, g.URL, nil)
	for _, word := range []string{"sleep", "crash"} {
		c.Send(word)
		if got := c.NextText(); !strings.Contains(got, `"message": "Internal server error"`) {
			t.Fatalf("%s: frame %q, want AWS's Internal server error frame", word, got)
		}
		c.Send("after " + word)
		if got := c.NextText(); got != "after "+word {
			t.Fatalf("after %s: %q", word, got)
		}
	}
	if logs := g.Logs.String(); !strings.Contains(logs, "Sandbox.Timedout") || !strings.Contains(logs, "Task timed out after 1.00 seconds") {
		t.Errorf("log does not report the timeout as Lambda does:\n%s", logs)
	}
}

// rebuildFunction writes a function module in a temporary directory that
// answers prefix+body: its own go.mod requiring aws-lambda-go at wsgate's
// version and wsgate's go.sum, so that it builds from the module cache
// alone (GOFLAGS=-mod=mod, GOPROXY=off).
func rebuildFunction(t *testing.T) (dir string, write func(src string)) {
	t.Helper()
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOPROXY", "off")
	dir = t.TempDir()
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	version := ""
	for line := range strings.Lines(string(gomod)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/aws/aws-lambda-go" {
			version = f[1]
		}
	}
	if version == "" {
		t.Fatal("wsgate's go.mod does not require aws-lambda-go")
	}
	gosum, err := os.ReadFile(filepath.Join("..", "..", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	var sum strings.Builder
	for line := range strings.Lines(string(gosum)) {
		if strings.HasPrefix(line, "github.com/aws/aws-lambda-go ") {
			sum.WriteString(line)
		}
	}
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.test/rebuildfn\n\ngo 1.26\n\nrequire github.com/aws/aws-lambda-go "+version+"\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "go.sum"), []byte(sum.String()), 0o600))
	return dir, func(src string) {
		t.Helper()
		must(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// answering is a function's source that answers prefix+body.
func answering(prefix string) string {
	return `package main

import (
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: "` + prefix + `" + ev.Body}, nil
}

func main() { lambda.Start(handler) }
`
}

// TestLocalFunctionRebuild changes a function's source while a client stays
// connected: the next invocation answers the new way; a syntax error is
// logged with its file and line and the previous program keeps answering.
func TestLocalFunctionRebuild(t *testing.T) {
	isolateCache(t)
	dir, write := rebuildFunction(t)
	write(answering("first: "))
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $default:
    integration: {type: lambda, lambda: {build: %q}}
    route_response: true
`, dir))
	c := gt.Dial(t, g.URL, nil)
	c.Send("a")
	if got := c.NextText(); got != "first: a" {
		t.Fatalf("before the change: %q", got)
	}

	write(answering("second, rebuilt: "))
	gt.Eventually(t, func() bool { return strings.Contains(g.Logs.String(), "function rebuilt") }, "no rebuild logged")
	c.Send("b")
	if got := c.NextText(); got != "second, rebuilt: b" {
		t.Fatalf("after the rebuild: %q", got)
	}

	write("package main\n\nfunc main() {\n\tthis is not Go\n}\n")
	main := filepath.Join(dir, "main.go")
	gt.Eventually(t, func() bool {
		return strings.Contains(g.Logs.String(), "file="+main+" line=4")
	}, "the syntax error is not logged with its file and line")
	if logs := g.Logs.String(); !strings.Contains(logs, "level=ERROR msg=\"function build error\"") {
		t.Errorf("build error not logged at Error level:\n%s", logs)
	}
	c.Send("c")
	if got := c.NextText(); got != "second, rebuilt: c" {
		t.Fatalf("after a failed rebuild: %q, want the previous program's answer", got)
	}
}

// TestLocalFunctionFirstBuildFails checks that a gateway whose function
// does not compile does not start, and logs the compiler's file and line.
func TestLocalFunctionFirstBuildFails(t *testing.T) {
	isolateCache(t)
	dir, write := rebuildFunction(t)
	write("package main\n\nfunc main() {\n\tundefinedCall()\n}\n")
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
listen: "127.0.0.1:0"
routes:
  $default:
    integration: {type: lambda, lambda: {build: %q}}
`, dir)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &gt.LogBuffer{}
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err == nil || !strings.Contains(err.Error(), "main.go:4") {
		g.Shutdown(t.Context())
		t.Fatalf("Start: %v, want the build error", err)
	}
	g.Close()
	if want := "file=" + filepath.Join(dir, "main.go") + " line=4 column=2 error=\"undefined: undefinedCall\""; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs)
	}
}

// TestLocalFunctionKeyLeavesOpenManagementOpen checks that a local
// function does not turn on authentication of a management API that has
// none (management.auth unset, on loopback): the key wsgate generates for
// local functions is accepted "besides its configured management.auth"
// (README, Local functions), but it was handed to the management API as
// its only SigV4 key, and a SigV4 key makes every call need a credential,
// so every unauthenticated call (wsgate post, the inspector, scripts)
// became 403 Missing Authentication Token as soon as a function was
// configured.
func TestLocalFunctionKeyLeavesOpenManagementOpen(t *testing.T) {
	g := gt.Start(t, `
routes:
  $default:
    integration: {type: lambda, lambda: {command: /bin/sleep, args: ["3600"]}}
`)
	status, _, body := g.MgmtDo(t, "GET", "/@connections", nil, nil)
	if status != 200 {
		t.Fatalf("GET /@connections without credentials on a management API without auth: %d %s, want 200", status, body)
	}
}
