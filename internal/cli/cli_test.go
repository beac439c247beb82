package cli_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/cli"
	"github.com/wsgate/wsgate/internal/config"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/integration"
	"github.com/wsgate/wsgate/internal/servicetest"
	"github.com/wsgate/wsgate/internal/tlsconfig/tlstest"
)

func TestMain(m *testing.M) {
	// A FastClient's pool cleaners end by themselves, later.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(integration.PoolCleaner),
		goleak.IgnoreAnyFunction(integration.DateClock))
}

// syncBuffer is an io.Writer that may be written by the command's goroutines
// while the test reads it.
type syncBuffer = gt.LogBuffer

// result is what one run of cli.Main produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run calls cli.Main with args and stdin (nil: empty) and waits for it.
func run(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var stdout, stderr syncBuffer
	code := cli.Main(t.Context(), args, stdin, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// running is a cli.Main call in progress.
type running struct {
	stdout, stderr *syncBuffer
	done           chan int
}

// start calls cli.Main in a goroutine with ctx; wait collects its result.
func start(ctx context.Context, stdin io.Reader, args ...string) *running {
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1)}
	go func() { r.done <- cli.Main(ctx, args, stdin, r.stdout, r.stderr) }()
	return r
}

// wait waits for the command to return, failing the test if it has not
// after a generous deadline.
func (r *running) wait(t *testing.T) result {
	t.Helper()
	select {
	case code := <-r.done:
		return result{code: code, stdout: r.stdout.String(), stderr: r.stderr.String()}
	case <-time.After(20 * time.Second):
		t.Fatalf("command did not return\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		return result{}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freePorts returns n distinct ports on 127.0.0.1 that were free a moment
// ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		p, err := servicetest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, p)
	}
	return ports
}

func TestNoArgsPrintsUsage(t *testing.T) {
	r := run(t, nil)
	if r.code != 2 || !strings.Contains(r.stderr, "Usage:") || r.stdout != "" {
		t.Fatalf("want usage on stderr and exit 2, got %v", r)
	}
}

func TestUnknownCommand(t *testing.T) {
	r := run(t, nil, "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) || !strings.Contains(r.stderr, "Usage:") {
		t.Fatalf("want exit 2 naming the command, got %v", r)
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"help", "-h", "--help"} {
		r := run(t, nil, arg)
		if r.code != 0 || !strings.Contains(r.stdout, "wsgate serve") {
			t.Fatalf("%s: want usage on stdout and exit 0, got %v", arg, r)
		}
	}
	r := run(t, nil, "serve", "-h")
	if r.code != 0 || !strings.Contains(r.stderr, "-c file") {
		t.Fatalf("serve -h: want serve's flags and exit 0, got %v", r)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "extra"},
		{"serve", "-nosuchflag"},
		{"validate", "-nosuchflag"},
		{"connect", "-nosuchflag", "ws://127.0.0.1:1/"},
		{"post", "-nosuchflag", "id", "msg"},
		{"connect"},
		{"connect", "ws://a/", "ws://b/"},
		{"connect", "-H", "no colon", "ws://127.0.0.1:1/"},
		{"post", "only-an-id"},
		{"post", "id", "msg", "extra"},
	} {
		r := run(t, nil, args...)
		if r.code != 2 || r.stderr == "" {
			t.Errorf("%q: want a usage error (exit 2), got %v", args, r)
		}
		if strings.Count(r.stderr, "not defined") > 1 {
			t.Errorf("%q: the flag error is printed twice: %v", args, r)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "-v", "--version"} {
		r := run(t, nil, arg)
		if r.code != 0 || !regexp.MustCompile(`^wsgate \S+\n$`).MatchString(r.stdout) {
			t.Fatalf("%s: got %v", arg, r)
		}
	}
	old := cli.Version
	cli.Version = "v1.2.3"
	t.Cleanup(func() { cli.Version = old })
	if r := run(t, nil, "version"); r.stdout != "wsgate v1.2.3\n" {
		t.Fatalf("with Version set: got %v", r)
	}
}

func TestDefaultConfig(t *testing.T) {
	r := run(t, nil, "default-config")
	if r.code != 0 || r.stdout != string(config.DefaultYAML) {
		t.Fatalf("default-config: exit %d, stdout differs from config.DefaultYAML: %v", r.code, r.stdout != string(config.DefaultYAML))
	}
	// What it prints is a config validate accepts.
	path := writeFile(t, "wsgate.yaml", r.stdout)
	if v := run(t, nil, "validate", "-c", path); v.code != 0 || v.stdout != path+": ok\n" {
		t.Fatalf("validate of the printed default: %v", v)
	}
}

func TestValidateEmbeddedDefault(t *testing.T) {
	r := run(t, nil, "validate")
	if r.code != 0 || r.stdout != "embedded default config: ok\n" {
		t.Fatalf("got %v", r)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	path := writeFile(t, "bad.yaml", `# one problem of each kind
listen: "127.0.0.1:8080"
colour: blue
shutdown_timeout: soon
route_selection_expression: "$request.header.x"
routes:
  $connect:
    integration: {type: mock}
    route_response: true
  $default:
    integration:
      type: http
      url: "ftp://example.com/events"
`)
	type problem struct {
		line int
		text string
	}
	want := []problem{
		{3, `unknown key "colour"`},
		{4, `shutdown_timeout: want a duration`},
		{5, `route_selection_expression: `},
		{9, `routes.$connect.route_response: not supported on $connect`},
		{13, `routes.$default.integration.url: "ftp://example.com/events" must be an absolute http:// or https:// URL`},
	}
	r := run(t, nil, "validate", "-c", path)
	if r.code != 1 {
		t.Fatalf("want exit 1, got %v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, path+":") || !regexp.MustCompile(`^:\d+: `).MatchString(strings.TrimPrefix(l, path)) {
			t.Errorf("problem line without file:LINE: %q", l)
		}
	}
	var missing []problem
	for _, p := range want {
		prefix := fmt.Sprintf("%s:%d: ", path, p.line)
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) && strings.Contains(l, p.text) {
				found = true
			}
		}
		if !found {
			missing = append(missing, p)
		}
	}
	for _, p := range missing {
		t.Errorf("no problem reported at line %d containing %q", p.line, p.text)
	}
	if len(lines) != len(want) {
		t.Errorf("%d problem lines, want %d", len(lines), len(want))
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("%d problem(s) found", len(want))) {
		t.Errorf("stderr does not give the count")
	}
	if t.Failed() {
		t.Log(r)
	}
}

