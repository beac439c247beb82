// Command async-worker is the second half of AWS's asynchronous WebSocket
// pattern, run against wsgate: a client's message reaches a broker through a
// nats, redis or amqp integration, carrying its connectionId; this
// worker takes it from the broker, does some work, and pushes the result back
// to the connection with the unmodified AWS SDK's apigatewaymanagementapi
// client, signed with the credentials of the standard AWS environment
// variables. See README.md beside this file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "async-worker:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "async-worker:", err)
		os.Exit(1)
	}
}

// errUsage is a command-line error that has already been printed with the
// flags.
var errUsage = errors.New("bad usage")

// usageError is a command line or an environment the worker cannot run
// with.
type usageError struct{ error }

const usage = `async-worker — take client messages that wsgate published to a broker, and
answer each on its connection through wsgate's management API (AWS SDK, SigV4).

Usage:
  async-worker -broker nats  -stream NAME [flags]
  async-worker -broker redis -stream KEY  [flags]
  async-worker -broker amqp  -queue NAME  [flags]

Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN
optional), the key wsgate's management.auth.sigv4 accepts.

Flags:
`

// options are the worker's settings, from the command line and the
// environment.
type options struct {
	broker   string
	url      string
	endpoint string
	region   string
	payload  string
	name     string
	delay    time.Duration
	retry    time.Duration
	logLevel string

	// nats and redis
	stream string
	group  string
	// nats
	subject string
	// redis
	consumer  string
	claimIdle time.Duration
	// amqp
	queue        string
	declare      bool
	exchange     string
	exchangeType string
	routingKey   string

	accessKeyID     string
	secretAccessKey string
	sessionToken    string
}

// defaultURLs are the brokers' addresses on this machine with their
// default ports.
var defaultURLs = map[string]string{
	"nats":  "nats://127.0.0.1:4222",
	"redis": "redis://127.0.0.1:6379/0",
	"amqp":  "amqp://guest:guest@127.0.0.1:5672/",
}

// run is the whole program: it parses args, reads the credentials from the
// environment, and consumes until ctx ends, then stops gracefully and
// returns nil. Logs go to stderr; stdout is unused. An error means the
// worker could not start (bad flags, missing credentials) or its broker
// refused it for good.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, os.Getenv, stdout, stderr)
}

// runEnv is run with the environment read through getenv.
func runEnv(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if o.logLevel == "debug" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	w := newWorker(o, logger)
	defer w.close()
	var src source
	switch o.broker {
	case "nats":
		src = &natsSource{o: o, log: logger.With("broker", "nats")}
	case "redis":
		src = &redisSource{o: o, log: logger.With("broker", "redis")}
	case "amqp":
		src = &amqpSource{o: o, log: logger.With("broker", "amqp")}
	}
	logger.Info("async-worker started", "broker", o.broker, "url", redactURL(o.url),
		"endpoint", o.endpoint, "region", o.region, "payload", o.payload, "worker", o.name)
	err = src.run(ctx, w.handle)
	logger.Info("async-worker stopped")
	return err
}

