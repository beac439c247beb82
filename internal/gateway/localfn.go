package gateway

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"log/slog"

	"github.com/wsgate/wsgate/internal/execproxy"
)

// localCredentials are the AWS credentials every local function of one
// gateway process gets, random for each process. The management API
// accepts SigV4 signatures made with them, in any region.
type localCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

// newLocalCredentials returns a random key id of the form AWS uses (AKIA
// and 16 upper-case letters and digits) and a random 40-character secret.
func newLocalCredentials() localCredentials {
	var id [10]byte
	var secret [30]byte
	_, _ = rand.Read(id[:])
	_, _ = rand.Read(secret[:])
	return localCredentials{
		AccessKeyID:     "AKIA" + base32.StdEncoding.EncodeToString(id[:]),
		SecretAccessKey: base64.StdEncoding.EncodeToString(secret[:]),
	}
}

// LogValue keeps the secret out of any log record the credentials reach.
func (c localCredentials) LogValue() slog.Value {
	return slog.StringValue("[credentials " + c.AccessKeyID + "]")
}

// String keeps the secret out of any message the credentials reach.
func (c localCredentials) String() string { return c.LogValue().String() }

// environ is what the credentials add to a function's environment.
func (c localCredentials) environ() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + c.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey}
}

// startGeneration starts what gen runs in the background: its broker
// connections' writers, and its local functions with the credentials and
// the execute-api proxy's settings in their environment. The proxy starts
// with the first generation that has local functions, when there is a
// management API. On failure it closes gen.
func (g *Gateway) startGeneration(gen *generation) error {
	gen.brokers.start()
	if len(gen.lambdas) == 0 {
		return nil
	}
	env := g.creds.environ()
	if g.mgmt != nil {
		if g.proxy == nil {
			mc := g.cfg.Management
			p, err := execproxy.New(execproxy.Config{
				Intercept:      execproxy.ExecuteAPIHosts(g.cfg.APIID, g.cfg.DomainName),
				Handler:        g.mgmt,
				ReadTimeout:    mc.ReadTimeout,
				IdleTimeout:    mc.IdleTimeout,
				MaxHeaderBytes: g.mgmtHTTP.MaxHeaderBytes,
				Logger:         g.log,
			})
			if err == nil {
				err = p.Start()
			}
			if err != nil {
				gen.close()
				return fmt.Errorf("execute-api proxy: %w", err)
			}
			g.proxy = p
		}
		env = append(env, g.proxy.Environ()...)
	}
	for _, fn := range gen.lambdas {
		if err := fn.Start(env); err != nil {
			gen.close()
			return fmt.Errorf("lambda: %w", err)
		}
	}
	return nil
}

// closeProxy closes the execute-api proxy, once the local functions that
// push through it are closed.
func (g *Gateway) closeProxy() {
	if g.proxy != nil {
		if err := g.proxy.Close(); err != nil {
			g.log.Warn("execute-api proxy", "err", err)
		}
		g.proxy = nil
	}
}