func TestValidateExpressionAlone(t *testing.T) {
	path := writeFile(t, "expr.yaml", "stage: prod\nroute_selection_expression: \"$request.header.x\"\n")
	r := run(t, nil, "validate", "-c", path)
	want := path + `:2: route_selection_expression: `
	if r.code != 1 || !strings.HasPrefix(r.stdout, want) || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("want one problem starting %q, got %v", want, r)
	}
}

// exampleYAML is internal/config/example.yaml.
func exampleYAML(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "config", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestValidateExample(t *testing.T) {
	// The example names an absolute token file; point it at one that exists.
	// The replacement keeps every line where it was.
	tokens := writeFile(t, "management-tokens", "# tokens\nexample-token\n")
	const name = "/etc/wsgate/management-tokens"
	text := exampleYAML(t)
	if !strings.Contains(text, name) {
		t.Fatalf("example.yaml no longer names %s; update this test", name)
	}
	// Its local Lambda program must exist; any executable will do, since
	// validate does not start it.
	const program = "./bin/moderate"
	if !strings.Contains(text, program) {
		t.Fatalf("example.yaml no longer names %s; update this test", program)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// And its NATS credentials file.
	creds := writeFile(t, "nats.creds", "-----BEGIN NATS USER JWT-----\n")
	const credsName = "/etc/wsgate/nats.creds"
	if !strings.Contains(text, credsName) {
		t.Fatalf("example.yaml no longer names %s; update this test", credsName)
	}
	// And its Go function's directory; validate does not build it.
	const functionDir = "./functions/translate"
	if !strings.Contains(text, functionDir) {
		t.Fatalf("example.yaml no longer names %s; update this test", functionDir)
	}
	text = strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(text, name, tokens), program, exe), credsName, creds)
	text = strings.ReplaceAll(text, functionDir, t.TempDir())
	// And its TLS certificates, keys and client CAs.
	const tlsDir = "/etc/wsgate/tls"
	if !strings.Contains(text, tlsDir) {
		t.Fatalf("example.yaml no longer names %s; update this test", tlsDir)
	}
	text = strings.ReplaceAll(text, tlsDir, exampleTLSFiles(t))
	path := writeFile(t, "example.yaml", text)
	t.Setenv("WSGATE_MGMT_TOKEN", "change-me")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID0001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
	t.Setenv("AWS_SESSION_TOKEN", "example-session")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "")
	t.Setenv("WSGATE_SIGV4_SECRET", "example-sigv4-secret")
	t.Setenv("WSGATE_REDIS_PASSWORD", "example-redis-password")
	// Nothing listens there; validate does not wait for it.
	t.Setenv("NATS_URL", "nats://127.0.0.1:1")
	t.Setenv("NATS_TOKEN", "example-nats-token")
	t.Setenv("REDIS_PASSWORD", "example-redis-password")
	// Nothing listens there either.
	t.Setenv("WSGATE_POSTGRES_DSN", "postgres://wsgate:example-pg-password@127.0.0.1:1/app")
	t.Setenv("AMQP_URL", "amqp://wsgate:example-password@127.0.0.1:1/")
	r := run(t, nil, "validate", "-c", path)
	if r.code != 0 || r.stdout != path+": ok\n" {
		t.Fatalf("want ok, got %v", r)
	}
}

