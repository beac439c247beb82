package gateway

import (
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/destination"
	"github.com/wsgate/wsgate/internal/integration"
)

// amqpIntegration builds the amqp integration ic, configured at the key
// path, describes. Routes naming the same URL share one connection.
func (b *brokers) amqpIntegration(path string, ic config.Integration, opts Options) (integration.Integration, error) {
	url, at := ic.URL, path+".url"
	if ic.URLEnv != "" {
		at = path + ".url_env"
		if url = strings.TrimSpace(opts.Getenv(ic.URLEnv)); url == "" {
			return nil, unsetEnv(at, ic.URLEnv)
		}
	}
	key, err := destination.Parse(ic.RoutingKey)
	if err != nil {
		return nil, errReported
	}
	conn := b.amqp[url]
	if conn == nil {
		if conn, err = integration.DialAMQP(integration.AMQPOptions{URL: url}, b.log); err != nil {
			return nil, &config.Error{Path: at, Msg: err.Error()}
		}
		if b.amqp == nil {
			b.amqp = map[string]*integration.AMQPConn{}
		}
		b.amqp[url] = conn
		b.all = append(b.all, conn)
	}
	return &integration.AMQP{
		Conn:         conn,
		Exchange:     ic.Exchange,
		RoutingKey:   key,
		Declare:      ic.Declare,
		ExchangeType: ic.ExchangeType,
		Payload:      payload(ic.Payload),
		Timeout:      ic.Timeout,
	}, nil
}
