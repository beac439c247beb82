// Package cli implements the wsgate command line: flag parsing and printing
// only; the work is done by the packages it calls.
package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"syscall"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	"github.com/wsgate/wsgate/internal/redisregistry"
)

// Version is set at build time with -ldflags "-X .../cli.Version=v1.2.3";
// otherwise the module version from the build info is used.
var Version = ""

const usage = `wsgate — a WebSocket API gateway that speaks AWS API Gateway's formats

Usage:
  wsgate serve [-c FILE] [-workers N]
                                  run the gateway (no -c: the embedded default config);
                                  -workers N runs N processes sharing the ports (needs
                                  registry.type redis or nats)
  wsgate serve -template FILE [-parameter NAME=VALUE ...] [-region R] [-stack-name N] [-c FILE]
                                  run the WebSocket API a CloudFormation/SAM template
                                  describes; -c gives what the template cannot say
  wsgate validate [-strict] [-c FILE] [-template FILE ...]
                                  check a config the way serve builds it; print every problem
                                  (-strict: also what serve needs and this machine lacks)
  wsgate import -template FILE [-parameter NAME=VALUE ...] [-region R] [-stack-name N]
                                  print the wsgate config equivalent to a template
  wsgate asyncapi [-c FILE] [-template FILE ...] [-format yaml|json]
                                  print the AsyncAPI 3.0 document of the configured API
  wsgate migrate -c FILE [-timeout D]
                                  create the tables of the config's postgres routes
                                  that are missing (idempotent); print what it did
  wsgate connect [flags] URL      interactive client: stdin lines out, frames in
  wsgate post [flags] ID MESSAGE  send MESSAGE to connection ID through the management API
  wsgate token -sub ID [flags]    mint a development JWT for the jwt authorizer
  wsgate default-config           print the embedded default config
  wsgate version                  print the version

Run "wsgate COMMAND -h" for a command's flags.
`

// Main runs the command line args and returns the process exit code: 0 on
// success, 1 when the command failed, 2 on a usage error.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "default-config", "version", "-v", "--version", "help", "-h", "--help":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "wsgate %s: unexpected argument %q: it takes none\n", args[0], args[1])
			return 2
		}
	}
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "validate":
		err = validate(args[1:], stdout, stderr)
	case "import":
		err = importTemplate(args[1:], stdout, stderr)
	case "migrate":
		err = migrate(ctx, args[1:], stdout, stderr)
	case "asyncapi":
		err = asyncAPI(args[1:], stdout, stderr)
	case "connect":
		err = connect(ctx, args[1:], stdin, stdout, stderr)
	case "post":
		err = post(ctx, args[1:], stdin, stdout, stderr)
	case "token":
		err = mintToken(args[1:], stdout, stderr)
	case "default-config":
		_, err = stdout.Write(config.DefaultYAML)
	case "version", "-v", "--version":
		fmt.Fprintln(stdout, "wsgate", version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "wsgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFlagsReported):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "wsgate %s: %v\n", args[0], ue.error)
		return 2
	default:
		fmt.Fprintf(stderr, "wsgate %s: %v\n", args[0], err)
		return 1
	}
}

type usageError struct{ error }

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// errFlagsReported is a flag parsing error that the flag package has already
// printed, with the command's flags, to stderr.
var errFlagsReported = errors.New("bad flags")

// parseFlags parses args into fs. A parse error other than -h becomes
// errFlagsReported, a usage error that Main does not print again.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return errFlagsReported
	}
	return err
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wsgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	l, _ := newLevelLogger(cfg, w)
	return l
}