// exampleSecrets are the environment variables example.yaml names.
var exampleSecrets = []string{"WSGATE_MGMT_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EVENTBRIDGE", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "WSGATE_SIGV4_SECRET", "WSGATE_REDIS_PASSWORD",
	"NATS_URL", "NATS_TOKEN", "REDIS_PASSWORD", "WSGATE_POSTGRES_DSN", "AMQP_URL"}

// TestValidateExampleWithoutSecrets checks that validate accepts the example
// where its secrets, its Lambda program and its Go function are not, listing each of them,
// and that serve and validate -strict refuse it.
func TestValidateExampleWithoutSecrets(t *testing.T) {
	path := filepath.Join("..", "config", "example.yaml")
	for _, env := range exampleSecrets {
		t.Setenv(env, "")
	}
	lacking := []string{"WSGATE_MGMT_TOKEN", "/etc/wsgate/management-tokens", "AWS_SECRET_ACCESS_KEY", "WSGATE_SIGV4_SECRET", "./bin/moderate", "WSGATE_REDIS_PASSWORD",
		"NATS_URL", "NATS_TOKEN", "/etc/wsgate/nats.creds", "REDIS_PASSWORD", "WSGATE_POSTGRES_DSN",
		"routes.checkout.integration.secret_access_key_env", "AMQP_URL", "routes.translate-local.integration.lambda.build",
		"routes.signal.integration.credentials: environment variable AWS_ACCESS_KEY_ID", "routes.signal.integration.credentials: environment variable AWS_SECRET_ACCESS_KEY",
		"tls.cert_file", "tls.client_ca_file", "management.tls.cert_file", "management.tls.client_ca_file"}
	line := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:\d+: (tls\.|management\.tls\.|management\.auth|routes\.[a-z-]+\.integration|registry\.redis)`)
	checkLines := func(t *testing.T, lines []string, r result) {
		t.Helper()
		for _, s := range lacking {
			if !strings.Contains(strings.Join(lines, "\n"), s) {
				t.Errorf("output does not name %s: %v", s, r)
			}
		}
		for _, l := range lines {
			if !line.MatchString(l) {
				t.Errorf("line without file:LINE: and its key: %q", l)
			}
		}
	}

	r := run(t, nil, "validate", "-c", path)
	head := path + ": ok; missing on this machine, and needed by serve:"
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || lines[0] != head || len(lines) != 1+len(lacking) {
		t.Fatalf("want exit 0, %q and %d lines, got %v", head, len(lacking), r)
	}
	checkLines(t, lines[1:], r)

	r = run(t, nil, "validate", "-strict", "-c", path)
	if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("%d problem(s) found", len(lacking))) {
		t.Fatalf("validate -strict: want exit 1 and %d problems, got %v", len(lacking), r)
	}
	checkLines(t, strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"), r)

	r = serveOnce(t, path)
	if r.code != 1 {
		t.Fatalf("serve: want exit 1, got %v", r)
	}
	for _, s := range lacking {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("serve does not name %s: %v", s, r)
		}
	}
}

// serveOnce runs serve -c path with a cancelled context: a serve that
// accepts the config stops at once instead of serving.
func serveOnce(t *testing.T, path string) result {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout, stderr syncBuffer
	code := cli.Main(ctx, []string{"serve", "-c", path}, strings.NewReader(""), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestValidateMissingOnThisMachine covers each environment variable, file and
// program a config can name: validate accepts a config when it is missing and
// lists it, validate -strict and serve refuse the config.
func TestValidateMissingOnThisMachine(t *testing.T) {
	const env = "WSGATE_TEST_UNSET"
	t.Setenv(env, "")
	dir := t.TempDir()
	gone := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name, yaml, key, missing string
	}{
		{"jwt secret_env", "authorizer: {type: jwt, jwt: {secret_env: " + env + ", algorithms: [HS256]}}",
			"authorizer.jwt.secret_env", env},
		{"jwt secret_file", "authorizer: {type: jwt, jwt: {secret_file: " + gone("secret") + ", algorithms: [HS256]}}",
			"authorizer.jwt.secret_file", gone("secret")},
		{"jwt public_key_file", "authorizer: {type: jwt, jwt: {public_key_file: " + gone("key.pem") + ", algorithms: [RS256]}}",
			"authorizer.jwt.public_key_file", gone("key.pem")},
		{"basic htpasswd_file", "authorizer: {type: basic, basic: {htpasswd_file: " + gone("htpasswd") + "}}",
			"authorizer.basic.htpasswd_file", gone("htpasswd")},
		{"apikey keys_env", "authorizer: {type: apikey, apikey: {keys_env: " + env + "}}",
			"authorizer.apikey.keys_env", env},
		{"apikey keys_file", "authorizer: {type: apikey, apikey: {keys_file: " + gone("keys") + "}}",
			"authorizer.apikey.keys_file", gone("keys")},
		{"lambda authorizer command", "authorizer: {type: lambda, lambda: {command: " + gone("authorizer") + "}}",
			"authorizer.lambda.command", gone("authorizer")},
		{"bearer_tokens_env", "management: {listen: \"127.0.0.1:0\", auth: {bearer_tokens_env: " + env + "}}",
			"management.auth.bearer_tokens_env", env},
		{"bearer_tokens_file", "management: {listen: \"127.0.0.1:0\", auth: {bearer_tokens_file: " + gone("tokens") + "}}",
			"management.auth.bearer_tokens_file", gone("tokens")},
		{"sigv4 secret_access_key_env", "management: {listen: \"127.0.0.1:0\", auth: {sigv4: {access_key_id: AKIAEXAMPLEKEY00001, secret_access_key_env: " + env + "}}}",
			"management.auth.sigv4.secret_access_key_env", env},
		{"sigv4 secret_access_key_file", "management: {listen: \"127.0.0.1:0\", auth: {sigv4: {access_key_id: AKIAEXAMPLEKEY00001, secret_access_key_file: " + gone("sigv4") + "}}}",
			"management.auth.sigv4.secret_access_key_file", gone("sigv4")},
		{"lambda secret_access_key_env", "routes: {$default: {integration: {type: lambda, lambda: {function_name: f, access_key_id: AKIAEXAMPLEKEY00001, secret_access_key_env: " + env + "}}}}",
			"routes.$default.integration.lambda.secret_access_key_env", env},
		{"lambda command path", "routes: {$default: {integration: {type: lambda, lambda: {command: " + gone("handler") + "}}}}",
			"routes.$default.integration.lambda.command", gone("handler")},
		{"lambda command name", "routes: {$default: {integration: {type: lambda, lambda: {command: wsgate-test-no-such-program}}}}",
			"routes.$default.integration.lambda.command", "wsgate-test-no-such-program"},
		{"lambda build directory", "routes: {$default: {integration: {type: lambda, lambda: {build: " + gone("function") + "}}}}",
			"routes.$default.integration.lambda.build", gone("function")},
		{"lambda authorizer build directory", "authorizer: {type: lambda, lambda: {build: " + gone("authorizer") + "}}",
			"authorizer.lambda.build", gone("authorizer")},
		{"redis password_env", "registry: {type: redis, redis: {url: \"redis://127.0.0.1:1/0\", password_env: " + env + "}}",
			"registry.redis.password_env", env},
		{"nats token_env", "registry: {type: nats, nats: {url: \"nats://127.0.0.1:1\", token_env: " + env + "}}",
			"registry.nats.token_env", env},
		{"nats credentials_file", "registry: {type: nats, nats: {url: \"nats://127.0.0.1:1\", credentials_file: " + gone("nats.creds") + "}}",
			"registry.nats", gone("nats.creds")},
		{"acme ca_file", "tls: {acme: {domains: [ws.example.com], cache_dir: " + dir + ", ca_file: " + gone("acme-ca.pem") + "}}",
			"tls.acme.ca_file", gone("acme-ca.pem")},
		{"acme eab_hmac_key_env", "tls: {acme: {domains: [ws.example.com], cache_dir: " + dir + ", eab_key_id: kid, eab_hmac_key_env: " + env + "}}",
			"tls.acme.eab_hmac_key_env", env},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "wsgate.yaml", "listen: \"127.0.0.1:0\"\n"+tt.yaml+"\n")
			want := path + ":2: " + tt.key + ": "
			r := run(t, nil, "validate", "-c", path)
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if r.code != 0 || len(lines) != 2 || lines[0] != path+": ok; missing on this machine, and needed by serve:" ||
				!strings.HasPrefix(lines[1], want) || !strings.Contains(lines[1], tt.missing) {
				t.Errorf("validate: want exit 0 and %s…%s, got %v", want, tt.missing, r)
			}
			r = run(t, nil, "validate", "-strict", "-c", path)
			if r.code != 1 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, tt.missing) {
				t.Errorf("validate -strict: want exit 1 and %s…%s, got %v", want, tt.missing, r)
			}
			r = serveOnce(t, path)
			if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, tt.missing) {
				t.Errorf("serve: want exit 1 and %s…%s, got %v", want, tt.missing, r)
			}
		})
	}
}

// TestValidateACME checks that validate reports bad tls.acme settings at
// their lines, all at once, and writes nothing to the cache directory.
func TestValidateACME(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "acme")
	path := writeFile(t, "wsgate.yaml", `tls:
  cert_file: c.pem
  key_file: k.pem
  acme:
    domains: [ws.example.com]
management:
  tls:
    acme:
      domains: ['*.example.com']
`)
	r := run(t, nil, "validate", "-c", path)
	want := path + ":4: tls.acme: cannot be set with tls.cert_file and key_file: the certificate comes from the files or from ACME; remove one\n" +
		path + ":8: management.tls.acme: ACME serves the client listener only: the CA checks the domain on port 443 (or 80), not on the management port; give management.tls.cert_file and management.tls.key_file\n"
	if r.code != 1 || r.stdout != want {
		t.Fatalf("validate: want exit 1 and\n%s\ngot %v", want, r)
	}

	path = writeFile(t, "wsgate.yaml", "tls:\n  acme:\n    domains: [ws.example.com, localhost]\n    directory_url: http://acme.example.net/dir\n    cache_dir: "+cache+"\n")
	r = run(t, nil, "validate", "-c", path)
	want = path + ":3: tls.acme.domains[1]: \"localhost\" must have at least two labels (example.com); a CA does not issue for a single label\n" +
		path + ":4: tls.acme.directory_url: must be an https:// URL without credentials, e.g. https://acme-v02.api.letsencrypt.org/directory\n"
	if r.code != 1 || r.stdout != want {
		t.Fatalf("validate: want exit 1 and\n%s\ngot %v", want, r)
	}

	path = writeFile(t, "wsgate.yaml", "listen: \"127.0.0.1:0\"\ntls:\n  acme:\n    domains: [ws.example.com]\n    cache_dir: "+cache+"\n")
	if r := run(t, nil, "validate", "-c", path); r.code != 0 || r.stdout != path+": ok\n" {
		t.Fatalf("validate of a good tls.acme: %v", r)
	}
	if _, err := os.Stat(cache); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("validate created the cache directory: %v", err)
	}
}

// TestValidateBuildWithoutGo checks that a lambda build on a machine
// without the go command is missing there, not a problem, and that serve
// refuses it; a build path that is a file is a problem.
func TestValidateBuildWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	path := writeFile(t, "wsgate.yaml", "listen: \"127.0.0.1:0\"\nroutes: {$default: {integration: {type: lambda, lambda: {build: "+dir+"}}}}\n")
	want := path + ":2: routes.$default.integration.lambda.build: "
	r := run(t, nil, "validate", "-c", path)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], want) || !strings.Contains(lines[1], "Go toolchain") {
		t.Errorf("validate: want exit 0 and %s… Go toolchain, got %v", want, r)
	}
	if r := serveOnce(t, path); r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("serve: want exit 1 and %s, got %v", want, r)
	}
	file := writeFile(t, "main.go", "package main\n")
	path = writeFile(t, "wsgate.yaml", "listen: \"127.0.0.1:0\"\nroutes: {$default: {integration: {type: lambda, lambda: {build: "+file+"}}}}\n")
	if r := run(t, nil, "validate", "-c", path); r.code != 1 || !strings.Contains(r.stdout, "is not a directory") {
		t.Errorf("validate with a file as build: want exit 1 and is not a directory, got %v", r)
	}
}

// TestValidateMissingIsNotAProblemElsewhere checks that what a config names
// and this machine has, but wrong, stays a problem, as does a mistake in a
// config that also names something missing.
func TestValidateMissingIsNotAProblemElsewhere(t *testing.T) {
	t.Setenv("WSGATE_TEST_UNSET", "")
	htpasswd := writeFile(t, "htpasswd", "alice:not-a-bcrypt-hash\n")
	tokens := writeFile(t, "tokens", "# no token\n")
	for _, tt := range []struct{ yaml, problem string }{
		{"authorizer: {type: basic, basic: {htpasswd_file: " + htpasswd + "}}", ":2: authorizer.basic.htpasswd_file: "},
		{"management: {listen: \"127.0.0.1:0\", auth: {bearer_tokens_file: " + tokens + "}}", ":2: management.auth.bearer_tokens_file: "},
		{"limits: {idle_timeout: -1s}\nmanagement: {listen: \"127.0.0.1:0\", auth: {bearer_tokens_env: WSGATE_TEST_UNSET}}", ":2: limits.idle_timeout: "},
	} {
		path := writeFile(t, "wsgate.yaml", "listen: \"127.0.0.1:0\"\n"+tt.yaml+"\n")
		r := run(t, nil, "validate", "-c", path)
		if r.code != 1 || !strings.HasPrefix(r.stdout, path+tt.problem) || !strings.Contains(r.stderr, "1 problem(s) found") {
			t.Errorf("%s: want exit 1 and one problem %s, got %v", tt.yaml, tt.problem, r)
		}
	}
}

func TestValidateMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	r := run(t, nil, "validate", "-c", path)
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, path) || !strings.Contains(r.stdout+r.stderr, "no such file") {
		t.Fatalf("want exit 1 naming the file and why, got %v", r)
	}
	// The positional form reads the same file.
	if r := run(t, nil, "validate", path); r.code != 1 || !strings.Contains(r.stdout, path) {
		t.Fatalf("validate FILE: got %v", r)
	}
}

// TestEmptyConfigFile checks that serve and validate refuse a config file
// holding no configuration instead of running on the defaults.
func TestEmptyConfigFile(t *testing.T) {
	for _, content := range []string{"", " \n\t\n", "# wsgate.yaml\n# to do\n", "---\n"} {
		path := writeFile(t, "wsgate.yaml", content)
		// Cancelled: a serve that accepted the file returns at once
		// instead of serving.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for _, cmd := range []string{"serve", "validate"} {
			var stdout, stderr syncBuffer
			code := cli.Main(ctx, []string{cmd, "-c", path}, strings.NewReader(""), &stdout, &stderr)
			r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
			want := path + ": the file holds no configuration"
			if r.code != 1 || !strings.Contains(r.stdout+r.stderr, want) {
				t.Errorf("%s of %q: want exit 1 and %q, got %v", cmd, content, want, r)
			}
		}
	}
}

func TestServeRefusesUnauthenticatedPublicManagement(t *testing.T) {
	port := freePorts(t, 1)[0]
	path := writeFile(t, "public.yaml", fmt.Sprintf(`listen: "127.0.0.1:%d"
management:
  listen: "0.0.0.0:0"
`, port))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := start(ctx, strings.NewReader(""), "serve", "-c", path).wait(t)
	want := path + ":3: management.listen: non-loopback address requires management.auth"
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("want exit 1 with %q, got %v", want, r)
	}
	// Nothing was listening: the client port is still free.
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("client port taken after a refused serve: %v", err)
	}
	ln.Close()
}

func TestServeBadConfig(t *testing.T) {
	path := writeFile(t, "bad.yaml", "listen: \":8080\"\nlimits:\n  idle_timeout: -1s\n")
	r := run(t, nil, "serve", "-c", path)
	if r.code != 1 || !strings.Contains(r.stderr, path+":3: limits.idle_timeout: ") {
		t.Fatalf("got %v", r)
	}
}

// TestServeRunsUntilCancelled serves on free ports, echoes through the
// gateway and returns 0 once its context is cancelled.
func TestServeRunsUntilCancelled(t *testing.T) {
	ports := freePorts(t, 2)
	client, mgmt := ports[0], ports[1]
	path := writeFile(t, "serve.yaml", fmt.Sprintf("listen: \"127.0.0.1:%d\"\nmanagement: {listen: \"127.0.0.1:%d\"}\nshutdown_timeout: 5s\n", client, mgmt))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := start(ctx, nil, "serve", "-c", path)
	url := fmt.Sprintf("ws://127.0.0.1:%d/", client)
	gt.Eventually(t, func() bool {
		select {
		case code := <-srv.done:
			t.Fatalf("serve returned %d\n%s", code, srv.stderr)
		default:
		}
		conn, _, err := gt.TryDial(url, nil)
		if err != nil {
			return false
		}
		_ = conn.CloseNow()
		return true
	}, "serve to accept clients")
	c := gt.Dial(t, url, nil)
	c.Send("ping")
	if got := c.NextText(); got != "ping" {
		t.Fatalf("echo %q", got)
	}
	cancel()
	c.ExpectClose(1001)
	if r := srv.wait(t); r.code != 0 {
		t.Fatalf("serve after cancel: %v", r)
	}
}

func TestConnectEchoes(t *testing.T) {
	g := gt.Start(t, "")
	stdin, w := io.Pipe()
	defer w.Close()
	c := start(t.Context(), stdin, "connect", g.URL)
	for _, msg := range []string{"hello", `{"action":"x","n":1}`} {
		if _, err := io.WriteString(w, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		gt.Eventually(t, func() bool { return strings.Contains(c.stdout.String(), "< "+msg+"\n") }, "echo of %q; stdout %q", msg, c.stdout)
	}
	w.Close()
	r := c.wait(t)
	if r.code != 0 {
		t.Fatalf("want exit 0 when stdin ends, got %v", r)
	}
	if r.stdout != "< hello\n< {\"action\":\"x\",\"n\":1}\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "connected to "+g.URL) || !strings.Contains(r.stderr, "closed: 1000") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

// TestConnectPipedStdin: stdin that ends at once, as from a pipe
// (`printf 'hello\nworld\n' | wsgate connect URL`), prints the replies to
// what it sent, closes with 1000 and exits 0, every time: the client waits
// for the replies before its close frame, and the gateway sends replies in
// flight before its own.
func TestConnectPipedStdin(t *testing.T) {
	g := gt.Start(t, "")
	for i := range 30 {
		r := run(t, strings.NewReader("hello\nworld\n"), "connect", g.URL)
		if r.code != 0 || !strings.Contains(r.stderr, "closed: 1000") {
			t.Fatalf("run %d: want exit 0 after a 1000 close, got %v", i+1, r)
		}
		if r.stdout != "< hello\n< world\n" {
			t.Fatalf("run %d: stdout %q, want both echoes", i+1, r.stdout)
		}
	}
}

// TestConnectWait: -wait bounds the wait for replies when the route sends
// none, and -wait 0 closes as soon as stdin ends; a negative -wait is a
// usage error.
func TestConnectWait(t *testing.T) {
	g := gt.Start(t, `
routes:
  $default: {integration: {type: mock}}
`)
	for _, wait := range []string{"0", "100ms"} {
		r := run(t, strings.NewReader("no reply\n"), "connect", "-wait", wait, g.URL)
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "closed: 1000") {
			t.Fatalf("-wait %s: want exit 0 after a 1000 close and no output, got %v", wait, r)
		}
	}
	r := run(t, nil, "connect", "-wait", "-1s", g.URL)
	if r.code != 2 || !strings.Contains(r.stderr, "-wait") {
		t.Fatalf("-wait -1s: want a usage error naming -wait, got %v", r)
	}
}

func TestConnectEndsWhenServerCloses(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $connect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock}, route_response: true}
`, b.URLFor("/connect")))
	stdin, w := io.Pipe()
	defer w.Close()
	c := start(t.Context(), stdin, "connect", g.URL)
	id := b.ConnectionID(t, "/connect", 0)
	gt.Eventually(t, func() bool {
		status, _, _ := g.MgmtDo(t, "DELETE", "/@connections/"+strings.ReplaceAll(id, "=", "%3D"), nil, nil)
		return status == 204
	}, "DELETE of the connection")
	r := c.wait(t)
	if r.code != 0 || !strings.Contains(r.stderr, "closed: 1000") {
		t.Fatalf("want exit 0 after the server's 1000, got %v", r)
	}
}

