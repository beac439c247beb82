package gateway

import (
	"context"
	"log/slog"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/tlsconfig"
)

// buildTLS builds the TLS of the client and management listeners that
// the configuration turns it on for.
func buildTLS(cfg *config.Config, log *slog.Logger) (client, mgmt *tlsconfig.Listener, errs []error) {
	if cfg.TLS.Enabled() {
		l, err := tlsconfig.New(cfg, "tls", cfg.TLS, log.With("listener", "clients"), "http/1.1")
		if err != nil {
			errs = append(errs, err)
		}
		client = l
	}
	if cfg.Management.IsEnabled() && cfg.Management.TLS.Enabled() {
		l, err := tlsconfig.New(cfg, "management.tls", cfg.Management.TLS, log.With("listener", "management"), "http/1.1")
		if err != nil {
			errs = append(errs, err)
		}
		mgmt = l
	}
	return client, mgmt, errs
}

// watchCertificates starts re-reading the listeners' certificate files when
// they change, until Shutdown.
func (g *Gateway) watchCertificates() {
	ctx, cancel := context.WithCancel(context.Background())
	g.stopWatch = cancel
	for _, l := range []*tlsconfig.Listener{g.clientTLS, g.mgmtTLS} {
		if l == nil {
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			l.Files.Run(ctx, g.certPoll)
		}()
	}
}