// newLevelLogger is newLogger with its level, which a reload changes.
func newLevelLogger(cfg *config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(cfg.Log.SlogLevel())
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	reopen, stopReopen := notifyReopen()
	defer stopReopen()
	// SIGHUP reloads the configuration; with -workers the supervisor
	// passes it on to every worker. Set before anything else, so that a
	// SIGHUP never stops serve.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fs := newFlagSet("serve", stderr)
	path := fs.String("c", "", "config `file` (default: the embedded default config)")
	workers := fs.Int("workers", 1, "run `N` gateway processes sharing the client and management ports (SO_REUSEPORT); needs registry.type redis or nats")
	reuse := fs.Bool("reuse-port", false, "set SO_REUSEPORT on the listeners, so that other wsgate processes may share the ports")
	tf := addTemplateFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *workers < 1 {
		return usageError{fmt.Errorf("-workers must be at least 1, got %d", *workers)}
	}
	if err := tf.check(); err != nil {
		return err
	}
	if tf.path != "" && *workers > 1 {
		return usageError{errors.New("-workers is not supported with -template: write the configuration with wsgate import and serve it with -c")}
	}
	cfg, tr, err := buildConfig(*path, tf)
	if err != nil {
		return err
	}
	logger, level := newLevelLogger(cfg, stderr)
	logIgnored(logger, tr)
	if usesRedis(cfg) {
		redisregistry.SetLogger(logger)
	}
	if *workers > 1 {
		if err := checkWorkers(cfg, *path); err != nil {
			return err
		}
		return superviseWorkers(ctx, *workers, *path, cfg, logger, hup, reopen, stdout, stderr)
	}
	if w := os.Getenv(workerEnv); w != "" {
		logger = logger.With("worker", w)
	}
	load := func() (*config.Config, error) {
		cfg, _, err := buildConfig(*path, tf)
		return cfg, err
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: logger, ReusePort: *reuse, Stdout: stdout, Stderr: stderr, Load: load, LogLevel: level})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wait := reopenOnSignal(rctx, reopen, g.ReopenAccessLog, logger)
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		for {
			select {
			case <-rctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP: reloading the configuration")
				// Reload logs its outcome.
				_ = g.Reload(rctx)
			}
		}
	}()
	err = g.Run(ctx)
	cancel()
	wait()
	<-reloads
	return err
}

// validate builds what serve would build, without listening, and prints
// every problem. What the config names and this machine lacks (an unset
// environment variable, a file or program that does not exist: see
// config.IsMissing) is listed apart and is not a problem, unless -strict:
// validate may run where the secrets are not, serve refuses to start.
func validate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", stderr)
	path := fs.String("c", "", "config `file` (default: the embedded default config)")
	strict := fs.Bool("strict", false, "count as problems the environment variables, files and programs the config names that are missing on this machine")
	tf := addTemplateFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 1:
		return usageError{fmt.Errorf("unexpected argument %q: validate checks one config file", fs.Arg(1))}
	case fs.NArg() == 1 && *path != "":
		return usageError{fmt.Errorf("unexpected argument %q: the config file is given with -c", fs.Arg(0))}
	case fs.NArg() == 1:
		*path = fs.Arg(0)
	}
	if err := tf.check(); err != nil {
		return err
	}
	var problems, missing, warnings []error
	cfg, tr, err := buildConfig(*path, tf)
	if err != nil {
		problems = config.Leaves(err)
	} else {
		var g *gateway.Gateway
		if g, err = gateway.New(cfg, gateway.Options{}); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Registry.Timeout)
			warnings = g.Warnings(ctx)
			cancel()
			g.Close()
		}
		for _, e := range config.Leaves(err) {
			if !*strict && config.IsMissing(e) {
				missing = append(missing, e)
			} else {
				problems = append(problems, e)
			}
		}
	}
	for _, w := range warnings {
		fmt.Fprintln(stdout, w)
	}
	const lacking = "missing on this machine, and needed by serve:"
	name := *path
	switch {
	case tf.path != "" && name != "":
		name = tf.path + " with " + name
	case tf.path != "":
		name = tf.path
	case name == "":
		name = "embedded default config"
	}
	if tr != nil {
		for _, i := range tr.Ignored {
			fmt.Fprintf(stdout, "%s: ignored: %s\n", tf.path, i)
		}
	}
	switch {
	case len(problems) > 0:
		printErrors(stdout, problems)
		if len(missing) > 0 {
			fmt.Fprintln(stdout, lacking)
		}
	case len(missing) > 0:
		fmt.Fprintf(stdout, "%s: ok; %s\n", name, lacking)
	default:
		fmt.Fprintf(stdout, "%s: ok\n", name)
	}
	printErrors(stdout, missing)
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s) found", len(problems))
	}
	return nil
}

// printErrors prints errs one to a line, ordered by the line of the config
// they are about, those without a line last.
func printErrors(w io.Writer, errs []error) {
	line := func(err error) int {
		var ce *config.Error
		if errors.As(err, &ce) && ce.Line > 0 {
			return ce.Line
		}
		return math.MaxInt
	}
	slices.SortStableFunc(errs, func(a, b error) int { return cmp.Compare(line(a), line(b)) })
	for _, e := range errs {
		fmt.Fprintln(w, e)
	}
}

// usesRedis reports whether cfg reaches Redis, as its registry or through a
// redis integration: then the Redis client library's own messages go to the
// gateway's log.
func usesRedis(cfg *config.Config) bool {
	if cfg.Registry.Type == config.RegistryRedis {
		return true
	}
	for _, r := range cfg.Routes {
		if r.Integration.Type == config.IntegrationRedis {
			return true
		}
	}
	return false
}