// TestConnectRefused: a $connect integration that answers 403 refuses the
// handshake; the same client with the header the backend wants, and a
// subprotocol the backend picks, gets in.
func TestConnectRefused(t *testing.T) {
	b := gt.NewBackend(t)
	b.On("/connect", func(e gt.Event) gt.Reply {
		if e.Headers["X-Let-In"] != "yes" {
			return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 403}}
		}
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200,
			Headers: map[string]string{"Sec-WebSocket-Protocol": "chat"}}}
	})
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $connect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock}, route_response: true}
`, b.URLFor("/connect")))
	r := run(t, strings.NewReader("never sent\n"), "connect", g.URL)
	if r.code != 1 || !strings.Contains(r.stderr, "handshake refused: 403") {
		t.Fatalf("want exit 1 with the refusal, got %v", r)
	}
	r = run(t, nil, "connect", "-H", "X-Let-In: yes", "-subprotocol", "other, chat", g.URL)
	if r.code != 0 || !strings.Contains(r.stderr, "(subprotocol chat)") {
		t.Fatalf("with the header: want exit 0 on subprotocol chat, got %v", r)
	}
	if got := b.Events("/connect")[1].Headers["Sec-WebSocket-Protocol"]; got != "other,chat" {
		t.Fatalf("$connect saw Sec-WebSocket-Protocol %q", got)
	}
}

func TestConnectUnreachable(t *testing.T) {
	r := run(t, nil, "connect", fmt.Sprintf("ws://127.0.0.1:%d/?access_token=s3cret", freePorts(t, 1)[0]))
	if r.code != 1 || !strings.Contains(r.stderr, "connect: connection refused") {
		t.Fatalf("want exit 1 with a dial error, got %v", r)
	}
	if strings.Contains(r.stderr, "s3cret") {
		t.Fatalf("the dial error shows the token: %s", r.stderr)
	}
}

// postGateway starts a gateway whose $connect goes to a recording backend,
// connects a client and returns both with the client's connection id.
func postGateway(t *testing.T, extra string) (*gt.Gateway, *gt.Client, string) {
	t.Helper()
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
stage: prod
routes:
  $connect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock}, route_response: true}
%s`, b.URLFor("/connect"), extra))
	c := gt.Dial(t, g.URL, nil)
	// The echo proves the gateway has finished opening the connection; see
	// TestPostRightAfterConnect.
	c.Send("ready")
	if got := c.NextText(); got != "ready" {
		t.Fatalf("echo %q", got)
	}
	return g, c, b.ConnectionID(t, "/connect", 0)
}

