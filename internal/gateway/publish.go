package gateway

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/destination"
	"github.com/wsgate/wsgate/internal/integration"
)

// errReported is a problem with an integration's configuration that
// Validate has reported already.
var errReported = errors.New("reported by Validate")

// brokers are the broker connections of the publishing integrations, one
// per distinct server and credentials, shared by the routes that name it.
// The gateway closes them after its integrations have drained.
type brokers struct {
	log   *slog.Logger
	nats  map[string]*integration.NATSConn
	redis map[string]*integration.RedisConn
	amqp  map[string]*integration.AMQPConn
	// postgres holds a pool per connection string.
	postgres map[string]*integration.PostgresConn
	all      []io.Closer
}

func newBrokers(log *slog.Logger) *brokers {
	return &brokers{log: log.With("component", "integration"),
		nats: map[string]*integration.NATSConn{}, redis: map[string]*integration.RedisConn{},
		amqp: map[string]*integration.AMQPConn{}, postgres: map[string]*integration.PostgresConn{}}
}

func (b *brokers) close() {
	for _, c := range b.all {
		_ = c.Close()
	}
	b.all = nil
}

// natsIntegration builds the nats integration ic, configured at the key
// path, describes.
func (b *brokers) natsIntegration(path string, ic config.Integration, opts Options) (integration.Integration, error) {
	o := integration.NATSOptions{URL: ic.URL, CredentialsFile: ic.CredentialsFile}
	var missing []error
	if ic.URLEnv != "" {
		if o.URL = strings.TrimSpace(opts.Getenv(ic.URLEnv)); o.URL == "" {
			missing = append(missing, unsetEnv(path+".url_env", ic.URLEnv))
		}
	}
	if ic.TokenEnv != "" {
		if o.Token = opts.Getenv(ic.TokenEnv); o.Token == "" {
			missing = append(missing, unsetEnv(path+".token_env", ic.TokenEnv))
		}
	}
	if ic.CredentialsFile != "" {
		if _, err := opts.ReadFile(ic.CredentialsFile); err != nil {
			missing = append(missing, &config.Error{Path: path + ".credentials_file", Msg: fmt.Sprintf("reading the credentials: %v", err), Err: err})
		}
	}
	if len(missing) > 0 {
		return nil, errors.Join(missing...)
	}
	subject, err := destination.Parse(ic.Subject)
	if err != nil {
		return nil, errReported
	}
	key := o.URL + "\x00" + o.Token + "\x00" + o.CredentialsFile
	conn := b.nats[key]
	if conn == nil {
		if conn, err = integration.DialNATS(o, b.log); err != nil {
			at := path + ".url"
			if ic.URLEnv != "" {
				at = path + ".url_env"
			}
			return nil, &config.Error{Path: at, Msg: err.Error()}
		}
		b.nats[key] = conn
		b.all = append(b.all, conn)
	}
	n := &integration.NATS{Conn: conn, Subject: subject, JetStream: ic.JetStream, Payload: payload(ic.Payload), Timeout: ic.Timeout}
	if ic.Declare {
		n.DeclareStream = ic.Stream
	}
	return n, nil
}

// redisIntegration builds the redis integration ic, configured at the key
// path, describes.
func (b *brokers) redisIntegration(path string, ic config.Integration, opts Options) (integration.Integration, error) {
	o := integration.RedisOptions{URL: ic.URL}
	if ic.PasswordEnv != "" {
		if o.Password = opts.Getenv(ic.PasswordEnv); o.Password == "" {
			return nil, unsetEnv(path+".password_env", ic.PasswordEnv)
		}
	}
	r := &integration.Redis{MaxLen: ic.MaxLen, Payload: payload(ic.Payload), Timeout: ic.Timeout}
	var err error
	if ic.Channel != "" {
		r.Channel, err = destination.Parse(ic.Channel)
	} else {
		r.Stream, err = destination.Parse(ic.Stream)
	}
	if err != nil {
		return nil, errReported
	}
	key := o.URL + "\x00" + o.Password
	conn := b.redis[key]
	if conn == nil {
		if conn, err = integration.DialRedis(o); err != nil {
			return nil, &config.Error{Path: path + ".url", Msg: err.Error()}
		}
		b.redis[key] = conn
		b.all = append(b.all, conn)
	}
	r.Conn = conn
	return r, nil
}

func payload(p config.Payload) integration.Payload {
	if p == config.PayloadBody {
		return integration.PayloadBody
	}
	return integration.PayloadEvent
}
