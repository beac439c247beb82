package cfntemplate

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// functionProps is the property table of AWS::Serverless::Function and
// AWS::Lambda::Function, and of Globals.Function.
var functionProps = map[string]string{
	"CodeUri": "", "Code": "", "Handler": "", "Runtime": "", "Environment": "", "Timeout": "",
	"MemorySize": "", "FunctionName": "", "Policies": "", "Role": "", "Description": "", "Tags": "",
	"PackageType":                  "",
	"Architectures":                "the local Go toolchain builds for this machine",
	"Events":                       "wsgate invokes functions for the WebSocket API only; other event sources do not run",
	"Tracing":                      "wsgate does not emit X-Ray traces",
	"VpcConfig":                    "local functions use this machine's network",
	"ReservedConcurrentExecutions": "a local function runs lambda.concurrency copies (default 2)",
	"ProvisionedConcurrencyConfig": "a local function runs lambda.concurrency copies (default 2)",
	"AutoPublishAlias":             "wsgate runs the function's current code",
	"AutoPublishCodeSha256":        "wsgate runs the function's current code",
	"DeploymentPreference":         "wsgate runs the function's current code",
	"LoggingConfig":                "local functions log to wsgate's log",
	"DeadLetterQueue":              "wsgate invokes functions synchronously; there are no asynchronous failures to keep",
	"EventInvokeConfig":            "wsgate invokes functions synchronously; there are no asynchronous failures to keep",
	"EphemeralStorage":             "local functions use this machine's disk",
	"KmsKeyArn":                    "environment variables are not encrypted locally",
	"PermissionsBoundary":          "wsgate does not enforce IAM",
	"AssumeRolePolicyDocument":     "wsgate does not enforce IAM",
	"RolePath":                     "wsgate does not enforce IAM",
	"RuntimeManagementConfig":      "the local Go toolchain builds the function",
	"SnapStart":                    "local functions start as processes",
	"CodeSigningConfigArn":         "local code is not signed",
	"FunctionUrlConfig":            "function URLs are not served; the WebSocket API is",
}

// supportedRuntimes are the runtimes of Go functions.
var supportedRuntimes = map[string]bool{"go1.x": true, "provided.al2": true, "provided.al2023": true, "provided": true}

// function maps the function r to a local function, once.
func (b *builder) function(r *resource) (*config.Lambda, bool) {
	if l, done := b.lambdas[r.id]; done {
		return l, l != nil
	}
	b.lambdas[r.id] = nil
	t := b.t
	b.used[r.id] = true
	f := r
	if r.typ == "AWS::Serverless::Function" && t.globals != nil {
		// Globals apply under the function's own properties.
		merged := &resource{id: r.id, typ: r.typ, line: r.line, props: map[string]prop{}, ref: r.ref, active: true,
			globalKeys: map[string]bool{}}
		for _, e := range t.entries(t.globals, "Globals.Function") {
			merged.props[e.key.Value] = e
			merged.globalKeys[e.key.Value] = true
		}
		for k, p := range r.props {
			merged.props[k] = p
			delete(merged.globalKeys, k)
		}
		f = merged
	}
	// The function's own properties; those from Globals were listed once
	// when Globals was read.
	b.props(r, functionProps)
	name, ok := t.refOf(r, r.line, "Resources."+r.id)
	if !ok {
		return nil, false
	}
	l := &config.Lambda{Name: name, Region: t.opts.Region}
	ok = true
	if pt, pok := b.str(f, "PackageType", false); pok && pt != "" && pt != "Zip" {
		t.errorf(f.keyLine("PackageType"), propPath(f, "PackageType"), "%q is not supported; wsgate runs a local directory (Zip)", pt)
		ok = false
	}
	runtime, rok := b.str(f, "Runtime", true)
	if rok && !supportedRuntimes[runtime] {
		t.errorf(f.keyLine("Runtime"), propPath(f, "Runtime"), "runtime %q is not supported; wsgate runs Go functions (go1.x, provided.al2, provided.al2023)", runtime)
		rok = false
	}
	codeKey := "CodeUri"
	if r.typ == "AWS::Lambda::Function" {
		codeKey = "Code"
	}
	dir, cok := b.codeDir(f, codeKey)
	if rok && cok {
		switch bootstrap := filepath.Join(dir, "bootstrap"); {
		case isExecutable(bootstrap):
			l.Command = bootstrap
		case hasGoFiles(dir):
			l.Build = dir
		default:
			t.errorf(f.keyLine(codeKey), propPath(f, codeKey), "%s holds neither an executable bootstrap nor a Go package", dir)
			ok = false
		}
	}
	timeout, tok := b.number(f, "Timeout", 3)
	memory, mok := b.number(f, "MemorySize", 128)
	l.Timeout = time.Duration(timeout) * time.Second
	l.MemorySize = memory
	env, eok := b.environment(r, f)
	l.Env = env
	if !ok || !rok || !cok || !tok || !mok || !eok {
		return nil, false
	}
	b.lambdas[r.id] = l
	return l, true
}

// codeDir resolves the code location of a function to a local directory.
func (b *builder) codeDir(f *resource, key string) (string, bool) {
	t := b.t
	v, set, ok := b.value(f, key)
	if !ok {
		return "", false
	}
	if !set {
		t.errorf(f.line, propPath(f, key), "required: the function's local directory")
		return "", false
	}
	s, isStr := v.(string)
	if !isStr || s == "" || strings.HasPrefix(s, "s3://") {
		t.errorf(f.keyLine(key), propPath(f, key), "needs a local directory (such as ./functions/onConnect); S3 locations, ZipFile and images are not supported")
		return "", false
	}
	dir := s
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(t.dir, dir)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		t.errorf(f.keyLine(key), propPath(f, key), "%s is not a directory", dir)
		return "", false
	}
	return dir, true
}

// environment resolves Environment.Variables with those of Globals under
// the function's own.
func (b *builder) environment(r, f *resource) (map[string]string, bool) {
	t := b.t
	out := map[string]string{}
	ok := true
	read := func(p prop, path string) {
		v, vok := t.eval(p.val, path)
		if !vok {
			ok = false
			return
		}
		m, isMap := v.(map[string]any)
		if !isMap {
			t.errorf(p.key.Line, path, "want a mapping with Variables")
			ok = false
			return
		}
		for k := range m {
			if k != "Variables" {
				t.errorf(p.key.Line, path+"."+k, "not supported; only Variables")
				ok = false
			}
		}
		vars, isMap := m["Variables"].(map[string]any)
		if m["Variables"] != nil && !isMap {
			t.errorf(p.key.Line, path+".Variables", "want a mapping of names to strings")
			ok = false
			return
		}
		for k, val := range vars {
			s, isStr := val.(string)
			if !isStr {
				t.errorf(p.key.Line, path+".Variables."+k, "want a string, got %s", kind(val))
				ok = false
				continue
			}
			out[k] = s
		}
	}
	if f != r {
		for _, e := range t.entries(t.globals, "Globals.Function") {
			if e.key.Value == "Environment" {
				read(e, "Globals.Function.Environment")
			}
		}
	}
	if p, set := r.props["Environment"]; set {
		read(p, propPath(r, "Environment"))
	}
	if len(out) == 0 {
		return nil, ok
	}
	return out, ok
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func hasGoFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range m {
		if !strings.HasSuffix(f, "_test.go") {
			return true
		}
	}
	return false
}