// TestPostRightAfterConnect posts to each connection as soon as its client
// has its 101 response, as a backend would that posts a welcome message.
func TestPostRightAfterConnect(t *testing.T) {
	t.Setenv("WSGATE_MGMT_TOKEN", "")
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $connect: {integration: {type: http, url: %q}}
  $default: {integration: {type: mock}, route_response: true}
`, b.URLFor("/connect")))
	for i := range 20 {
		c := gt.Dial(t, g.URL, nil)
		id := b.ConnectionID(t, "/connect", i)
		r := run(t, nil, "post", "-endpoint", g.MgmtURL, "--", id, "welcome")
		if r.code != 0 {
			t.Fatalf("attempt %d: %v", i+1, r)
		}
		if got := c.NextText(); got != "welcome" {
			t.Fatalf("attempt %d: client received %q", i+1, got)
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
	}
}

func TestPost(t *testing.T) {
	t.Setenv("WSGATE_MGMT_TOKEN", "")
	g, c, id := postGateway(t, "")
	r := run(t, nil, "post", "-endpoint", g.MgmtURL, "--", id, "hello from post")
	if r.code != 0 || r.stdout != "200 OK\n" {
		t.Fatalf("post: %v", r)
	}
	if got := c.NextText(); got != "hello from post" {
		t.Fatalf("client received %q", got)
	}
	// An endpoint with the stage and a trailing slash works too.
	r = run(t, nil, "post", "-endpoint", g.MgmtURL+"/prod/", "--", id, "with stage")
	if r.code != 0 {
		t.Fatalf("post with stage: %v", r)
	}
	if got := c.NextText(); got != "with stage" {
		t.Fatalf("client received %q", got)
	}
}

func TestPostFromStdin(t *testing.T) {
	t.Setenv("WSGATE_MGMT_TOKEN", "")
	g, c, id := postGateway(t, "")
	msg := "line one\nline two, no newline at the end"
	r := run(t, strings.NewReader(msg), "post", "-endpoint", g.MgmtURL, "--", id, "-")
	if r.code != 0 {
		t.Fatalf("post -: %v", r)
	}
	if got := c.NextText(); got != msg {
		t.Fatalf("client received %q, want %q", got, msg)
	}
}

func TestPostUnknownConnection(t *testing.T) {
	t.Setenv("WSGATE_MGMT_TOKEN", "")
	g, _, _ := postGateway(t, "")
	r := run(t, nil, "post", "-endpoint", g.MgmtURL, "AAAAAAAAAAAAAAA=", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "410") || !strings.Contains(r.stderr, "GoneException") {
		t.Fatalf("want exit 1 with 410 GoneException, got %v", r)
	}
}

// TestPostIDStartingWithDash: connection ids use the URL-safe base64
// alphabet, so one in 64 starts with "-".
func TestPostIDStartingWithDash(t *testing.T) {
	t.Setenv("WSGATE_MGMT_TOKEN", "")
	g, _, _ := postGateway(t, "")
	const id = "-AAAAAAAAAAAAAA="
	r := run(t, nil, "post", "-endpoint", g.MgmtURL, "--", id, "x")
	if r.code != 1 || !strings.Contains(r.stderr, "410 Gone GoneException") {
		t.Fatalf("with --: want the management API's 410, got %v", r)
	}
	r = run(t, nil, "post", "-endpoint", g.MgmtURL, id, "x")
	if r.code != 2 || !strings.Contains(r.stderr, "put -- before it") {
		t.Fatalf("without --: want a usage error that suggests --, got %v", r)
	}
}

func TestPostUnreachable(t *testing.T) {
	r := run(t, nil, "post", "-endpoint", fmt.Sprintf("http://127.0.0.1:%d", freePorts(t, 1)[0]), "id", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "wsgate post: post: ") {
		t.Fatalf("want exit 1 with the transport error, got %v", r)
	}
}

func TestPostToken(t *testing.T) {
	g, c, id := postGateway(t, "management: {auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}}")
	t.Setenv("WSGATE_TEST_TOKEN", gt.TestToken)
	t.Setenv("WSGATE_MGMT_TOKEN", "")

	r := run(t, nil, "post", "-endpoint", g.MgmtURL, "--token-env", "WSGATE_TEST_TOKEN", "--", id, "authorized")
	if r.code != 0 {
		t.Fatalf("post with the token: %v", r)
	}
	if got := c.NextText(); got != "authorized" {
		t.Fatalf("client received %q", got)
	}

	r = run(t, nil, "post", "-endpoint", g.MgmtURL, "--", id, "no token")
	if r.code != 1 || !strings.Contains(r.stderr, "403") || !strings.Contains(r.stderr, "ForbiddenException") {
		t.Fatalf("post without a token: want 403, got %v", r)
	}
	t.Setenv("WSGATE_MGMT_TOKEN", "wrong-token")
	r = run(t, nil, "post", "-endpoint", g.MgmtURL, "--", id, "wrong token")
	if r.code != 1 || !strings.Contains(r.stderr, "403") {
		t.Fatalf("post with a wrong token: want 403, got %v", r)
	}
	if strings.Contains(r.stderr, "wrong-token") {
		t.Fatal("the token was printed")
	}

	// Nothing unauthorized reached the client.
	c.Send("marker")
	if got := c.NextText(); got != "marker" {
		t.Fatalf("after refused posts the client received %q", got)
	}
}

// exampleTLSFiles writes the certificates, keys and client CAs example.yaml
// names under /etc/wsgate/tls into a directory and returns it.
func exampleTLSFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "example CA")
	ca.WriteFile(t, dir, "client-ca.pem")
	ca.WriteFile(t, dir, "ops-ca.pem")
	leaf := ca.Server(t, "ws.example.com")
	for _, pair := range [][2]string{{"fullchain.pem", "privkey.pem"}, {"mgmt.pem", "mgmt-key.pem"}} {
		if err := os.WriteFile(filepath.Join(dir, pair[0]), leaf.CertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, pair[1]), leaf.KeyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