// parseOptions reads the flags and the credentials, and checks them.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("async-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	region := getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "async-worker"
	}
	fs.StringVar(&o.broker, "broker", "", "the `broker` holding the messages: nats (a JetStream stream), redis (a stream) or amqp (a RabbitMQ queue)")
	fs.StringVar(&o.url, "url", "", "the broker's URL (default nats://127.0.0.1:4222, redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672/)")
	fs.StringVar(&o.endpoint, "endpoint", "http://127.0.0.1:9090", "wsgate's management API, with the stage if the gateway has one (http://HOST:9090/prod)")
	fs.StringVar(&o.region, "region", region, "the SigV4 signing region, management.auth.sigv4.region; $AWS_REGION when set")
	fs.StringVar(&o.payload, "payload", "event", "what the route publishes, its integration's payload: event (the AWS event JSON) or body (the message alone, the connection id beside it)")
	fs.StringVar(&o.name, "name", host, "this worker's name, put in every reply")
	fs.DurationVar(&o.delay, "delay", 0, "pretend the work takes this long before answering")
	fs.DurationVar(&o.retry, "retry", 5*time.Second, "after a post that failed (not because the client left), how long before the message is delivered again")
	fs.StringVar(&o.logLevel, "log-level", "info", "info or debug")
	fs.StringVar(&o.stream, "stream", "", "nats: the JetStream stream (the route's stream); redis: the stream key (the route's stream)")
	fs.StringVar(&o.group, "group", "async-worker", "nats: the durable consumer; redis: the consumer group. Workers with the same group share the messages")
	fs.StringVar(&o.subject, "subject", "", "nats: consume only the stream's messages on this subject (wildcards allowed); default: all")
	fs.StringVar(&o.consumer, "consumer", host, "redis: this worker's consumer name in the group, unique among the workers")
	fs.DurationVar(&o.claimIdle, "claim-idle", time.Minute, "redis: take over entries another consumer has held unacknowledged this long (a worker that died)")
	fs.StringVar(&o.queue, "queue", "", "amqp: the queue to consume")
	fs.BoolVar(&o.declare, "declare", false, "amqp: declare the queue (durable) and, with -exchange, declare the exchange and bind the queue to it")
	fs.StringVar(&o.exchange, "exchange", "", "amqp: with -declare, the exchange to bind the queue to, declared durable as wsgate's declare: true does unless its name starts with amq.")
	fs.StringVar(&o.exchangeType, "exchange-type", "topic", "amqp: with -exchange, the exchange's type: direct, fanout, topic or headers (the route's exchange_type)")
	fs.StringVar(&o.routingKey, "routing-key", "", "amqp: with -exchange, the binding key (default: the queue's name)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	if fs.NArg() > 0 {
		return o, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var problems []string
	only := func(broker string, names ...string) {
		for _, n := range names {
			if set[n] && o.broker != broker {
				problems = append(problems, fmt.Sprintf("-%s is only used with -broker %s", n, broker))
			}
		}
	}
	switch o.broker {
	case "nats", "redis":
		if o.stream == "" {
			problems = append(problems, "-broker "+o.broker+" needs -stream")
		}
		if set["queue"] || set["declare"] || set["exchange"] || set["exchange-type"] || set["routing-key"] {
			problems = append(problems, "-queue, -declare, -exchange, -exchange-type and -routing-key are only used with -broker amqp")
		}
	case "amqp":
		if o.queue == "" {
			problems = append(problems, "-broker amqp needs -queue")
		}
		if set["stream"] || set["group"] {
			problems = append(problems, "-stream and -group are only used with -broker nats or redis")
		}
		if (o.exchange != "" || o.routingKey != "") && !o.declare {
			problems = append(problems, "-exchange and -routing-key need -declare")
		}
		if (o.routingKey != "" || set["exchange-type"]) && o.exchange == "" {
			problems = append(problems, "-routing-key and -exchange-type need -exchange")
		}
		switch o.exchangeType {
		case "direct", "fanout", "topic", "headers":
		default:
			problems = append(problems, fmt.Sprintf("-exchange-type %q: want direct, fanout, topic or headers", o.exchangeType))
		}
	case "":
		problems = append(problems, "-broker is required: nats, redis or amqp")
	default:
		problems = append(problems, fmt.Sprintf("-broker %q: want nats, redis or amqp", o.broker))
	}
	only("nats", "subject")
	only("redis", "consumer", "claim-idle")
	if o.url == "" {
		o.url = defaultURLs[o.broker]
	}
	if o.url != "" {
		if u, err := url.Parse(o.url); err != nil || u.Host == "" {
			// url.Parse's message quotes the URL, which may hold a password.
			problems = append(problems, "-url is not a URL such as "+defaultURLs[o.broker])
		}
	}
	if u, err := url.Parse(o.endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, "-endpoint is not an http:// or https:// URL such as http://127.0.0.1:9090")
	}
	if o.payload != "event" && o.payload != "body" {
		problems = append(problems, fmt.Sprintf("-payload %q: want event or body", o.payload))
	}
	if o.logLevel != "info" && o.logLevel != "debug" {
		problems = append(problems, fmt.Sprintf("-log-level %q: want info or debug", o.logLevel))
	}
	if o.delay < 0 || o.retry <= 0 || o.claimIdle <= 0 {
		problems = append(problems, "-delay must not be negative, -retry and -claim-idle must be positive")
	}
	if o.region == "" {
		problems = append(problems, "-region is empty")
	}
	o.accessKeyID = getenv("AWS_ACCESS_KEY_ID")
	o.secretAccessKey = getenv("AWS_SECRET_ACCESS_KEY")
	o.sessionToken = getenv("AWS_SESSION_TOKEN")
	if o.accessKeyID == "" || o.secretAccessKey == "" {
		problems = append(problems, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set: the key wsgate's management.auth.sigv4 accepts")
	}
	if len(problems) > 0 {
		return o, usageError{errors.New(strings.Join(problems, "; "))}
	}
	return o, nil
}

// redactURL returns u without its password or token, for the log.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid)"
	}
	if p.User != nil {
		p.User = url.User("xxxxx")
	}
	return p.String()
}
