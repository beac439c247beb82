package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/tlsconfig"
)

// buildTLS builds the TLS of the client and management listeners that
// the configuration turns it on for.
func buildTLS(cfg *config.Config, getenv func(string) string, log *slog.Logger) (client, mgmt *tlsconfig.Listener, errs []error) {
	if cfg.TLS.ACME.Configured() {
		l, err := tlsconfig.NewACME(cfg, "tls", cfg.TLS, getenv, log.With("listener", "clients"), "http/1.1")
		if err != nil {
			errs = append(errs, err)
		}
		client = l
	} else if cfg.TLS.Enabled() {
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
	g.watchCtx, g.stopWatch = context.WithCancel(context.Background())
	g.clientWatch = g.watch(g.clientTLS)
	g.mgmtWatch = g.watch(g.mgmtTLS)
}

// watch starts re-reading l's certificate files when they change, until
// Shutdown or until the returned function is called.
func (g *Gateway) watch(l *tlsconfig.Listener) context.CancelFunc {
	if l == nil || l.Files == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(g.watchCtx)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		l.Files.Run(ctx, g.certPoll)
	}()
	return cancel
}

// reloadTLS builds the TLS of the listeners with certificate files from
// next, reading the files again (the certificate pairs and the client CAs,
// under the names next gives), and returns what applies it once the reload
// is accepted. The TLS of a listener with ACME is not rebuilt: a reload
// cannot change it (immutable).
func (g *Gateway) reloadTLS(next *config.Config) (apply func(), errs []error) {
	var applies []func()
	rebuild := func(cur *tlsconfig.Listener, path string, t config.TLS, name string, stop *context.CancelFunc) {
		if cur == nil || cur.ACME != nil || !t.Enabled() {
			return
		}
		l, err := tlsconfig.New(next, path, t, g.log.With("listener", name), "http/1.1")
		if err != nil {
			errs = append(errs, err)
			return
		}
		applies = append(applies, func() {
			cur.Set(l.Settings())
			(*stop)()
			*stop = g.watch(l)
		})
	}
	rebuild(g.clientTLS, "tls", next.TLS, "clients", &g.clientWatch)
	if next.Management.IsEnabled() {
		rebuild(g.mgmtTLS, "management.tls", next.Management.TLS, "management", &g.mgmtWatch)
	}
	return func() {
		for _, a := range applies {
			a()
		}
	}, errs
}

// acmeHTTP returns the server of the http-01 challenge listener
// (tls.acme.http_listen), or nil when there is none.
func acmeHTTP(cfg *config.Config, l *tlsconfig.Listener, log *slog.Logger) *http.Server {
	if l == nil || l.ACME == nil || l.ACME.HTTPHandler() == nil {
		return nil
	}
	return &http.Server{
		Handler:           l.ACME.HTTPHandler(),
		ReadHeaderTimeout: cfg.Limits.HandshakeTimeout,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// startACMEHTTP binds the http-01 listener, if any.
func (g *Gateway) startACMEHTTP() error {
	if g.acmeHTTP == nil {
		return nil
	}
	addr := g.cfg.TLS.ACME.HTTPListen
	ln, err := g.listen(addr)
	if err != nil {
		return fmt.Errorf("listen %s (tls.acme.http_listen): %w", addr, err)
	}
	g.acmeLn = ln
	return nil
}

// serveACMEHTTP serves the http-01 listener bound by startACMEHTTP.
func (g *Gateway) serveACMEHTTP() {
	if g.acmeLn == nil {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := g.acmeHTTP.Serve(g.acmeLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.serveErr <- fmt.Errorf("tls.acme.http_listen: %w", err)
		}
	}()
}

// ACMEHTTPAddr returns the address of the http-01 listener once started, or
// "" when there is none.
func (g *Gateway) ACMEHTTPAddr() string {
	if g.acmeLn == nil {
		return ""
	}
	return g.acmeLn.Addr().String()
}
