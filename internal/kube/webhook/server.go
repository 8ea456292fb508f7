package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/lucid-mesh/lucid/internal/kube/selfcert"
)

// DefaultCheckInterval is how often the caBundle is checked (and re-patched when someone
// reset it).
const DefaultCheckInterval = 10 * time.Second

// Path is where the API server sends pods (Istio's path; /inject/... is served too).
const Path = "/inject"

// ServerOptions configure Serve.
type ServerOptions struct {
	Handler *Handler
	Certs   *selfcert.Rotator // serving certificate (renewed by Serve)
	// Client and ConfigName enable the caBundle patching of the MutatingWebhookConfiguration
	// ConfigName with Certs' CA, checked every CheckInterval (default DefaultCheckInterval).
	Client        dynamic.Interface
	ConfigName    string
	CheckInterval time.Duration
	Log           *slog.Logger
}

// Serve serves the webhook over TLS on ln until ctx ends, renewing the serving certificate
// and keeping the caBundle patched meanwhile. Open requests get 5 s to finish at the end.
func Serve(ctx context.Context, ln net.Listener, o ServerOptions) error {
	if o.Handler == nil || o.Certs == nil {
		return errors.New("webhook: a handler and a certificate are required")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, o.Handler)
	mux.Handle(Path+"/", o.Handler)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug), // TLS handshake noise
	}
	tlsLn := tls.NewListener(ln, &tls.Config{GetCertificate: o.Certs.GetCertificate, MinVersion: tls.VersionTLS12})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { o.Certs.Run(ctx) })
	if o.Client != nil && o.ConfigName != "" {
		wg.Go(func() { keepCABundle(ctx, o, log) })
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tlsLn) }()
	log.Info("injection webhook listening", "address", ln.Addr().String(), "path", Path)

	var err error
	select {
	case err = <-served:
		err = fmt.Errorf("webhook: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		c()
		if e := <-served; e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = fmt.Errorf("webhook: serve %s: %w", ln.Addr(), e)
		}
	}
	cancel()
	wg.Wait()
	return err
}

// keepCABundle patches the CA into the webhook configuration now and after every change
// that removes it, logging only transitions.
func keepCABundle(ctx context.Context, o ServerOptions, log *slog.Logger) {
	every := o.CheckInterval
	if every <= 0 {
		every = DefaultCheckInterval
	}
	bundle := o.Certs.CA().CertPEM()
	t := time.NewTimer(0)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, max(every, 10*time.Second))
		n, err := patchCABundle(cctx, o.Client, o.ConfigName, bundle)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			if err.Error() != lastErr {
				log.Warn("the webhook's caBundle could not be set; the API server cannot trust the injector until it is", "error", err)
			}
			lastErr = err.Error()
		case err == nil && n > 0:
			log.Info("caBundle patched into the webhook configuration", "configuration", o.ConfigName, "webhooks", n)
			lastErr = ""
		case err == nil:
			lastErr = ""
		}
		t.Reset(every)
	}
}
