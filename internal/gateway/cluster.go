package gateway

import (
	"context"
	"time"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/natsregistry"
	"github.com/wsgate/wsgate/internal/redisregistry"
	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/route"
)

// closeLost is the code of the $disconnect event of a connection whose node
// was lost: the socket ended without a close frame, as far as anyone can
// tell.
const closeLost = 1006

// buildEngine connects the registry the configuration names. A shared
// engine is not reached yet: the node connects in the background and
// reports not ready until it does.
func buildEngine(cfg *config.Config, opts Options) (cluster.Engine, error) {
	rc := cfg.Registry
	switch rc.Type {
	case config.RegistryMemory, "":
		return cluster.NewMemory(), nil
	case config.RegistryRedis:
		var password string
		if rc.Redis.PasswordEnv != "" {
			if password = opts.Getenv(rc.Redis.PasswordEnv); password == "" {
				return nil, cfg.Locate(unsetEnv("registry.redis.password_env", rc.Redis.PasswordEnv))
			}
		}
		eng, err := redisregistry.New(redisregistry.Config{URL: rc.Redis.URL, Password: password, Prefix: rc.Prefix}, opts.Logger)
		if err != nil {
			return nil, cfg.Errorf("registry.redis.url", "%v", err)
		}
		return eng, nil
	case config.RegistryNATS:
		var token string
		if rc.NATS.TokenEnv != "" {
			if token = opts.Getenv(rc.NATS.TokenEnv); token == "" {
				return nil, cfg.Locate(unsetEnv("registry.nats.token_env", rc.NATS.TokenEnv))
			}
		}
		eng, err := natsregistry.New(natsregistry.Config{URL: rc.NATS.URL, Prefix: rc.Prefix, CredentialsFile: rc.NATS.CredentialsFile, Token: token}, opts.Logger)
		if err != nil {
			return nil, cfg.Errorf("registry.nats", "%w", err)
		}
		return eng, nil
	}
	return nil, cfg.Errorf("registry.type", "unsupported registry %q", rc.Type)
}

// record is what the registry holds about c.
func (g *Gateway) record(c *edge.Conn, sess *session) registry.Record {
	return registry.Record{
		ConnectionID: c.ID(),
		NodeID:       g.nodeID,
		PrincipalID:  sess.principal,
		ConnectedAt:  c.ConnectedAt(),
		SourceIP:     c.SourceIP(),
		UserAgent:    c.UserAgent(),
		DomainName:   sess.ev.DomainName,
		Authorizer:   sess.ev.Authorizer,
	}
}

// records lists the records of this node's connections, for the node to
// register again after an engine outage.
func (g *Gateway) records() []registry.Record {
	var out []registry.Record
	g.hub.Range(func(hc hub.Conn) bool {
		c, ok := hc.(*edge.Conn)
		if !ok {
			return true
		}
		if sess, ok := c.Session.(*session); ok {
			out = append(out, g.record(c, sess))
		}
		return true
	})
	return out
}

// lostConnection delivers the $disconnect event of a connection whose node
// was lost, built from its registry record. An error makes the cluster try
// again later.
func (g *Gateway) lostConnection(ctx context.Context, rec registry.Record, reason string) error {
	gen := g.acquire()
	defer gen.release()
	rt, ok := gen.routes.Get(route.Disconnect)
	if !ok {
		return nil
	}
	conn := awsevent.Conn{
		ID:          rec.ConnectionID,
		ConnectedAt: rec.ConnectedAt,
		SourceIP:    rec.SourceIP,
		UserAgent:   rec.UserAgent,
		DomainName:  rec.DomainName,
		Authorizer:  rec.Authorizer,
	}
	ev := awsevent.Disconnect(gen.api, &conn, closeLost, reason, time.Now())
	if _, err := rt.Integration.Invoke(ctx, ev); err != nil {
		g.log.Warn("$disconnect of a lost node's connection failed; it will be retried", "connectionId", rec.ConnectionID, "lostNodeId", rec.NodeID, "requestId", ev.RequestContext.RequestID, "err", err)
		return err
	}
	g.log.Info("$disconnect delivered for a lost node's connection", "connectionId", rec.ConnectionID, "lostNodeId", rec.NodeID, "requestId", ev.RequestContext.RequestID)
	return nil
}
